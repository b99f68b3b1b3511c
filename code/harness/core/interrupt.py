"""Ctrl-C and SIGTERM during a run: end it within seconds, mark it, exit 130 / 143.

LoadGen has no abort, and StartTestWithLogSettings blocks the thread that calls it inside C++, where Python's signal
handlers never run (they run only on the main thread, between bytecodes). So the test runs on a worker thread while
the main thread waits in short joins, where handlers do run. On the first SIGINT or SIGTERM:

1. the SUT is told to `abort()`: it answers everything queued and every newly issued query at once, without
   inference, so a test that has issued all its queries (Offline) finishes by itself within moments;
2. if LoadGen has not finished after GRACE_S seconds (Server, SingleStream and MultiStream keep issuing queries until
   min_duration), the process ends there with os._exit: LoadGen's logs stay as far as they were written;
3. either way the scenario's log folder gets an `INTERRUPTED` marker and a summary.json with "interrupted": true and
   result_validity "INTERRUPTED", and the process exits 130 (SIGINT) or 143 (SIGTERM). Staging refuses such runs.

A second signal ends the process at once (os._exit with the first signal's code).

A parent that runs scenarios in child processes (run_harness with several scenarios) starts each child in its own
process group, so a terminal's Ctrl-C reaches only the parent, which forwards each signal it gets to the child and
then stops, exiting 130 / 143 too.
"""
from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from typing import Any, Callable, Optional

from harness.core.errors import HarnessError

MARKER = "INTERRUPTED"
GRACE_S = 3.0           # how long LoadGen may take to finish by itself once the SUT answers everything at once
POLL_S = 0.1
SIGNALS = (signal.SIGINT, signal.SIGTERM)
EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}
STUCK_EXIT_CODE = 2     # a run the max_duration watchdog had to end by ending the process (an error, exit_codes.py)


def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def exit_code(signum: int) -> int:
    return EXIT_CODES.get(signum, 128 + int(signum))


class RunInterrupted(HarnessError):
    """A run ended by SIGINT / SIGTERM; code/main.py exits with `exit_code` (130 / 143)."""

    def __init__(self, signum: int, message: str):
        super().__init__(message)
        self.signum = signum
        self.exit_code = exit_code(signum)


class SignalGuard:
    """Within `with SignalGuard(...)`, SIGINT and SIGTERM set `signum` (first one) instead of raising.

    `on_signal(signum)` runs for every signal received (a parent forwards it to its child); on the second signal,
    `on_second()` runs and then the process ends at once with the first signal's exit code. Outside the main
    thread (where handlers cannot be installed) the guard does nothing."""

    def __init__(self, on_signal: Optional[Callable[[int], None]] = None,
                 on_second: Optional[Callable[[], None]] = None, what: str = "ending the run"):
        self.what = what
        self.on_signal = on_signal
        self.on_second = on_second
        self.signum: Optional[int] = None
        self._old: dict[int, Any] = {}

    @property
    def fired(self) -> bool:
        return self.signum is not None

    def _handle(self, signum, frame) -> None:
        if self.on_signal is not None:
            try:
                self.on_signal(signum)
            except Exception:
                pass
        if self.signum is not None:
            _say(f"\n[interrupt] second {signal_name(signum)}: exiting now.")
            if self.on_second is not None:
                try:
                    self.on_second()
                except Exception:
                    pass
            _exit_now(exit_code(self.signum))
        self.signum = signum
        _say(f"\n[interrupt] {signal_name(signum)}: {self.what} (press Ctrl-C again to exit at once).")

    def __enter__(self) -> "SignalGuard":
        if threading.current_thread() is threading.main_thread():
            for s in SIGNALS:
                self._old[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for s, old in self._old.items():
            signal.signal(s, old)
        self._old.clear()


def _say(text: str) -> None:
    try:   # a handler may interrupt the main thread's own write to stderr (a reentrant call): never fail for a message
        print(text, file=sys.stderr, flush=True)
    except RuntimeError:
        pass


def _exit_now(code: int) -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass
    os._exit(code)


def install_process_handlers() -> None:
    """code/main.py: SIGTERM outside a LoadGen run ends the process like Ctrl-C does (KeyboardInterrupt is SIGINT's),
    so cleanup code runs and the exit code is 143."""
    def on_term(signum, frame):
        raise RunInterrupted(signum, "Terminated (SIGTERM) before or between runs.")
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, on_term)


# ---------------------------------------------------------------------------------------------------------------
# Markers
def write_marker(out_dir: str, signum: int, info: Optional[dict[str, Any]] = None) -> dict[str, Any]:
    """The INTERRUPTED marker and a summary.json saying so, in a scenario's log folder."""
    os.makedirs(out_dir, exist_ok=True)
    summary = {"interrupted": True, "signal": signal_name(signum), "result_validity": "INTERRUPTED",
               "interrupted_at": time.strftime("%Y-%m-%dT%H:%M:%S")}
    summary.update(info or {})
    summary["interrupted"] = True
    summary["result_validity"] = "INTERRUPTED"
    with open(os.path.join(out_dir, MARKER), "w") as f:
        f.write(f"This run was interrupted by {signal_name(signum)} at {summary['interrupted_at']}; its logs are "
                "partial or cut short. It is not a result: staging (make update_results) refuses it.\n")
    with open(os.path.join(out_dir, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    return summary


def is_interrupted(run_dir: str, summary: Optional[dict] = None) -> bool:
    return os.path.exists(os.path.join(run_dir, MARKER)) or bool((summary or {}).get("interrupted"))


# ---------------------------------------------------------------------------------------------------------------
# Running LoadGen interruptibly
def run_interruptibly(start_test: Callable[[], None], guard: SignalGuard, abort: Callable[[], None],
                      give_up: Callable[[], None], grace_s: float = GRACE_S,
                      time_limit_s: Optional[float] = None, on_stuck: Optional[Callable[[], None]] = None,
                      stuck_grace_s: float = GRACE_S) -> str:
    """start_test() on a worker thread. Returns "done", "interrupted" (a signal came; start_test finished within
    grace_s of abort()) or "time_limit" (start_test ran past time_limit_s: abort() ran and it then finished).

    After the first signal, abort() runs once; if start_test has not returned grace_s later, give_up() runs (it
    writes the marker) and the process ends with the signal's exit code. Past time_limit_s likewise: if start_test
    has not returned stuck_grace_s after abort() (a backend stuck inside infer, whose thread cannot be joined),
    on_stuck() runs (it writes the marker and summary) and the process ends with exit code 2 (STUCK_EXIT_CODE)."""
    failure: list[BaseException] = []

    def target():
        try:
            start_test()
        except BaseException as e:   # re-raised on the main thread
            failure.append(e)

    thread = threading.Thread(target=target, name="loadgen-test", daemon=True)
    started = time.monotonic()
    thread.start()
    deadline = None
    timed_out = False
    stuck_at = 0.0
    while thread.is_alive():
        thread.join(POLL_S)
        if guard.fired and deadline is None:
            abort()
            deadline = time.monotonic() + grace_s
        if time_limit_s is not None and not timed_out and time.monotonic() - started > time_limit_s:
            timed_out = True
            abort()
            stuck_at = time.monotonic() + stuck_grace_s
        if deadline is not None and thread.is_alive() and time.monotonic() >= deadline:
            give_up()
            _exit_now(exit_code(guard.signum))
        if (timed_out and on_stuck is not None and deadline is None and thread.is_alive()
                and time.monotonic() >= stuck_at):
            on_stuck()
            _exit_now(STUCK_EXIT_CODE)
    if failure:
        raise failure[0]
    return "interrupted" if guard.fired else "time_limit" if timed_out else "done"


def run_child(command: list[str], env: Optional[dict[str, str]] = None) -> int:
    """A scenario's child process (run_harness with several scenarios), in its own process group: a terminal's
    Ctrl-C reaches only this parent, which forwards every SIGINT / SIGTERM it gets to the child, waits for it to mark
    its run and exit, and then raises RunInterrupted (no further scenario runs)."""
    import subprocess
    proc = subprocess.Popen(command, env=env, process_group=0)

    def forward(signum: int) -> None:
        if proc.poll() is None:
            proc.send_signal(signum)

    with SignalGuard(on_signal=forward, what="passing it on to the scenario's process") as guard:
        while True:
            try:
                rc = proc.wait(POLL_S)
                break
            except subprocess.TimeoutExpired:
                continue
    if guard.fired:
        raise RunInterrupted(guard.signum, f"Interrupted by {signal_name(guard.signum)}: the scenario running then "
                                           f"(exit {rc}) is marked INTERRUPTED in its log folder; the rest did not "
                                           "run.")
    return rc
