#!/usr/bin/env python3
"""Soak tests (not CI; figures go to docs/performance.md).

server    A long null-backend Server run through code/main.py at a fraction (default 80%) of the system's measured
          Server capacity, with the harness process's resident memory sampled every --every_s seconds; it must stay
          flat. The capacity is --capacity, else the scheduled q/s of the newest VALID null-backend Server run in
          --log_dir (what harness/loadgen/limits.py also uses for its far-above-capacity warning).
accuracy  An AccuracyOnly run of --samples samples (default 50,000: the full validation set) through the real LoadGen,
          the harness's SUT and its accuracy evaluation, with the null backend and the labels of the official 50k
          val_map.txt. The null backend reads no pixels, so the QSL holds a one-byte placeholder per sample instead
          of 50,000 preprocessed images (7.5-30 GB); everything else (LoadGen's accuracy logging of every sample,
          completion, mlperf_log_accuracy.json, accuracy.txt) is the real path. Resident memory is sampled too.

Usage:
  .venv/bin/python scripts/soak.py server [--duration_s 600] [--fraction 0.8] [--capacity Q] [-- main.py flags]
  .venv/bin/python scripts/soak.py accuracy [--samples 50000]
"""
import argparse
import json
import os
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "code"))
SHARED = os.path.abspath(os.environ.get("MLPERF_SHARED_DIR") or os.path.join(ROOT, "..", "shared"))
MAP_1300 = os.path.join(SHARED, "data", "imagenet", "val_map_1300.txt")
MAP_50K = os.path.join(SHARED, "data", "imagenet", "val_map.txt")
COMMON = ["--system_name=CPU", "--model=efficientnet-lite0", f"--map_path={MAP_1300}", "--backend=null"]


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def sample_rss(pid: int, every_s: float, samples: list, stop: threading.Event) -> None:
    start = time.monotonic()
    while not stop.wait(every_s):
        try:
            samples.append((round(time.monotonic() - start), round(rss_mib(pid), 1)))
        except OSError:
            return
        print(f"  t={samples[-1][0]:>5} s  RSS {samples[-1][1]:8.1f} MiB", flush=True)


def report(samples: list) -> dict:
    if len(samples) < 2:
        return {"samples": samples}
    values = [v for _, v in samples]
    after_warmup = values[1:] if len(values) > 2 else values
    return {"samples": samples, "first_mib": values[0], "last_mib": values[-1], "max_mib": max(values),
            "growth_after_first_sample_mib": round(max(after_warmup) - values[0], 1)}


def server(args, extra: list) -> dict:
    from harness.loadgen.limits import measured_capacity
    log_dir = args.log_dir or os.path.join(ROOT, "build", "logs")
    capacity = args.capacity
    if capacity is None:
        cfg = {"system_id": "CPU", "backend": "null", "model": "efficientnet-lite0", "precision": "fp32",
               "config_ver": "default", "batch_size": args.batch_size, "null_latency_us": None}
        found = measured_capacity(cfg, "Server", log_dir)
        if found is None:
            sys.exit(f"No VALID null-backend Server run of batch size {args.batch_size} under {log_dir}: pass "
                     "--capacity, or find it first with short runs (code/main.py --action=run_harness --backend=null "
                     "--scenarios=Server --server_target_qps=N --min_duration=60000 ...) at rising N.")
        capacity, where = found
        print(f"capacity {capacity:g} q/s from {where}")
    target = round(args.fraction * capacity, 1)
    min_ms = int(args.duration_s * 1000)
    command = [sys.executable, os.path.join(ROOT, "code", "main.py"), "--action=run_harness", *COMMON,
               "--scenarios=Server", f"--server_target_qps={target}", f"--min_duration={min_ms}",
               f"--batch_size={args.batch_size}", f"--log_dir={log_dir}", *extra]
    print("$ " + " ".join(command), flush=True)
    samples: list = []
    stop = threading.Event()
    proc = subprocess.Popen(command)
    sampler = threading.Thread(target=sample_rss, args=(proc.pid, args.every_s, samples, stop), daemon=True)
    sampler.start()
    rc = proc.wait()
    stop.set()
    result = {"mode": "server", "capacity_qps": capacity, "target_qps": target, "min_duration_ms": min_ms,
              "exit_code": rc, "rss": report(samples)}
    stamps = sorted(os.listdir(log_dir))
    try:
        with open(os.path.join(log_dir, stamps[-1], "CPU", "resnet50", "Server", "summary.json")) as f:
            s = json.load(f)
        result.update({k: s.get(k) for k in ("result_validity", "scheduled_queries_per_second",
                                             "completed_samples_per_second", "p99_latency_ms", "wall_seconds")})
    except (OSError, IndexError, ValueError):
        pass
    return result


def accuracy(args) -> dict:
    import numpy as np
    from harness.backends import get_backend
    from harness.loadgen.lib import _lg
    from harness.loadgen.run import evaluate_accuracy, run_loadgen
    from harness.loadgen.sut import QSL, SUT
    from resnet50.imagenet import read_map
    image_map = read_map(MAP_50K)
    labels = image_map.labels[:args.samples]
    if len(labels) < args.samples:
        labels = np.resize(labels, args.samples)
    out_dir = os.path.join(args.log_dir or os.path.join(ROOT, "build", "logs"),
                           time.strftime("soak-accuracy-%Y.%m.%d-%H.%M.%S"))
    cfg = {"system_id": "CPU", "config_block": "CPU", "config_ver": "default", "min_duration": 0,
           "offline_expected_qps": 1e6}
    null = get_backend("null")
    runners = [null.load("", None, null.options({"null_label": args.label})) for _ in range(args.workers)]
    placeholder = np.zeros((args.samples, 1), dtype=np.int8)     # the null backend reads no pixels
    qsl = QSL(placeholder, 1024, runners)
    sut = SUT(_lg(), qsl, runners, args.batch_size, 0)
    samples: list = []
    stop = threading.Event()
    sampler = threading.Thread(target=sample_rss, args=(os.getpid(), args.every_s, samples, stop), daemon=True)
    start_rss = rss_mib(os.getpid())
    sampler.start()
    t0 = time.monotonic()
    summary = run_loadgen("Offline", "AccuracyOnly", cfg, qsl, sut, out_dir)
    wall = time.monotonic() - t0
    acc = evaluate_accuracy(os.path.join(out_dir, "mlperf_log_accuracy.json"), labels, 75.1, "null", out_dir)
    stop.set()
    samples.append((round(wall), round(rss_mib(os.getpid()), 1)))
    with open(os.path.join(out_dir, "mlperf_log_accuracy.json")) as f:
        logged = len({e["qsl_idx"] for e in json.load(f)})
    return {"mode": "accuracy", "samples": args.samples, "distinct_samples_logged": logged,
            "accuracy_total": acc["total"], "top1": acc["top1"], "wall_seconds": round(wall, 1),
            "samples_per_second": round(args.samples / wall), "rss_before_mib": round(start_rss, 1),
            "rss": report(samples), "loadgen_errors": summary.get("loadgen_errors"), "logs": out_dir}


def main():
    argv = sys.argv[1:]
    extra = []
    if "--" in argv:
        extra = argv[argv.index("--") + 1:]
        argv = argv[:argv.index("--")]
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=("server", "accuracy"))
    parser.add_argument("--duration_s", type=float, default=600)
    parser.add_argument("--fraction", type=float, default=0.8)
    parser.add_argument("--capacity", type=float)
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--every_s", type=float, default=30)
    parser.add_argument("--samples", type=int, default=50000)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--label", type=int, default=0)
    parser.add_argument("--log_dir")
    args = parser.parse_args(argv)
    result = server(args, extra) if args.mode == "server" else accuracy(args)
    print(json.dumps(result, indent=1))
    out = os.path.join(ROOT, "build", "soak")
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, f"{args.mode}-{time.strftime('%Y%m%d-%H%M%S')}.json"), "w") as f:
        json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
