#!/usr/bin/env python3
"""Harness speed, measured side by side in one run (figures go to docs/performance.md).

1. The harness alone, with the `null` backend (no inference, no data copies): Offline samples/s, Server at rising
   targets (VALID and p99), SingleStream p50/p90 (all of it is harness + LoadGen overhead).
2. ONNX Runtime through LoadGen Offline vs the same engine's raw loop (same batch size, same threads, same data),
   alternated raw / LoadGen / raw so that drift on a shared machine shows.

Needs the EfficientNet-Lite0 model and val-1300 preprocessed (`make demo` does both).
Usage: .venv/bin/python scripts/bench_harness.py [--seconds 15]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "code"))
MAIN = [sys.executable, os.path.join(ROOT, "code", "main.py")]
SHARED = os.path.abspath(os.environ.get("MLPERF_SHARED_DIR") or os.path.join(ROOT, "..", "shared"))
MAP = os.path.join(SHARED, "data", "imagenet", "val_map_1300.txt")
COMMON = ["--system_name=CPU", "--model=efficientnet-lite0", f"--map_path={MAP}"]


def harness(*args) -> dict:
    log_dir = tempfile.mkdtemp(prefix="bench-", dir=os.path.join(ROOT, "build"))
    out = subprocess.run(MAIN + ["--action=run_harness", f"--log_dir={log_dir}", *COMMON, *args],
                         capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"harness failed: {out.stderr[-2000:]}")
    (stamp,) = os.listdir(log_dir)
    with open(os.path.join(log_dir, stamp, "perf_harness_summary.json")) as f:
        (result,) = json.load(f)["CPU"]["resnet50"].values()
    return result


def raw_loop(engine: str, batch: int, threads: int, seconds: float) -> float:
    import numpy as np
    from harness.backends import get_backend
    from resnet50.imagenet import read_map
    from resnet50.preprocessing import default_preprocessed_dir, load_preprocessed
    from resnet50.models import get_model
    data = load_preprocessed(get_model("efficientnet-lite0"), read_map(MAP), default_preprocessed_dir())
    array = np.ascontiguousarray(data.array[:1024])           # in RAM, as the QSL holds it
    runner = get_backend("onnxruntime").load(engine, None, {"threads": threads})
    runner.infer(array[:batch])
    done, start, i = 0, time.perf_counter(), 0
    while time.perf_counter() - start < seconds:
        runner.infer(array[i:i + batch])
        done += batch
        i = (i + batch) % (len(array) - batch)
    return done / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--rounds", type=int, default=2)
    opts = parser.parse_args()
    ms = str(int(opts.seconds * 1000))
    rows = []

    print("== null backend: the harness and LoadGen alone ==", flush=True)
    r = harness("--backend=null", "--scenarios=Offline", f"--min_duration={ms}", "--offline_expected_qps=1500000",
                "--batch_size=256")
    rows.append(("null Offline samples/s (batch 256)", f"{r['samples_per_second']:.0f}", r["result_validity"]))
    for qps in (20000, 30000, 40000):
        r = harness("--backend=null", "--scenarios=Server", f"--min_duration={ms}", f"--server_target_qps={qps}",
                    "--batch_size=64", "--server_batch_timeout_us=1000")
        rows.append((f"null Server at {qps} q/s: p99 ms", f"{r['p99_latency_ms']:.2f}", r["result_validity"]))
    r = harness("--backend=null", "--scenarios=SingleStream", f"--min_duration={ms}",
                "--single_stream_expected_latency_ns=20000")
    rows.append(("null SingleStream p50 / p90 us", f"{r['p50_latency_ms'] * 1000:.0f} / {r['p90_latency_ms'] * 1000:.0f}",
                 r["result_validity"]))
    for row in rows:
        print(f"  {row[0]:<40} {row[1]:>12}  {row[2]}", flush=True)

    print("== onnxruntime: LoadGen Offline vs the raw loop (same engine, batch, threads) ==", flush=True)
    from harness.actions import engine_path, scenario_config
    from harness.backends import get_backend
    from harness.flags import parse_args
    from resnet50.models import get_model
    subprocess.run(MAIN + ["--action=generate_engines", *COMMON], check=True, capture_output=True)
    cfg = scenario_config(parse_args(COMMON), "Offline", "CPU")
    engine = engine_path(cfg, get_model("efficientnet-lite0"), get_backend("onnxruntime"))
    batch, threads = int(cfg["batch_size"]), int(cfg["threads"])
    raws, lgs = [], []
    for _ in range(opts.rounds):   # alternated, so that drift on a shared machine shows in both columns
        raws.append(raw_loop(engine, batch, threads, opts.seconds))
        print(f"  raw loop       {raws[-1]:8.1f} samples/s", flush=True)
        r = harness("--scenarios=Offline", f"--min_duration={ms}", f"--offline_expected_qps={raws[-1] * 1.3:.0f}")
        lgs.append(r["samples_per_second"])
        print(f"  LoadGen        {lgs[-1]:8.1f} samples/s ({r['result_validity']})", flush=True)
    raws.append(raw_loop(engine, batch, threads, opts.seconds))
    print(f"  raw loop       {raws[-1]:8.1f} samples/s", flush=True)
    import statistics
    print(f"  median LoadGen / median raw = {statistics.median(lgs) / statistics.median(raws):.3f} "
          f"(batch {batch}, {threads} threads, {opts.rounds} LoadGen runs between {len(raws)} raw loops)")

if __name__ == "__main__":
    main()
