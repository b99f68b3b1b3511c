"""Runs that end early or badly: Ctrl-C / SIGTERM, accuracy below the target, runaway targets, refused runs.

Real processes, real signals and the real LoadGen, with the null backend on 16 real ImageNet images (EfficientNet-Lite0
preprocessing), so no inference cost. The elapsed-time bounds below are not performance assertions: a run with a
600 s min_duration that ends within a minute of the signal shows the signal ended it.
"""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import MAIN, ROOT, run_main

pytestmark = pytest.mark.slow
SYSTEM = "CPU"


def _args(val16, log_dir, *extra):
    map_path, prep = val16
    return ("--action=run_harness", f"--system_name={SYSTEM}", "--model=efficientnet-lite0", "--backend=null",
            f"--map_path={map_path}", f"--preprocessed_data_dir={prep}", f"--log_dir={log_dir}", *extra)


LONG = ("--min_duration=600000", "--server_target_qps=500", "--single_stream_expected_latency_ns=1000000")


def _start(val16, log_dir, *extra):
    proc = subprocess.Popen([sys.executable, MAIN, *_args(val16, log_dir, *LONG, *extra)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=dict(os.environ, PYTHONUNBUFFERED="1"))
    lines = []
    deadline = time.monotonic() + 120
    for line in proc.stdout:     # wait until LoadGen runs: the harness prints where the logs go just before
        lines.append(line)
        if "logs in " in line or time.monotonic() > deadline:
            break
    time.sleep(2)
    assert proc.poll() is None, "".join(lines)
    return proc, lines


def _signal(proc, lines, *signals, gap=0.3):
    t0 = time.monotonic()
    for i, s in enumerate(signals):
        if i:
            time.sleep(gap)
        proc.send_signal(s)
    out, _ = proc.communicate(timeout=120)
    return proc.returncode, time.monotonic() - t0, "".join(lines) + out


def _scenario_dirs(log_dir):
    (stamp,) = os.listdir(log_dir)
    base = os.path.join(log_dir, stamp, SYSTEM, "resnet50")
    return {s: os.path.join(base, s) for s in os.listdir(base)}


def _assert_marked(folder, signame):
    assert os.path.exists(os.path.join(folder, "INTERRUPTED"))
    with open(os.path.join(folder, "summary.json")) as f:
        summary = json.load(f)
    assert summary["interrupted"] is True and summary["result_validity"] == "INTERRUPTED"
    assert summary["signal"] == signame
    return summary


@pytest.mark.parametrize("scenario,sig,code", [("Server", signal.SIGINT, 130), ("SingleStream", signal.SIGTERM, 143)])
def test_signal_ends_the_run_and_marks_it(val16, tmp_path, scenario, sig, code):
    proc, lines = _start(val16, tmp_path / "logs", f"--scenarios={scenario}")
    rc, elapsed, out = _signal(proc, lines, sig)
    assert rc == code, out
    assert elapsed < 60, out       # the run had 600 s to go
    assert "Traceback" not in out, out
    assert "INTERRUPTED" in out
    _assert_marked(_scenario_dirs(tmp_path / "logs")[scenario], sig.name)


def test_offline_interrupted(val16, tmp_path):
    # Offline: one query of 1.1 x 600 s x 20,000 samples, answered at once after the signal.
    proc, lines = _start(val16, tmp_path / "logs", "--scenarios=Offline", "--offline_expected_qps=20000")
    rc, elapsed, out = _signal(proc, lines, signal.SIGINT)
    assert rc == 130, out
    assert elapsed < 60, out
    _assert_marked(_scenario_dirs(tmp_path / "logs")["Offline"], "SIGINT")


def test_second_ctrl_c_exits_at_once(val16, tmp_path):
    proc, lines = _start(val16, tmp_path / "logs", "--scenarios=Server")
    rc, elapsed, out = _signal(proc, lines, signal.SIGINT, signal.SIGINT)
    assert rc == 130, out
    assert "second SIGINT: exiting now" in out
    _assert_marked(_scenario_dirs(tmp_path / "logs")["Server"], "SIGINT")


def test_multi_scenario_parent_forwards_and_stops(val16, tmp_path):
    # Each scenario runs in its own process; the parent gets the signal, passes it on and runs no further scenario.
    proc, lines = _start(val16, tmp_path / "logs", "--scenarios=Server,SingleStream")
    rc, elapsed, out = _signal(proc, lines, signal.SIGTERM)
    assert rc == 143, out
    assert elapsed < 60, out
    dirs = _scenario_dirs(tmp_path / "logs")
    assert set(dirs) == {"Server"}, out
    _assert_marked(dirs["Server"], "SIGTERM")
    assert "the rest did not run" in out


def test_staging_refuses_an_interrupted_run(val16, tmp_path):
    logs = tmp_path / "logs"
    proc, lines = _start(val16, logs, "--scenarios=SingleStream")
    rc, _, out = _signal(proc, lines, signal.SIGINT)
    assert rc == 130, out
    result = run_main("--action=update_results", f"--system_name={SYSTEM}", f"--log_dir={logs}",
                      f"--results_dir={tmp_path / 'sub'}", "--submitter=TestOrg", "--scenarios=SingleStream",
                      "--dry_run")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert "is refused: interrupted: it was stopped by SIGINT" in result.stderr, result.stderr


def test_accuracy_below_target_exits_3_and_keeps_the_logs(val16, tmp_path):
    # The null backend answers label 0 for every image: a model that is plainly wrong, at no inference cost.
    logs = tmp_path / "logs"
    result = run_main(*_args(val16, logs, "--test_mode=AccuracyOnly", "--scenarios=Offline,SingleStream"))
    assert result.returncode == 3, result.stdout + result.stderr
    assert "Accuracy below the target (exit code 3)" in result.stderr
    assert "Traceback" not in result.stderr
    for scenario, folder in _scenario_dirs(logs).items():
        for name in ("mlperf_log_accuracy.json", "mlperf_log_detail.txt", "accuracy.txt", "summary.json"):
            assert os.path.exists(os.path.join(folder, name)), (scenario, name)
    single = run_main(*_args(val16, tmp_path / "logs1", "--test_mode=AccuracyOnly", "--scenarios=Offline"))
    assert single.returncode == 3, single.stderr


def test_runaway_server_target_warns_and_ends_invalid_at_max_duration(val16, tmp_path):
    # The null backend sleeping 10 ms per batch of 1: a device of 100 samples/s.
    logs = tmp_path / "logs"
    device = ("--null_latency_us=10000", "--batch_size=1", "--workers=1", "--min_duration=1000")
    offline = run_main(*_args(val16, logs, *device, "--scenarios=Offline", "--min_query_count=1",
                              "--offline_expected_qps=200"))
    assert offline.returncode == 0, offline.stderr
    # 20x that capacity; LoadGen issues for 1 s (max_duration), the backlog would take 20 s to drain.
    server = run_main(*_args(val16, logs, *device, "--scenarios=Server", "--min_query_count=100",
                             "--server_target_qps=2000", "--max_duration=1000"))
    assert server.returncode == 0, server.stderr
    assert "WARNING: Server server_target_qps 2000 is" in server.stderr, server.stderr
    assert "it will end INVALID at max_duration" in server.stderr
    assert "the remaining queries were answered at once and the run is INVALID" in server.stderr
    (folder,) = [d["Server"] for d in [_scenario_dirs_all(logs)] if "Server" in d]
    assert os.path.exists(os.path.join(folder, "ENDED_AT_MAX_DURATION"))
    with open(os.path.join(folder, "summary.json")) as f:
        summary = json.load(f)
    assert summary["result_validity"] == "INVALID" and summary["ended_at_max_duration"] == 1000
    with open(os.path.join(folder, "user.conf")) as f:
        assert "resnet50.Server.max_duration = 1000" in f.read()


def _scenario_dirs_all(log_dir):
    out = {}
    for stamp in sorted(os.listdir(log_dir)):
        base = os.path.join(log_dir, stamp, SYSTEM, "resnet50")
        for s in os.listdir(base):
            out[s] = os.path.join(base, s)
    return out


def test_default_max_duration_is_bounded():
    from harness.loadgen.limits import default_max_duration_ms, max_duration_ms
    assert default_max_duration_ms(600000) == 2400000
    assert default_max_duration_ms(None) == 2400000
    assert default_max_duration_ms(1000) == 601000       # short runs are never cut
    assert max_duration_ms({"min_duration": 1000, "max_duration": 0}) == 0


def test_refused_runs_leave_no_empty_run_folder(val16, tmp_path):
    logs = tmp_path / "logs"
    result = run_main(*_args(val16, logs, "--scenarios=Server", "--min_duration=2000", "--max_duration=1000"))
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert "max_duration 1000 ms" in result.stderr and "at least min_duration (2000 ms)" in result.stderr
    assert not os.path.exists(logs) or os.listdir(logs) == []
    result = run_main(*_args(val16, logs, "--scenarios=Offline", "--map_path=/nonexistent/map.txt"))
    assert result.returncode == 2, result.stderr
    assert not os.path.exists(logs) or os.listdir(logs) == []
