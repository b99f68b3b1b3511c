#!/usr/bin/env python3
"""Harness speed, measured side by side in one run (figures go to docs/performance.md).

1. The harness alone, with the `null` backend (no inference, no data copies), native SUT and Python SUT alternated:
   Offline samples/s, SingleStream p90 (scripts/bench_sut.py runs them), then the highest VALID Server rate each
   SUT holds (a short-run search).
2. ONNX Runtime through LoadGen Offline vs the same engine's raw loop (same batch size, same threads, same data),
   alternated raw / LoadGen native SUT / LoadGen Python SUT / raw so that drift on a shared machine shows.

Needs the EfficientNet-Lite0 model and val-1300 preprocessed (`make demo` does both) for part 2.
Usage: .venv/bin/python scripts/bench_harness.py [--seconds 10] [--rounds 2] [--skip_server] [--skip_ort] [--skip_null]
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
    backend = get_backend("onnxruntime")
    runner = backend.load(engine, None, backend.options({"threads": threads}))
    runner.infer(array[:batch])
    done, start, i = 0, time.perf_counter(), 0
    while time.perf_counter() - start < seconds:
        runner.infer(array[i:i + batch])
        done += batch
        i = (i + batch) % (len(array) - batch)
    return done / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--suts", default="native,python")
    parser.add_argument("--skip_server", action="store_true")
    parser.add_argument("--skip_ort", action="store_true")
    parser.add_argument("--skip_null", action="store_true")
    opts = parser.parse_args()
    import statistics
    sys.path.insert(0, os.path.join(ROOT, "scripts"))
    import bench_sut
    suts = opts.suts.split(",")
    null_opts = bench_sut.build_parser().parse_args(["--seconds", str(opts.seconds), "--suts", opts.suts])

    print(f"== null backend: the harness and LoadGen alone ({', '.join(suts)} SUT alternated) ==", flush=True)
    offline, single = {s: [] for s in suts}, {s: [] for s in suts}
    for _ in range(0 if opts.skip_null else opts.rounds):
        for sut in suts:
            offline[sut].append(bench_sut.offline(sut, null_opts))
            single[sut].append(bench_sut.single_stream(sut, null_opts))
    server = {}
    if not opts.skip_server and not opts.skip_null:
        for sut in suts:
            server[sut] = bench_sut.server_search(sut, null_opts)
    for sut in ([] if opts.skip_null else suts):
        print(f"  {sut:<7} Offline median {statistics.median(offline[sut]):>12,.0f} samples/s   SingleStream p90 "
              f"median {statistics.median(single[sut]):.0f} us" +
              (f"   Server highest VALID {server[sut]:,.0f} q/s" if sut in server else ""), flush=True)
    if opts.skip_ort:
        return

    print("== onnxruntime: LoadGen Offline vs the raw loop (same engine, batch, threads) ==", flush=True)
    from harness.artifacts.engines import engine_path
    from harness.config.context import run_config
    from harness.backends import get_backend
    from harness.actions import parse_args
    from resnet50.models import get_model
    ms = str(int(opts.seconds * 1000))
    subprocess.run(MAIN + ["--action=generate_engines", *COMMON], check=True, capture_output=True)
    rc = run_config(parse_args(COMMON), "Offline", "CPU")
    cfg = rc.settings()
    engine = engine_path(rc, get_model("efficientnet-lite0"), get_backend("onnxruntime"))
    batch, threads = int(cfg["batch_size"]), int(cfg["threads"])
    raws, lgs = [], {s: [] for s in suts}
    for _ in range(opts.rounds):   # alternated, so that drift on a shared machine shows in every column
        raws.append(raw_loop(engine, batch, threads, opts.seconds))
        print(f"  raw loop       {raws[-1]:8.1f} samples/s", flush=True)
        for sut in suts:
            r = harness("--scenarios=Offline", f"--min_duration={ms}", "--min_query_count=1",
                        f"--offline_expected_qps={raws[-1] * 1.3:.0f}",
                        f"--sut={sut}")
            lgs[sut].append(r["samples_per_second"])
            print(f"  LoadGen {sut:<7}{lgs[sut][-1]:8.1f} samples/s ({r['result_validity']})", flush=True)
    raws.append(raw_loop(engine, batch, threads, opts.seconds))
    print(f"  raw loop       {raws[-1]:8.1f} samples/s", flush=True)
    for sut in suts:
        print(f"  median LoadGen ({sut} SUT) / median raw = {statistics.median(lgs[sut]) / statistics.median(raws):.3f} "
              f"(batch {batch}, {threads} threads, {opts.rounds} LoadGen runs between {len(raws)} raw loops)")


if __name__ == "__main__":
    main()
