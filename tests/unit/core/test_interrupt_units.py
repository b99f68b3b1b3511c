"""harness/core/interrupt.py without LoadGen: a blocking call on a worker thread, real signals to this process."""
import os
import signal
import threading
import time

import pytest

from harness.core import interrupt


def _blocking(release: threading.Event):
    def start_test():   # stands in for StartTestWithLogSettings: returns once the SUT answers everything
        release.wait(30)
    return start_test


def test_first_signal_aborts_and_the_call_finishes_within_grace():
    release = threading.Event()
    before = signal.getsignal(signal.SIGINT)   # default_int_handler, or SIG_IGN in a shell's background job
    with interrupt.SignalGuard() as guard:
        threading.Timer(0.3, lambda: os.kill(os.getpid(), signal.SIGINT)).start()   # only once the guard is in
        ended = interrupt.run_interruptibly(_blocking(release), guard, release.set,
                                            give_up=lambda: pytest.fail("gave up"), grace_s=10)
    assert ended == "interrupted" and guard.signum == signal.SIGINT
    assert signal.getsignal(signal.SIGINT) is before     # restored


def test_time_limit_aborts_without_a_signal():
    release = threading.Event()
    with interrupt.SignalGuard() as guard:
        ended = interrupt.run_interruptibly(_blocking(release), guard, release.set,
                                            give_up=lambda: pytest.fail("gave up"), time_limit_s=0.3)
    assert ended == "time_limit" and not guard.fired


def test_time_limit_with_a_call_that_never_returns_marks_and_exits(monkeypatch):
    """issue 19: abort() does not end a call stuck forever; on_stuck runs, then the process would end (exit 2):
    _exit_now is replaced by a raise here so that pytest survives."""
    def exit_now(code):
        raise SystemExit(code)
    monkeypatch.setattr(interrupt, "_exit_now", exit_now)
    marked = []
    with interrupt.SignalGuard() as guard:
        with pytest.raises(SystemExit) as ended:
            interrupt.run_interruptibly(_blocking(threading.Event()), guard, lambda: None,
                                        give_up=lambda: pytest.fail("gave up"), time_limit_s=0.2,
                                        on_stuck=lambda: marked.append("stuck"), stuck_grace_s=0.2)
    assert ended.value.code == interrupt.STUCK_EXIT_CODE == 2 and marked == ["stuck"]


def test_errors_of_the_call_reach_the_caller():
    def start_test():
        raise ValueError("boom")
    with interrupt.SignalGuard() as guard:
        with pytest.raises(ValueError, match="boom"):
            interrupt.run_interruptibly(start_test, guard, lambda: None, give_up=lambda: None)


def test_marker_and_summary(tmp_path):
    summary = interrupt.write_marker(str(tmp_path), signal.SIGTERM, {"scenario": "Server", "result_validity": "VALID"})
    assert summary["result_validity"] == "INTERRUPTED" and summary["signal"] == "SIGTERM"
    assert interrupt.is_interrupted(str(tmp_path))
    assert "not a result" in (tmp_path / "INTERRUPTED").read_text()
    assert interrupt.exit_code(signal.SIGINT) == 130 and interrupt.exit_code(signal.SIGTERM) == 143
    err = interrupt.RunInterrupted(signal.SIGTERM, "x")
    assert err.exit_code == 143


def _summary(folder, scenario, validity, batch, **result):
    os.makedirs(folder, exist_ok=True)
    import json
    with open(os.path.join(folder, "summary.json"), "w") as f:
        json.dump({"result_validity": validity, "test_mode": "PerformanceOnly", **result,
                   "settings": {"backend": "null", "model": "m", "precision": "fp32", "config_ver": "default",
                                "batch_size": batch}}, f)


def test_target_warning_uses_the_newest_valid_run_of_the_same_setup(tmp_path):
    from harness.loadgen.limits import measured_capacity, target_warning
    base = tmp_path / "logs"
    cfg = {"system_id": "CPU", "backend": "null", "model": "m", "precision": "fp32", "config_ver": "default",
           "batch_size": 8, "server_target_qps": 100000.0, "min_duration": 600000}
    server = lambda stamp: str(base / stamp / "CPU" / "resnet50" / "Server")   # noqa: E731
    assert measured_capacity(cfg, "Server", str(base)) is None
    # Only an Offline run (another batch size): an upper bound of what Server holds.
    _summary(str(base / "1" / "CPU" / "resnet50" / "Offline"), "Offline", "VALID", 256, samples_per_second=40000)
    assert measured_capacity(cfg, "Server", str(base))[0] == 40000
    _summary(server("2"), "Server", "VALID", 8, scheduled_queries_per_second=2000)
    _summary(server("3"), "Server", "INVALID", 8, scheduled_queries_per_second=9000)    # not VALID: ignored
    _summary(server("4"), "Server", "VALID", 64, scheduled_queries_per_second=30000)    # other batch size
    assert measured_capacity(cfg, "Server", str(base))[0] == 2000
    text = target_warning(cfg, "Server", str(base))
    assert "server_target_qps 100000 is 50x the 2000/s" in text and "max_duration (2400 s)" in text
    assert target_warning(dict(cfg, server_target_qps=3000.0), "Server", str(base)) is None    # within 2x
