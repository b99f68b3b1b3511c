"""harness/interrupt.py without LoadGen: a blocking call on a worker thread, real signals to this process."""
import os
import signal
import threading
import time

import pytest

from harness import interrupt


def _blocking(release: threading.Event):
    def start_test():   # stands in for StartTestWithLogSettings: returns once the SUT answers everything
        release.wait(30)
    return start_test


def test_first_signal_aborts_and_the_call_finishes_within_grace():
    release = threading.Event()
    threading.Timer(0.3, lambda: os.kill(os.getpid(), signal.SIGINT)).start()
    with interrupt.SignalGuard() as guard:
        ended = interrupt.run_interruptibly(_blocking(release), guard, release.set,
                                            give_up=lambda: pytest.fail("gave up"), grace_s=10)
    assert ended == "interrupted" and guard.signum == signal.SIGINT
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler     # restored


def test_time_limit_aborts_without_a_signal():
    release = threading.Event()
    with interrupt.SignalGuard() as guard:
        ended = interrupt.run_interruptibly(_blocking(release), guard, release.set,
                                            give_up=lambda: pytest.fail("gave up"), time_limit_s=0.3)
    assert ended == "time_limit" and not guard.fired


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
