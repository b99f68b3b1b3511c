#!/usr/bin/env python3
"""`make tune` on the null backend against a manual bisection of the Server target, alternated, medians.

Each round runs, in turn:
- tune: `code/main.py --action=tune --scenarios=Server --backend=null ...` from --start q/s (its own bracketing,
  bisection to 5%, one confirming run), timed from the outside;
- manual: what a person does by hand: `code/main.py --action=run_harness` at the midpoint of a fixed bracket
  [--low, --high], keeping the half LoadGen's verdict (result_validity) points to, until the bracket is within 5%,
  each run as long as tune's probes.
Prints each round and the medians: the two ceilings, their ratio (tune / manual) and tune's wall time.

Usage: .venv/bin/python scripts/bench_tune.py [--rounds 2] [--probe_ms 10000] [--start 2000]
(needs the preprocessed val-1300 for EfficientNet-Lite0, as `make demo` leaves it).
"""
import argparse
import glob
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAIN = [sys.executable, os.path.join(ROOT, "code", "main.py")]
SHARED = os.path.abspath(os.environ.get("MLPERF_SHARED_DIR") or os.path.join(ROOT, "..", "shared"))
MAP = os.path.join(SHARED, "data", "imagenet", "val_map_1300.txt")
COMMON = ["--system_name=CPU", "--backend=null", "--model=efficientnet-lite0", f"--map_path={MAP}",
          "--scenarios=Server", "--batch_size=64", "--server_batch_timeout_us=1000"]


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def tune(opts, base: str) -> tuple[float, float]:
    start = time.monotonic()
    out = subprocess.run(MAIN + ["--action=tune", *COMMON, f"--server_target_qps={opts.start}",
                                 f"--tune_probe_ms={opts.probe_ms}", f"--tune_confirm_ms={opts.probe_ms}",
                                 f"--log_dir={base}"], capture_output=True, text=True)
    wall = time.monotonic() - start
    for line in out.stdout.splitlines():
        if " -> " in line or "confirmed" in line:
            print("    " + line, flush=True)
    if out.returncode != 0:
        print(out.stderr[-1500:])
        return float("nan"), wall
    (path,) = glob.glob(os.path.join(base, "*", "tune", "Server", "overlay.json"))
    with open(path) as f:
        return float(json.load(f)["values"]["server_target_qps"]), wall


def manual(opts, base: str) -> tuple[float, float]:
    lo, hi, n = float(opts.low), float(opts.high), 0
    start = time.monotonic()
    while hi - lo > 0.05 * lo:
        mid = round((lo + hi) / 2)
        log_dir = os.path.join(base, f"{n:02d}-{mid}")
        n += 1
        queries = max(1024, int(mid * opts.probe_ms / 1000))
        subprocess.run(MAIN + ["--action=run_harness", *COMMON, f"--server_target_qps={mid}",
                               f"--min_duration={opts.probe_ms}", f"--min_query_count={queries}",
                               f"--log_dir={log_dir}"], capture_output=True, text=True)
        paths = glob.glob(os.path.join(log_dir, "*", "CPU", "resnet50", "Server", "summary.json"))
        if not paths:
            sys.exit(f"the run at {mid} q/s failed: no summary.json under {log_dir}")
        with open(paths[0]) as f:
            summary = json.load(f)
        valid = summary.get("result_validity") == "VALID"
        print(f"    manual {mid:>7} q/s -> {summary.get('result_validity')} p99 {summary.get('p99_latency_ms')} ms",
              flush=True)
        lo, hi = (mid, hi) if valid else (lo, mid)
    return lo, time.monotonic() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--probe_ms", type=int, default=10000)
    parser.add_argument("--start", type=float, default=2000)
    parser.add_argument("--low", type=float, default=500)
    parser.add_argument("--high", type=float, default=40000)
    opts = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(opts.rounds):
            print(f"round {r + 1}: load {load()}", flush=True)
            t, t_wall = tune(opts, os.path.join(tmp, f"tune{r}"))
            m, m_wall = manual(opts, os.path.join(tmp, f"manual{r}"))
            rows.append((t, t_wall, m, m_wall, t / m))
            print(f"  tune {t:.0f} q/s in {t_wall:.0f} s | manual {m:.0f} q/s in {m_wall:.0f} s | "
                  f"tune/manual {t / m:.3f} | load {load()}", flush=True)
    med = [statistics.median(c) for c in zip(*rows)]
    print(f"\nmedians of {len(rows)} rounds: tune {med[0]:.0f} q/s in {med[1]:.0f} s, manual {med[2]:.0f} q/s in "
          f"{med[3]:.0f} s, tune/manual {med[4]:.3f}")


if __name__ == "__main__":
    main()
