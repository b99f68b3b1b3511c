"""Per-sample latency as the SUT sees it, recorded cheaply enough to stay on in every run.

LoadGen's mlperf_log_detail.txt holds only a few latency percentiles (min, mean, p50 ... p99.9, max), and its trace
(mlperf_log_trace.json, one JSON event per sample) costs too much at the rates this harness is built for. So each SUT
worker keeps:

- a latency histogram with log-spaced bins (BINS_PER_DECADE per decade, 1 µs to 1000 s): for every piece of work it
  takes from the queue (one IssueQuery call, or the part of it that went into one batch), the time from that
  IssueQuery call to the return of the QuerySamplesComplete that answered it, counted once per sample. Cost: one
  bisect and one add per IssueQuery piece, never per sample of an Offline query;
- a completion timeline: samples completed per TIMELINE_STEP_S since the SUT started, one add per batch.

What it is not: LoadGen's latency runs from a query's *scheduled* time to completion, so it also counts LoadGen's own
issue delay; LoadGen's percentiles (the detail log) are the ones that decide validity. `sut_timing.json` in the run
folder holds the merged record; harness/report/page.py plots it and says which is which. MLPERF_SUT_TIMING=0 in the
environment turns the record off (no sut_timing.json; the report then shows LoadGen's percentiles only).
"""
from __future__ import annotations

import json
import math
import os
from bisect import bisect_right
import time
from typing import Any, Optional, Sequence

from harness.core import env

BINS_PER_DECADE = 20
LOW_EXP = -6            # 1 µs
DECADES = 9             # up to 1000 s
N_BINS = BINS_PER_DECADE * DECADES
TIMELINE_STEP_S = 0.01
MAX_TIMELINE_POINTS = 2000
FILE_NAME = "sut_timing.json"


def enabled() -> bool:
    """MLPERF_SUT_TIMING (core/env.py): on unless set to a false word."""
    return env.get(env.SUT_TIMING)


def bin_edges_s() -> list[float]:
    return [10 ** (LOW_EXP + i / BINS_PER_DECADE) for i in range(N_BINS + 1)]


_INNER_EDGES = bin_edges_s()[1:-1]   # bisect_right over these gives the bin, clamped to 0 .. N_BINS - 1


class WorkerTiming:
    """One worker's record; only its own thread writes it."""
    __slots__ = ("hist", "timeline", "t0")

    def __init__(self, t0: float):
        self.hist = [0] * N_BINS
        self.timeline: list[int] = []
        self.t0 = t0

    def record(self, t_done: float, n: int, pieces: Sequence[tuple[float, int]]) -> None:
        """A batch of n samples completed at t_done (perf_counter); pieces: (IssueQuery time, samples) of each part."""
        hist, edges = self.hist, _INNER_EDGES
        for t_issue, count in pieces:
            hist[bisect_right(edges, t_done - t_issue)] += count
        slot = int((t_done - self.t0) / TIMELINE_STEP_S)
        timeline = self.timeline
        if slot >= len(timeline):
            timeline.extend([0] * (slot + 1 - len(timeline)))
        timeline[slot] += n


def merge(workers: Sequence[WorkerTiming]) -> dict[str, Any]:
    """The workers' records as one JSON-ready dict (the timeline rebinned to at most MAX_TIMELINE_POINTS)."""
    hist = [sum(col) for col in zip(*(w.hist for w in workers))] if workers else [0] * N_BINS
    length = max((len(w.timeline) for w in workers), default=0)
    timeline = [0] * length
    for w in workers:
        for i, v in enumerate(w.timeline):
            timeline[i] += v
    factor = max(1, math.ceil(length / MAX_TIMELINE_POINTS))
    if factor > 1:
        timeline = [sum(timeline[i:i + factor]) for i in range(0, length, factor)]
    return {
        "what": "SUT-side latency: IssueQuery call to QuerySamplesComplete return, per sample (histogram); samples "
                "completed per timeline step since the SUT started",
        "histogram": {"bins_per_decade": BINS_PER_DECADE, "low_exp10_s": LOW_EXP, "counts": hist},
        "timeline": {"step_s": TIMELINE_STEP_S * factor, "samples": timeline},
        "samples": int(sum(hist)),
    }


def write(out_dir: str, workers: Sequence[WorkerTiming]) -> Optional[str]:
    path = os.path.join(out_dir, FILE_NAME)
    with open(path, "w") as f:
        json.dump(merge(workers), f)
    return path


def now() -> float:
    return time.perf_counter()
