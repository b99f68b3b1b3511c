"""harness/core/interrupt.py, the cheap parts (signals to this process: tests/unit/core/test_interrupt_units.py)."""
import signal
import threading

from harness.core import interrupt
from harness.core.errors import HarnessError


def test_signal_names_and_exit_codes():
    assert interrupt.signal_name(signal.SIGINT) == "SIGINT"
    assert interrupt.signal_name(signal.SIGTERM) == "SIGTERM"
    assert interrupt.signal_name(999) == "signal 999"
    assert interrupt.exit_code(signal.SIGINT) == 130 and interrupt.exit_code(signal.SIGTERM) == 143
    assert interrupt.exit_code(signal.SIGHUP) == 128 + signal.SIGHUP


def test_run_interrupted_is_a_harness_error_with_its_exit_code():
    e = interrupt.RunInterrupted(signal.SIGINT, "Interrupted.")
    assert isinstance(e, HarnessError) and e.signum == signal.SIGINT and e.exit_code == 130
    assert str(e) == "Interrupted."


def test_is_interrupted_by_marker_or_summary(tmp_path):
    assert not interrupt.is_interrupted(str(tmp_path))
    assert interrupt.is_interrupted(str(tmp_path), {"interrupted": True})
    assert not interrupt.is_interrupted(str(tmp_path), {"interrupted": False})
    interrupt.write_marker(str(tmp_path / "run"), signal.SIGINT)
    assert interrupt.is_interrupted(str(tmp_path / "run"))


def test_write_marker_keeps_info_but_always_says_interrupted(tmp_path):
    summary = interrupt.write_marker(str(tmp_path), signal.SIGINT, {"interrupted": False, "scenario": "Offline"})
    assert summary["interrupted"] is True and summary["result_validity"] == "INTERRUPTED"
    assert summary["scenario"] == "Offline" and summary["signal"] == "SIGINT"
    assert (tmp_path / "INTERRUPTED").read_text().startswith("This run was interrupted by SIGINT at ")


def test_an_unfired_guard_and_a_plain_call():
    with interrupt.SignalGuard() as guard:
        assert not guard.fired and guard.signum is None
        assert interrupt.run_interruptibly(lambda: None, guard, abort=lambda: None, give_up=lambda: None) == "done"


def test_the_guard_does_nothing_outside_the_main_thread():
    before = signal.getsignal(signal.SIGINT)
    seen = []

    def worker():
        with interrupt.SignalGuard() as guard:
            seen.append((guard._old, signal.getsignal(signal.SIGINT)))

    t = threading.Thread(target=worker)
    t.start()
    t.join()
    assert seen == [({}, before)]
