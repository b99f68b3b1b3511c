"""harness/loadgen/timing.py: the SUT-side latency histogram and completion timeline."""
import json

import pytest

from harness.loadgen import timing


def test_bins():
    edges = timing.bin_edges_s()
    assert len(edges) == timing.N_BINS + 1
    assert edges[0] == pytest.approx(1e-6) and edges[-1] == pytest.approx(1e3)
    assert edges[timing.BINS_PER_DECADE] == pytest.approx(1e-5)


def test_record_counts_each_piece_once_per_sample_in_its_bin():
    w = timing.WorkerTiming(t0=100.0)
    w.record(100.5, 10, [(100.5 - 1e-3, 6), (100.5 - 2e-3, 4)])
    edges = timing.bin_edges_s()
    for latency, count in ((1e-3, 6), (2e-3, 4)):
        i = next(i for i in range(timing.N_BINS) if edges[i] <= latency * 1.0000001 < edges[i + 1])
        assert w.hist[i] == count
    assert sum(w.hist) == 10
    assert len(w.timeline) == 51 and w.timeline[50] == 10 and sum(w.timeline) == 10


def test_latencies_outside_the_range_go_to_the_end_bins():
    w = timing.WorkerTiming(t0=0.0)
    w.record(5000.0, 1, [(0.0, 1)])          # 5000 s
    w.record(1.0, 2, [(1.0, 2)])             # 0 s
    assert w.hist[-1] == 1 and w.hist[0] == 2


def test_merge_sums_workers_and_rebins_long_timelines():
    a, b = timing.WorkerTiming(0.0), timing.WorkerTiming(0.0)
    a.record(0.005, 3, [(0.0, 3)])
    b.record(0.015, 2, [(0.0, 2)])
    merged = timing.merge([a, b])
    assert merged["samples"] == 5 and sum(merged["histogram"]["counts"]) == 5
    assert merged["timeline"] == {"step_s": timing.TIMELINE_STEP_S, "samples": [3, 2]}
    assert merged["histogram"]["bins_per_decade"] == timing.BINS_PER_DECADE
    long = timing.WorkerTiming(0.0)
    long.record(timing.TIMELINE_STEP_S * 4500, 7, [(0.0, 7)])
    rebinned = timing.merge([long])["timeline"]
    assert len(rebinned["samples"]) <= timing.MAX_TIMELINE_POINTS and sum(rebinned["samples"]) == 7
    assert rebinned["step_s"] == pytest.approx(timing.TIMELINE_STEP_S * 3)


def test_merge_of_no_workers():
    merged = timing.merge([])
    assert merged["samples"] == 0 and merged["timeline"]["samples"] == []
    assert merged["histogram"]["counts"] == [0] * timing.N_BINS


def test_write_and_enabled(tmp_path, monkeypatch):
    w = timing.WorkerTiming(timing.now())
    w.record(w.t0 + 0.001, 1, [(w.t0, 1)])
    path = timing.write(str(tmp_path), [w])
    assert path == str(tmp_path / timing.FILE_NAME)
    assert json.loads(open(path).read()) == timing.merge([w])
    monkeypatch.delenv("MLPERF_SUT_TIMING", raising=False)
    assert timing.enabled()
    for off in ("0", "off", "False", "no"):
        monkeypatch.setenv("MLPERF_SUT_TIMING", off)
        assert not timing.enabled()
