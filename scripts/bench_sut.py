#!/usr/bin/env python3
"""The SUT's capacity with the null backend: Offline samples/s, the highest VALID Server rate (a search), and
SingleStream latency, for the native and the Python SUT side by side (alternated, medians).

Each run is a child process (LoadGen reads its mlperf.conf once per process) through harness.loadgen_run.run_loadgen
with harness.sut.make_sut, as `code/main.py --backend=null` runs a scenario, over a QSL of 1024 one-value samples
(the null backend never reads sample data, so no images or model are needed: this runs on a bare GPU host too).

    .venv/bin/python scripts/bench_sut.py                                   # everything, 2 rounds
    .venv/bin/python scripts/bench_sut.py --only server --suts native --server_start 100000 --seconds 3

Server search: start at --server_start; double while VALID (bracketing), then bisect between the highest VALID and
the lowest INVALID rate for --bisect steps. Short runs with min_query_count 100: LoadGen's verdict on such runs, not a
submission (a submission needs 270,336 queries and 600 s).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "code"))


def child(opts) -> None:
    import numpy as np
    from harness.backends.null.backend import NullRunner
    from harness.loadgen.run import run_loadgen
    from harness.loadgen.sut import QSL, make_sut
    scenario = opts.scenario
    runners = [NullRunner(0) for _ in range(opts.workers)]
    qsl = QSL(np.zeros((1024, 1), np.float32), 1024, runners)
    batch = 1 if scenario == "SingleStream" else opts.batch_size
    timeout = opts.timeout_us / 1e6 if scenario == "Server" else 0.0
    sut = make_sut(opts.sut, qsl, runners, batch, 0, timeout)
    cfg = {"system_id": "null-bench", "config_block": "null-bench", "config_ver": "bench_sut",
           "min_duration": int(opts.seconds * 1000), "min_query_count": 100, "performance_sample_count": 1024,
           "offline_expected_qps": opts.qps, "server_target_qps": opts.qps,
           "server_coalesce_queries": bool(opts.coalesce),
           "single_stream_expected_latency_ns": 4000}
    if scenario == "Offline":
        cfg["min_query_count"] = 1
    summary = run_loadgen(scenario, "PerformanceOnly", cfg, qsl, sut, opts.out)
    summary["sut"] = sut.kind
    print("RESULT " + json.dumps(summary), flush=True)


def run(scenario: str, sut: str, qps: float, opts) -> dict:
    out = tempfile.mkdtemp(prefix=f"bench-sut-{scenario}-")
    cmd = [sys.executable, os.path.abspath(__file__), "--child", "--scenario", scenario, "--sut", sut,
           "--qps", str(qps), "--out", out, "--seconds", str(opts.seconds), "--workers", str(opts.workers),
           "--batch_size", str(opts.batch_size), "--timeout_us", str(opts.timeout_us),
           "--coalesce", str(int(bool(opts.coalesce)))]
    start = time.time()
    result = subprocess.run(cmd, capture_output=True, text=True)
    lines = [line for line in result.stdout.splitlines() if line.startswith("RESULT ")]
    if result.returncode != 0 or not lines:
        sys.exit(f"{scenario} run ({sut}, {qps}) failed: {result.stderr[-3000:]}")
    summary = json.loads(lines[-1][len("RESULT "):])
    summary["wall"] = time.time() - start
    subprocess.run(["rm", "-rf", out])
    return summary


def workers_line(summary: dict) -> str:
    stats = summary.get("sut_workers") or []
    samples = sum(w["samples"] for w in stats) or 1
    batches = sum(w["batches"] for w in stats) or 1
    busy = sum(w.get("infer_s", 0) + w.get("complete_s", 0) for w in stats)
    return f"{len(stats)} worker(s), {samples / batches:.1f} samples/batch, workers busy {busy:.2f} s"


def offline(sut: str, opts) -> float:
    expected = dict(item.split("=") for item in opts.offline_qps.split(","))
    s = run("Offline", sut, float(expected.get(sut, 1e6)), opts)
    print(f"  Offline  {sut:<7} {s['samples_per_second']:>12,.0f} samples/s  {s['result_validity']:<8} "
          f"({workers_line(s)})", flush=True)
    return float(s["samples_per_second"])


def server_once(sut: str, qps: float, opts) -> bool:
    s = run("Server", sut, qps, opts)
    ok = s["result_validity"] == "VALID"
    print(f"  Server   {sut:<7} {qps:>12,.0f} q/s  {s['result_validity']:<8} p99 {s['p99_latency_ms']:.2f} ms  "
          f"completed {s['completed_samples_per_second']:,.0f}/s ({workers_line(s)})", flush=True)
    return ok


def server_search(sut: str, opts) -> float:
    """The highest VALID rate found: doubling from --server_start, then --bisect bisection steps."""
    good, bad, qps = 0.0, None, float(opts.server_start)
    while bad is None:
        if server_once(sut, qps, opts):
            good, qps = qps, qps * 2
            if qps > opts.server_max:
                break
        else:
            bad = qps
    if bad is not None and good == 0:   # INVALID at the start: go down instead
        hi = bad
        for _ in range(4):
            hi /= 2
            if server_once(sut, hi, opts):
                good = hi
                break
            bad = hi
    for _ in range(opts.bisect if bad is not None and good else 0):
        mid = round((good + bad) / 2, -3) if bad - good > 2000 else (good + bad) / 2
        if server_once(sut, mid, opts):
            good = mid
        else:
            bad = mid
    print(f"  Server   {sut:<7} highest VALID: {good:,.0f} q/s (lowest INVALID tried: "
          f"{'none' if bad is None else f'{bad:,.0f}'})", flush=True)
    return good


def single_stream(sut: str, opts) -> float:
    s = run("SingleStream", sut, 0, opts)
    p90 = s["p90_latency_ms"] * 1000
    print(f"  SingleStream {sut:<7} p50 {s['p50_latency_ms'] * 1000:.0f} us  p90 {p90:.0f} us  "
          f"{s['result_validity']}", flush=True)
    return p90


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suts", default="native,python", help="comma list: native, python")
    parser.add_argument("--only", default="offline,server,singlestream")
    parser.add_argument("--rounds", type=int, default=2, help="Offline and SingleStream rounds (alternated SUTs)")
    parser.add_argument("--seconds", type=float, default=5, help="min_duration of each run")
    parser.add_argument("--workers", type=int, default=1, help="SUT worker threads (null runners)")
    parser.add_argument("--batch_size", type=int, default=256)
    parser.add_argument("--timeout_us", type=int, default=200, help="Server batching timeout")
    parser.add_argument("--coalesce", type=int, default=1, help="server_coalesce_queries (1/0)")
    parser.add_argument("--offline_qps", default="native=4e6,python=6e5",
                        help="Offline expected samples/s per SUT (LoadGen issues 1.1 x seconds x this many samples; "
                        "below the real rate the run is INVALID, its samples/s still measured)")
    parser.add_argument("--server_start", type=float, default=50000)
    parser.add_argument("--server_max", type=float, default=4e6)
    parser.add_argument("--bisect", type=int, default=3)
    # child mode
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--scenario", help=argparse.SUPPRESS)
    parser.add_argument("--sut", help=argparse.SUPPRESS)
    parser.add_argument("--qps", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    return parser


def main() -> int:
    opts = build_parser().parse_args()
    if opts.child:
        child(opts)
        return 0
    suts = [s.strip() for s in opts.suts.split(",") if s.strip()]
    only = opts.only.split(",")
    print(f"bench_sut: SUTs {suts}, {opts.seconds:g} s runs, {opts.workers} worker(s), batch {opts.batch_size}, "
          f"Server batching timeout {opts.timeout_us} us, coalescing {'on' if opts.coalesce else 'off'}, "
          f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}", flush=True)
    results: dict = {}
    for r in range(opts.rounds):
        for sut in suts:
            if "offline" in only:
                results.setdefault(("Offline samples/s", sut), []).append(offline(sut, opts))
            if "singlestream" in only:
                results.setdefault(("SingleStream p90 us", sut), []).append(single_stream(sut, opts))
    if "server" in only:
        for sut in suts:
            results.setdefault(("Server highest VALID q/s", sut), []).append(server_search(sut, opts))
    print(f"== medians (load at the end {os.getloadavg()[0]:.1f}) ==")
    for (what, sut), values in results.items():
        print(f"  {what:<26} {sut:<7} {statistics.median(values):>12,.0f}   "
              f"(runs: {', '.join(f'{v:,.0f}' for v in values)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
