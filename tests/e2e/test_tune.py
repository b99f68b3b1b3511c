"""make tune (code/harness/actions/tune.py; harness/tune/ search.py, overlay.py, probes.py): the search as pure functions with fake probes, the overlay, the progress line,
and real short runs through code/main.py and LoadGen (null backend): a tune end to end, the stray audit.config
refusal, and LoadGen's FindPeakPerformance mode passed through."""
import json
import os
import subprocess
import sys

import pytest

from conftest import MAIN, ROOT, VAL_MAP_1300, run_main

from harness.core.errors import HarnessError
from harness.tune import overlay as O
from harness.tune import probes as P
from harness.tune import search as S
from harness.loadgen.logs import find_peak_result
from harness.loadgen.progress import ProgressLine, enabled, format_line


# ---------------------------------------------------------------------------------------------------------------
# Fakes
class FakeServer:
    """VALID at or below `ceiling`; an INVALID probe reports `capacity` as its completed rate (None: nothing)."""

    def __init__(self, ceiling, capacity=None):
        self.ceiling, self.capacity, self.calls = ceiling, capacity, []

    def __call__(self, value, phase):
        self.calls.append((round(value, 3), phase))
        if value <= self.ceiling:
            return S.Outcome(value, "VALID", measured=value)
        return S.Outcome(value, "INVALID", measured=self.capacity)


def test_bracket_up_then_bisect_to_the_tolerance():
    probe = FakeServer(ceiling=137.0)
    found = S.search_ceiling(probe, 40, tolerance=0.05, max_probes=20)
    assert 137 * 0.95 <= found.value <= 137
    assert found.upper > 137 and (found.upper - found.value) <= 0.05 * found.value + 1e-9
    phases = [p for _, p in probe.calls]
    assert phases[:3] == ["bracket"] * 3 and [v for v, _ in probe.calls[:3]] == [40, 80, 160]   # x2 until INVALID
    assert set(phases[3:]) == {"bisect"}
    assert "within 5%" in found.stop and found.probes == len(probe.calls)


def test_bracket_down_from_an_invalid_start():
    probe = FakeServer(ceiling=137.0)
    found = S.search_ceiling(probe, 1000, tolerance=0.05, max_probes=20)
    assert 137 * 0.95 <= found.value <= 137
    assert [v for v, _ in probe.calls[:4]] == [1000, 500, 250, 125]


def test_capacity_of_an_invalid_probe_shortens_the_search():
    blind = FakeServer(ceiling=120.0)
    hinted = FakeServer(ceiling=120.0, capacity=150.0)
    a = S.search_ceiling(blind, 2000, tolerance=0.05, max_probes=30)
    b = S.search_ceiling(hinted, 2000, tolerance=0.05, max_probes=30)
    assert 114 <= a.value <= 120 and 114 <= b.value <= 120
    assert hinted.calls[1][0] == pytest.approx(0.75 * 150)      # straight to 3/4 of what the system completed
    assert len(hinted.calls) < len(blind.calls)


def test_stop_conditions():
    never = FakeServer(ceiling=0.0)
    found = S.search_ceiling(never, 100, max_probes=50)
    assert found.value is None and "no VALID value" in found.stop
    assert min(v for v, _ in never.calls) >= 100 / 256
    always = FakeServer(ceiling=1e12)
    found = S.search_ceiling(always, 100, max_probes=4)
    assert found.value == 800 and found.upper is None and "probe limit (4)" in found.stop
    with pytest.raises(HarnessError):
        S.search_ceiling(always, 0)


def test_confirm_steps_down_until_every_run_is_valid():
    runs = []

    def run(value, phase):
        runs.append((round(value, 2), phase))
        return S.Outcome(value, "VALID" if value <= 130 else "INVALID")

    value, outcomes = S.confirm(run, 140, S.step_down(0.05), runs=3)
    assert value == pytest.approx(140 * 0.95 ** 2)          # 140 and 133 fail, 126.35 holds 3 of 3
    assert [v for v, _ in runs] == [140, 133, 126.35, 126.35, 126.35]
    assert all(p == "confirm" for _, p in runs) and len(outcomes) == 5
    value, outcomes = S.confirm(run, 1000, S.step_down(0.05), runs=2, retries=2)
    assert value is None and len(outcomes) == 3


def test_offline_rate_converges_on_a_valid_run():
    calls = []

    def probe(value, phase):     # 160 samples/s; VALID when the one query lasts min_duration (value >= rate / 1.1)
        calls.append(value)
        return S.Outcome(value, "VALID" if value >= 160 / 1.1 else "INVALID", measured=160.0)

    accept = S.offline_accept(0.05)
    found = S.search_fixed_point(probe, 300, lambda o: o.measured * S.OFFLINE_HEADROOM, accept)
    assert found.value == pytest.approx(176) and calls == [300, pytest.approx(176)]   # 300 is over 1.5 x 176
    found = S.search_fixed_point(probe, 50, lambda o: o.measured * S.OFFLINE_HEADROOM, accept)
    assert found.value == pytest.approx(176) and found.probes == 2
    found = S.search_fixed_point(probe, 200, lambda o: o.measured * S.OFFLINE_HEADROOM, accept)
    assert found.value == 200 and found.probes == 1          # above what it needs, not wastefully: kept


def test_noisy_offline_rate_settles_on_the_high_side():
    rates = iter([100, 150, 90, 120, 100, 100])
    found = S.search_fixed_point(lambda v, p: S.Outcome(v, "VALID" if next(rates, 100) <= 1.1 * v else "INVALID",
                                                        measured=100.0 if v < 160 else 140.0),
                                 100, lambda o: o.measured * 1.1, S.offline_accept(0.05))
    assert found.value is not None and found.value >= 110


def test_latency_converges_and_timeouts_retry_lower():
    def probe(value, phase):     # mean 2.2 ms; LoadGen runs out of queries when expected > 2 x real
        return S.Outcome(value, "VALID" if value <= 2 * 2.2e6 else "INVALID", measured=2.2e6)

    accept = S.latency_accept(0.05)
    found = S.search_fixed_point(probe, 5e6, lambda o: o.measured, accept)
    assert found.value == pytest.approx(2.2e6) and found.probes == 2
    found = S.search_fixed_point(probe, 2.0e6, lambda o: o.measured, accept)
    assert found.value == 2.0e6 and found.probes == 1        # a little below the mean: kept
    seen = []

    def slow(value, phase):
        seen.append(value)
        if value > 1000:
            return S.Outcome(value, "TIMEOUT")
        return S.Outcome(value, "VALID", measured=value)

    found = S.search_fixed_point(slow, 8000, lambda o: o.measured, accept)
    assert seen == [8000, 2000, 500] and found.value == 500
    nothing = S.search_fixed_point(lambda v, p: S.Outcome(v, "INVALID"), 10, lambda o: o.measured, accept)
    assert nothing.value is None and "measured nothing" in nothing.stop
    limit = S.search_fixed_point(lambda v, p: S.Outcome(v, "VALID", measured=v * 3), 10, lambda o: o.measured,
                                 accept, max_probes=3)
    assert limit.value == 90 and "probe limit" in limit.stop


def test_a_server_probe_failing_only_on_early_stopping_counts_as_valid():
    ok = {"result_perf_constraints_met": True, "result_min_duration_met": True, "result_min_queries_met": True,
          "early_stopping_met": False}
    assert S.probe_passes(ok)
    assert not S.probe_passes({**ok, "result_perf_constraints_met": False})     # p99 over the bound
    assert not S.probe_passes({**ok, "result_min_duration_met": False})
    assert not S.probe_passes({**ok, "early_stopping_met": True})               # INVALID for another reason


def test_a_server_probe_too_close_to_the_bound_is_not_valid_for_the_search():
    """On one H200 a probe VALID at p99 13.8 of 15 ms was INVALID in 2 of 3 confirming runs of 60 s: the search
    wants p99 <= --tune_latency_margin x bound (default 0.85) and treats the rest as above the ceiling."""
    assert S.within_margin("VALID", "", 10.4, 15.0, 0.85) == ("VALID", "")
    verdict, why = S.within_margin("VALID", "", 13.77, 15.0, 0.85)
    assert verdict == "MARGIN" and "13.77 ms > 0.85 x the 15 ms bound" in why
    assert S.within_margin("VALID", "", 13.77, 15.0, 1.0) == ("VALID", "")       # 1: LoadGen's verdict alone
    assert S.within_margin("INVALID", "x", 20.0, 15.0, 0.85) == ("INVALID", "x")
    assert S.within_margin("VALID", "", None, 15.0, 0.85) == ("VALID", "")       # no p99: nothing to judge
    # the search then brackets below it: MARGIN counts as not VALID, and its rate (kept up) caps nothing
    calls = []

    def probe(value, phase):
        calls.append(value)
        p99 = 10.4 if value <= 24222 else 13.77 if value <= 25191 else 150.0
        verdict, why = S.within_margin("VALID" if p99 <= 15 else "INVALID", "", p99, 15.0, 0.85)
        return S.Outcome(value, verdict, latency_ms=p99, measured=value, reason=why)

    found = S.search_ceiling(probe, 24222, growth=1.04, tolerance=0.03, max_probes=3)
    assert found.value == 24222 and found.upper is not None and found.upper <= 25191 * 1.001


def test_max_async_queries_leaves_room_for_a_valid_run():
    # 100 q/s, 15 ms bound, 1024 queries, batch 1, one worker: 6 + 2 + 10.24 -> 19
    assert S.max_async_queries(100, 0.015, 1024) == 20
    assert S.max_async_queries(23000, 0.015, 230000, batch_size=128, slots=1) == 1380 + 256 + 2300 + 1
    assert S.max_async_queries(1, 0.015, 100) > 2 * 1 * 1


def test_parse_grid():
    assert O.parse_grid(None) == [{}]
    grid = O.parse_grid("batch_size=1,2;server_batch_timeout_us=0,2000")
    assert grid == [{"batch_size": 1, "server_batch_timeout_us": 0}, {"batch_size": 1, "server_batch_timeout_us": 2000},
                    {"batch_size": 2, "server_batch_timeout_us": 0}, {"batch_size": 2, "server_batch_timeout_us": 2000}]
    assert O.parse_grid("--workers=1,2 threads=1") == [{"workers": 1, "threads": 1}, {"workers": 2, "threads": 1}]
    for bad in ("batch_size", "nonsense=1", "batch_size=a", "min_duration=1,2", "system_name=x", "batch_size="):
        with pytest.raises(HarnessError, match="--tune_grid"):
            O.parse_grid(bad)


def test_child_argv_drops_what_the_probe_owns():
    argv = ["--action=tune", "--scenarios", "Server", "--backend=null", "--log_dir", "/x", "--tune_probe_ms=500",
            "--server_target_qps=10", "--batch_size", "4", "--fast", "--tune_write", "--min_duration=9"]
    out = P.child_argv(argv, "Server", "/t/probes/01", {"server_target_qps": 20.5, "batch_size": 8,
                                                         "min_duration": 1000, "use_graphs": True})
    assert out[:4] == ["--action=run_harness", "--scenarios=Server", "--test_mode=PerformanceOnly",
                       "--log_dir=/t/probes/01"]
    assert out[4:] == ["--backend=null", "--fast", "--server_target_qps=20.5", "--batch_size=8", "--min_duration=1000",
                       "--use_graphs=true"]
    build = P.child_argv(argv, "Server", None, {"batch_size": 2}, action="generate_engines")
    assert build[0] == "--action=generate_engines" and not any(w.startswith("--log_dir") for w in build)
    # a confirming run sets no length of its own: the user's --min_duration / --min_query_count go through
    confirm = P.child_argv(["--min_duration=60000", "--min_query_count", "1"], "Offline", "/c", {"batch_size": 8})
    assert confirm[4:] == ["--min_duration=60000", "--min_query_count", "1", "--batch_size=8"]


# ---------------------------------------------------------------------------------------------------------------
# The overlay
def test_overlay_into_a_block_and_into_an_inherited_config_ver(tmp_path):
    from harness.config.files import resolve
    data = {"default": {"backend": "onnxruntime", "server_target_qps": 1},
            "Base": {"batch_size": 4, "config_ver": {"int8": {"precision": "int8", "batch_size": 8}}},
            "CPU": {"extends": "Base", "server_target_qps": 30}}
    values = O.overlay_values("Server", 151.37, {"batch_size": 2},
                              {"precision": "int8", "min_duration": 1000, "map_path": "m", "server_target_qps": 99})
    assert values == {"precision": "int8", "batch_size": 2, "server_target_qps": 151.4}
    plain = O.apply_overlay(data, "CPU", "default", {"server_target_qps": 120, "batch_size": 1})
    assert plain["CPU"] == {"extends": "Base", "server_target_qps": 120, "batch_size": 1}
    assert data["CPU"] == {"extends": "Base", "server_target_qps": 30}          # the input is not changed
    ver = O.apply_overlay(data, "CPU", "int8", values)
    assert ver["CPU"]["config_ver"]["int8"] == {"precision": "int8", "batch_size": 2, "server_target_qps": 151.4}
    assert O.snippet("CPU", "int8", values) == {"CPU": {"config_ver": {"int8": values}}}
    assert O.snippet("CPU", "default", {"a": 1}) == {"CPU": {"a": 1}}
    os.makedirs(tmp_path / "Server")
    path = str(tmp_path / "Server" / "config.json")
    O.write_config(path, ver)
    cfg = resolve("Server", "CPU", "int8", config_dir=str(tmp_path))
    assert (cfg["server_target_qps"], cfg["batch_size"], cfg["precision"]) == (151.4, 2, "int8")
    assert O.rounded("SingleStream", 2212345.6) == 2212346 and O.rounded("Offline", 176.04) == 176.0


def test_shipped_config_round_trips_through_write_config(tmp_path):
    from harness.config.files import config_path, load_config_file
    for scenario in ("Offline", "Server", "SingleStream", "MultiStream"):
        path = config_path(scenario)
        out = tmp_path / f"{scenario}.json"
        O.write_config(str(out), load_config_file(path))
        with open(path) as a:
            assert out.read_text() == a.read(), f"{path} would be reformatted by --tune_write"


def test_busy_machine_warning(monkeypatch, capsys):
    monkeypatch.setattr(os, "getloadavg", lambda: (9.5, 9.0, 8.0))
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    P.warn_if_busy()
    assert "load average 9.5 on 2 core(s)" in capsys.readouterr().out
    monkeypatch.setattr(os, "getloadavg", lambda: (0.3, 0.2, 0.1))
    P.warn_if_busy()
    assert capsys.readouterr().out == ""


def test_find_peak_result_reads_loadgen_messages(tmp_path):
    log = tmp_path / "mlperf_log_detail.txt"
    lines = [{"key": "effective_test_mode", "value": "FindPeakPerformance"},
             {"key": "generic_message", "value": "FindPeakPerformance: Found boundaries: [500.0, 1000.0)"},
             {"key": "generic_message", "value": "FindPeakPerformance: Found peak performance field: 812.500000"}]
    log.write_text("".join(":::MLLOG " + json.dumps(e) + "\n" for e in lines))
    found = find_peak_result(str(log))
    assert found["peak_target_qps"] == 812.5 and len(found["messages"]) == 2


# ---------------------------------------------------------------------------------------------------------------
# The progress line
def test_progress_line_text_and_switch(monkeypatch):
    text = format_line("Server", 12.34, 60, 1234, 98.76)
    assert text == "[progress] Server   12.3/60 s | 1,234 samples | 98.8 samples/s"
    assert "1,234/9,900 samples" in format_line("Offline", 1, 60, 1234, 1.0, total_samples=9900)
    assert "(154 queries)" in format_line("MultiStream", 1, 60, 1234, 1.0, samples_per_query=8)
    monkeypatch.setenv("MLPERF_HARNESS_PROGRESS", "1")
    assert enabled()
    monkeypatch.setenv("MLPERF_HARNESS_PROGRESS", "0")
    assert not enabled()
    monkeypatch.delenv("MLPERF_HARNESS_PROGRESS")
    assert not enabled(open(os.devnull, "w"))     # not a terminal: off


def test_progress_line_reads_the_counter():
    import io
    count = [0]
    stream = io.StringIO()
    line = ProgressLine("SingleStream", 10, lambda: count[0], stream=stream, interval_s=0.01)
    count[0] = 500
    import time
    time.sleep(0.05)
    line.stop()
    out = stream.getvalue().splitlines()
    assert out and out[-1].startswith("[progress] SingleStream") and "500 samples" in out[-1]


# ---------------------------------------------------------------------------------------------------------------
# Real runs (null backend, real LoadGen, real val-1300 rows)
def _null(prep_dir, *extra):
    return ("--system_name=CPU", "--model=efficientnet-lite0", "--backend=null", f"--map_path={VAL_MAP_1300}",
            f"--preprocessed_data_dir={prep_dir}", *extra)


@pytest.mark.slow
def test_null_backend_tune_end_to_end(prep_dir, tmp_path):
    log_dir = tmp_path / "logs"
    result = run_main("--action=tune", *_null(prep_dir, "--scenarios=Server", "--server_target_qps=300",
                                              "--batch_size=16", "--server_batch_timeout_us=500",
                                              f"--log_dir={log_dir}", "--tune_probe_ms=1000",
                                              "--tune_probe_queries=500", "--tune_max_probes=5",
                                              "--tune_tolerance=0.2", "--tune_confirm_ms=1500"), timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    (stamp,) = os.listdir(log_dir)
    folder = log_dir / stamp / "tune" / "Server"
    entries = [json.loads(line) for line in (folder / "tune_log.jsonl").read_text().splitlines()]
    assert entries[0]["event"] == "start" and entries[-1]["event"] == "result"
    probes = [e for e in entries if e["event"] == "probe"]
    assert probes[0]["value"] == 300 and probes[0]["phase"] == "bracket" and probes[-1]["phase"] == "confirm"
    assert all(p["bound_ms"] == 15.0 for p in probes)
    assert probes[-1]["validity"] == "VALID"
    for p in probes:     # each probe ran in its own folder with its own LoadGen log
        assert (folder / p["folder"] / "probe.log").exists()
        assert "--min_duration=" in p["command"] and "--tune_" not in p["command"]
    overlay = json.loads((folder / "overlay.json").read_text())
    value = overlay["values"]["server_target_qps"]
    assert value == probes[-1]["value"] and value >= 300 * 0.8 ** 3
    assert overlay["snippet"] == {"CPU": overlay["values"]} and overlay["values"]["batch_size"] == 16
    assert overlay["written"] is False
    assert "server_target_qps" in result.stdout and "--tune_write" in result.stdout
    assert json.loads((log_dir / stamp / "tune" / "tune_summary.json").read_text())["scenarios"]["Server"]


@pytest.mark.slow
def test_null_backend_singlestream_tune(prep_dir, tmp_path):
    result = run_main("--action=tune", *_null(prep_dir, "--scenarios=SingleStream", f"--log_dir={tmp_path}",
                                              "--tune_probe_ms=500", "--tune_max_probes=4",
                                              "--tune_confirm_ms=1000"), timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    (stamp,) = os.listdir(tmp_path)
    folder = tmp_path / stamp / "tune" / "SingleStream"
    entries = [json.loads(line) for line in (folder / "tune_log.jsonl").read_text().splitlines()]
    probes = [e for e in entries if e["event"] == "probe"]
    assert probes[0]["value"] == 5000000            # the CPU block's expected latency: 5 ms, far above the null SUT's
    assert probes[0]["validity"] == "INVALID" and "expected latency" in probes[0]["reason"]
    assert all(p["measured"] > 0 for p in probes)   # mean latency (ns) read from the probe's detail log
    value = json.loads((folder / "overlay.json").read_text())["values"]["single_stream_expected_latency_ns"]
    assert isinstance(value, int) and value < 5000000 and probes[-1]["phase"] == "confirm" and probes[-1]["valid"]


def test_tune_refuses_a_stray_audit_config(tmp_path):
    (tmp_path / "audit.config").write_text("*.*.mode = 2\n")
    result = run_main("--action=tune", "--system_name=CPU", "--backend=null", "--scenarios=Server",
                      f"--log_dir={tmp_path / 'logs'}", cwd=str(tmp_path))
    assert result.returncode == 2 and "audit.config" in result.stderr and "compliance run" in result.stderr
    assert not (tmp_path / "logs").exists()


def test_tune_refuses_other_test_modes_and_bad_settings(tmp_path):
    for flag, needle in (("--test_mode=AccuracyOnly", "FindPeakPerformance"), ("--tune_tolerance=0.9", "--tune_tolerance=0.9: expected a number > 0 and <= 0.5"),
                         ("--tune_grid=batch_size", "--tune_grid")):
        result = run_main("--action=tune", "--system_name=CPU", "--backend=null", flag,
                          f"--log_dir={tmp_path / 'logs'}")
        assert result.returncode == 2 and needle in result.stderr, (flag, result.stderr)


@pytest.mark.slow
def test_find_peak_performance_passes_through(prep_dir, tmp_path):
    result = run_main("--action=run_harness", *_null(prep_dir, "--scenarios=Server", "--server_target_qps=500",
                                                     "--batch_size=16", "--server_batch_timeout_us=500",
                                                     "--min_duration=300", "--min_query_count=100",
                                                     "--server_max_async_queries=300",
                                                     # a device of known capacity (16 / 2 ms = 8,000 samples/s):
                                                     # LoadGen's doubling stops there, not at the SUT's own ceiling
                                                     "--null_latency_us=2000",
                                                     "--test_mode=FindPeakPerformance", f"--log_dir={tmp_path}"),
                      timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    (stamp,) = os.listdir(tmp_path)
    folder = tmp_path / stamp / "CPU" / "resnet50" / "Server"
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["test_mode"] == "FindPeakPerformance"
    assert summary["find_peak"]["peak_target_qps"] >= 500
    assert any("Found boundaries" in m for m in summary["find_peak"]["messages"])
    assert '"effective_test_mode", "value": "FindPeakPerformance"' in (folder / "mlperf_log_detail.txt").read_text()


def test_find_peak_performance_is_server_only(prep_dir, tmp_path):
    result = run_main("--action=run_harness", *_null(prep_dir, "--scenarios=Offline", "--min_duration=100",
                                                     "--test_mode=FindPeakPerformance", f"--log_dir={tmp_path}"))
    assert result.returncode == 2 and "only the Server target" in result.stderr


def test_progress_line_during_a_real_run(prep_dir, tmp_path):
    env = dict(os.environ, MLPERF_HARNESS_PROGRESS="1")
    result = subprocess.run([sys.executable, MAIN, "--action=run_harness",
                             *_null(prep_dir, "--scenarios=SingleStream", "--min_duration=1000",
                                    "--single_stream_expected_latency_ns=50000", f"--log_dir={tmp_path}")],
                            capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = [line for line in result.stdout.splitlines() if line.startswith("[progress] SingleStream")]
    assert lines and "/1 s" in lines[-1] and "samples/s" in lines[-1]
