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

from conftest import MAIN, ROOT, VAL_1300, VAL_MAP_1300, run_main

pytestmark = pytest.mark.slow
SYSTEM = "CPU"
N_IMAGES = 16


@pytest.fixture(scope="module")
def small(tmp_path_factory, imagenet):
    """The first N_IMAGES images of val-1300, preprocessed for EfficientNet-Lite0 (the null backend reads none)."""
    from resnet50.imagenet import read_map
    from resnet50.preprocessing import preprocess
    from resnet50.models import get_model
    base = tmp_path_factory.mktemp("small")
    map_path = base / "map.txt"
    with open(VAL_MAP_1300) as f:
        map_path.write_text("".join(f.readlines()[:N_IMAGES]))
    preprocess(get_model("efficientnet-lite0"), read_map(str(map_path)), VAL_1300, str(base / "prep"),
               progress=False)
    return str(map_path), str(base / "prep")


def _args(small, log_dir, *extra):
    map_path, prep = small
    return ("--action=run_harness", f"--system_name={SYSTEM}", "--model=efficientnet-lite0", "--backend=null",
            f"--map_path={map_path}", f"--preprocessed_data_dir={prep}", f"--log_dir={log_dir}", *extra)


LONG = ("--min_duration=600000", "--server_target_qps=500", "--single_stream_expected_latency_ns=1000000")


def _start(small, log_dir, *extra):
    proc = subprocess.Popen([sys.executable, MAIN, *_args(small, log_dir, *LONG, *extra)], cwd=ROOT,
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
def test_signal_ends_the_run_and_marks_it(small, tmp_path, scenario, sig, code):
    proc, lines = _start(small, tmp_path / "logs", f"--scenarios={scenario}")
    rc, elapsed, out = _signal(proc, lines, sig)
    assert rc == code, out
    assert elapsed < 60, out       # the run had 600 s to go
    assert "Traceback" not in out, out
    assert "INTERRUPTED" in out
    _assert_marked(_scenario_dirs(tmp_path / "logs")[scenario], sig.name)


def test_offline_interrupted(small, tmp_path):
    # Offline: one query of 1.1 x 600 s x 20,000 samples, answered at once after the signal.
    proc, lines = _start(small, tmp_path / "logs", "--scenarios=Offline", "--offline_expected_qps=20000")
    rc, elapsed, out = _signal(proc, lines, signal.SIGINT)
    assert rc == 130, out
    assert elapsed < 60, out
    _assert_marked(_scenario_dirs(tmp_path / "logs")["Offline"], "SIGINT")


def test_second_ctrl_c_exits_at_once(small, tmp_path):
    proc, lines = _start(small, tmp_path / "logs", "--scenarios=Server")
    rc, elapsed, out = _signal(proc, lines, signal.SIGINT, signal.SIGINT)
    assert rc == 130, out
    assert "second SIGINT: exiting now" in out
    _assert_marked(_scenario_dirs(tmp_path / "logs")["Server"], "SIGINT")


def test_multi_scenario_parent_forwards_and_stops(small, tmp_path):
    # Each scenario runs in its own process; the parent gets the signal, passes it on and runs no further scenario.
    proc, lines = _start(small, tmp_path / "logs", "--scenarios=Server,SingleStream")
    rc, elapsed, out = _signal(proc, lines, signal.SIGTERM)
    assert rc == 143, out
    assert elapsed < 60, out
    dirs = _scenario_dirs(tmp_path / "logs")
    assert set(dirs) == {"Server"}, out
    _assert_marked(dirs["Server"], "SIGTERM")
    assert "the rest did not run" in out


def test_staging_refuses_an_interrupted_run(small, tmp_path):
    logs = tmp_path / "logs"
    proc, lines = _start(small, logs, "--scenarios=SingleStream")
    rc, _, out = _signal(proc, lines, signal.SIGINT)
    assert rc == 130, out
    result = run_main("--action=update_results", f"--system_name={SYSTEM}", f"--log_dir={logs}",
                      f"--results_dir={tmp_path / 'sub'}", "--submitter=TestOrg", "--scenarios=SingleStream",
                      "--dry_run")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert "is refused: interrupted: it was stopped by SIGINT" in result.stderr, result.stderr


def test_accuracy_below_target_exits_3_and_keeps_the_logs(small, tmp_path):
    # The null backend answers label 0 for every image: a model that is plainly wrong, at no inference cost.
    logs = tmp_path / "logs"
    result = run_main(*_args(small, logs, "--test_mode=AccuracyOnly", "--scenarios=Offline,SingleStream"))
    assert result.returncode == 3, result.stdout + result.stderr
    assert "Accuracy below the target (exit code 3)" in result.stderr
    assert "Traceback" not in result.stderr
    for scenario, folder in _scenario_dirs(logs).items():
        for name in ("mlperf_log_accuracy.json", "mlperf_log_detail.txt", "accuracy.txt", "summary.json"):
            assert os.path.exists(os.path.join(folder, name)), (scenario, name)
    single = run_main(*_args(small, tmp_path / "logs1", "--test_mode=AccuracyOnly", "--scenarios=Offline"))
    assert single.returncode == 3, single.stderr
