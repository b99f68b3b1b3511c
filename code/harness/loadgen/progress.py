"""One status line while LoadGen runs: elapsed / min_duration, samples completed, current rate.

On by default only when stdout is a terminal (then it redraws one line with `\\r`); MLPERF_HARNESS_PROGRESS=1 forces
it on (a plain line every 2 s when stdout is not a terminal: logs, tests), =0 forces it off. The counts come from
the SUT's `completed()` (total samples completed), read from a small daemon thread every half second.
"""
from __future__ import annotations

import sys
import threading
import time
from collections import deque
from typing import Any, Callable, Optional, TextIO
from harness.core import env
from harness.config.scenarios import get as get_scenario

ENV = env.HARNESS_PROGRESS.name


def enabled(stream: TextIO = None) -> bool:
    """MLPERF_HARNESS_PROGRESS (core/env.py): forced on or off, else on only when `stream` is a terminal."""
    forced = env.get(env.HARNESS_PROGRESS)
    if forced is not None:
        return forced
    stream = stream or sys.stdout
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def format_line(scenario: str, elapsed_s: float, min_duration_s: float, samples: int, rate: float,
                total_samples: Optional[int] = None, samples_per_query: int = 1) -> str:
    """The status line's text (pure: tests check it)."""
    done = f"{samples:,}" + (f"/{total_samples:,}" if total_samples else "") + " samples"
    if samples_per_query > 1:
        done += f" ({samples // samples_per_query:,} queries)"
    return f"[progress] {scenario} {elapsed_s:6.1f}/{min_duration_s:.0f} s | {done} | {rate:,.1f} samples/s"


class ProgressLine:
    """`for_run` starts it (or returns a no-op when off); `stop` ends the line."""

    def __init__(self, scenario: str, min_duration_s: float, completed: Callable[[], int],
                 total_samples: Optional[int] = None, samples_per_query: int = 1,
                 stream: Optional[TextIO] = None, interval_s: Optional[float] = None):
        self.scenario = scenario
        self.min_duration_s = min_duration_s
        self.completed = completed
        self.total_samples = total_samples
        self.samples_per_query = samples_per_query
        self.stream = stream or sys.stdout
        try:
            self.tty = bool(self.stream.isatty())
        except (AttributeError, ValueError):
            self.tty = False
        self.interval_s = interval_s or (0.5 if self.tty else 2.0)
        self.start = time.monotonic()
        self.window: deque = deque(maxlen=8)     # (time, samples): the rate over the last few seconds
        self._stop = threading.Event()
        self._width = 0
        self._thread = threading.Thread(target=self._loop, name="progress-line", daemon=True)
        self._thread.start()

    @classmethod
    def for_run(cls, scenario: str, settings: Any, sut: Any) -> "ProgressLine | _Off":
        if not enabled() or not hasattr(sut, "completed"):
            return _Off()
        min_s = float(getattr(settings, "min_duration_ms", 0) or 0) / 1000.0
        sc = get_scenario(scenario)
        total = None
        if sc.one_query:   # LoadGen issues one query of max(min_query_count, 1.1 x min_duration x qps)
            total = max(int(getattr(settings, "min_query_count", 0) or 0),
                        int(1.1 * min_s * float(getattr(settings, "offline_expected_qps", 0) or 0)))
        spq = int(getattr(settings, sc.samples_per_query_key, 1) or 1) if sc.samples_per_query_key else 1
        return cls(scenario, min_s, sut.completed, total or None, spq)

    def line(self) -> str:
        now = time.monotonic()
        samples = int(self.completed())
        self.window.append((now, samples))
        t0, n0 = self.window[0]
        rate = (samples - n0) / (now - t0) if now > t0 else 0.0
        return format_line(self.scenario, now - self.start, self.min_duration_s, samples, rate, self.total_samples,
                           self.samples_per_query)

    def _write(self, text: str, final: bool = False) -> None:
        if self.tty:
            pad = max(0, self._width - len(text))
            self._width = len(text)
            self.stream.write("\r" + text + " " * pad + ("\n" if final else ""))
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self._write(self.line())
            except Exception:   # never let a status line disturb a run
                return

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        try:
            self._write(self.line(), final=True)
        except Exception:
            pass


class _Off:
    def stop(self) -> None:
        pass
