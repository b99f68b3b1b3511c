#!/usr/bin/env python3
"""What the SUT's per-sample latency record (harness/loadgen/timing.py) costs, measured side by side in one run.

The worker loop's queue work (WorkQueue.put / take) with and without the record (the issue-time pieces that take
collects and WorkerTiming.record per batch), alternated off / on / off / on ... so that drift on a shared machine
shows; medians. No LoadGen, no backend: this is the record's cost against the cheapest loop it can sit in, so the
share it shows is an upper bound on what it adds to a real run.

Usage: .venv/bin/python scripts/bench_sut_timing.py [--rounds 5]
"""
import argparse
import os
import statistics
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "code"))

from harness.loadgen.sut import WorkQueue  # noqa: E402
from harness.loadgen.timing import WorkerTiming  # noqa: E402

# (name, queries, samples per query, batch size): Server-like (one sample per IssueQuery), Offline-like (one query).
CASES = (("Server: 1-sample queries, batch 64", 100_000, 1, 64),
         ("Server: 1-sample queries, batch 1", 50_000, 1, 1),
         ("Offline: one query of 2M samples, batch 256", 1, 2_000_000, 256))


def loop(queries: int, per_query: int, batch: int, timing: bool) -> float:
    """Seconds per sample of put + take (+ record)."""
    q = WorkQueue()
    ids = list(range(per_query))
    idx = np.arange(per_query, dtype=np.int64)
    start = time.perf_counter()
    for _ in range(queries):
        q.put(ids, idx)
    q.close()
    w = WorkerTiming(start)
    issued: list = [] if timing else None
    clock = time.perf_counter
    while True:
        if timing:
            issued.clear()
        item = q.take(batch, 0.0, issued)
        if item is None:
            break
        if timing:
            w.record(clock(), len(item[0]), issued)
    return (time.perf_counter() - start) / (queries * per_query)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print("| case | without record (ns/sample) | with record (ns/sample) | added (ns/sample) | ratio |")
    print("| --- | --- | --- | --- | --- |")
    for name, queries, per_query, batch in CASES:
        off, on = [], []
        for _ in range(args.rounds):
            off.append(loop(queries, per_query, batch, False))
            on.append(loop(queries, per_query, batch, True))
        a, b = statistics.median(off) * 1e9, statistics.median(on) * 1e9
        print(f"| {name} | {a:.0f} | {b:.0f} | {b - a:.0f} | {b / a:.2f} |")


if __name__ == "__main__":
    main()
