"""Bounds on a run: max_duration, a warning when a target is far above the measured capacity, no empty run folders.

max_duration (ms; `--max_duration`, config key `max_duration`) goes into user.conf, where LoadGen 6.0.17 reads it
(its detail log shows requested_ / effective_max_duration_ms): LoadGen stops issuing queries past it. That alone
does not bound a run whose target is far above what the system can do: LoadGen then waits for every query already
issued, and a Server backlog at 100x capacity takes 100x min_duration to drain. So the harness also watches the
clock: at max_duration plus a margin (WATCHDOG_MARGIN) the SUT answers everything left at once (SUT.abort), LoadGen
finishes, and the run is recorded as INVALID (its summary.json says "ended_at_max_duration" and an
ENDED_AT_MAX_DURATION marker sits beside the logs; staging refuses it), since instant answers would flatter it.

A backend stuck inside infer never answers its batch, so LoadGen never finishes even after SUT.abort, and its
worker thread cannot be joined: STUCK_GRACE_S after the watchdog fired, the harness writes the marker and a
summary.json (INVALID, "ended_at_max_duration", "backend_stuck": true), says so, and ends the process (exit 2), as
the Ctrl-C path does (harness/core/interrupt.py). LoadGen's logs stay as far as they were written.

Default: max(4 x min_duration, min_duration + 10 min), so a 600 s run ends at the latest after 40 min, and short test
runs are never cut. 0 turns both bounds off.
"""
from __future__ import annotations

import json
import os
from typing import Any, Optional

from harness.core.paths import BENCHMARK
from harness.core.errors import HarnessError
from harness.core.storage import read_json
from harness.config.scenarios import LOADGEN_DEFAULT_MIN_DURATION_MS
from harness.config.scenarios import get as get_scenario
from harness.config.scenarios import TestMode

FAR_ABOVE = 2.0                               # warn when a target exceeds the measured capacity by this factor
MARKER = "ENDED_AT_MAX_DURATION"
STUCK_GRACE_S = 30.0     # after the watchdog's abort: LoadGen may still be finishing its logs of a long backlog


def default_max_duration_ms(min_duration_ms: Optional[int]) -> int:
    m = int(min_duration_ms or LOADGEN_DEFAULT_MIN_DURATION_MS)
    return max(4 * m, m + 600000)


def max_duration_ms(cfg: dict[str, Any]) -> int:
    """The run's max_duration: the config's / flag's, else the default (0: no limit)."""
    value = cfg.get("max_duration")
    if value is None:
        return default_max_duration_ms(cfg.get("min_duration"))
    value = int(value)
    min_ms = int(cfg.get("min_duration") or LOADGEN_DEFAULT_MIN_DURATION_MS)
    if value < 0 or 0 < value < min_ms:
        raise HarnessError(f"max_duration {value} ms (--max_duration or the config's `max_duration`) must be 0 (no "
                           f"limit) or at least min_duration ({min_ms} ms): a shorter run can never be VALID.")
    return value


def watchdog_s(max_ms: int) -> Optional[float]:
    """Seconds after StartTest at which the harness ends a run that LoadGen has not finished (None: never)."""
    if max_ms <= 0:
        return None
    return max_ms / 1000.0 * 1.1 + 10.0      # LoadGen loads samples before its clock starts; allow for that


def mark_ended_at_max_duration(out_dir: str, summary: dict[str, Any], max_ms: int) -> None:
    summary["loadgen_result_validity"] = summary.get("result_validity")
    summary["result_validity"] = "INVALID"
    summary["ended_at_max_duration"] = max_ms
    with open(os.path.join(out_dir, MARKER), "w") as f:
        f.write(f"LoadGen had not finished {max_ms} ms (max_duration) after it started: the harness answered the "
                "remaining queries at once to end the run. The result is INVALID whatever the logs say; staging "
                "refuses it.\n")


def mark_stuck(out_dir: str, info: dict[str, Any], max_ms: int) -> str:
    """The marker and summary.json of a run whose backend never returned after the watchdog's abort; the message."""
    summary = dict(info, result_validity="INVALID", ended_at_max_duration=max_ms, backend_stuck=True,
                   loadgen_finished=False)
    text = (f"LoadGen had not finished {max_ms} ms (max_duration) after it started, and {STUCK_GRACE_S:g} s after the "
            "harness answered the remaining queries at once it still had not: the backend is stuck inside a batch "
            "(infer never returned). The process was ended; LoadGen's logs here are partial. The result is INVALID; "
            "staging refuses it.\n")
    with open(os.path.join(out_dir, MARKER), "w") as f:
        f.write(text)
    with open(os.path.join(out_dir, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    return text.strip()


# ---------------------------------------------------------------------------------------------------------------
# Target versus measured capacity
def _valid_summaries(log_base: str, system: str, scenario: str, exclude: Optional[str] = None):
    """summary.json of the VALID PerformanceOnly runs of one system and scenario, newest first."""
    if not os.path.isdir(log_base):
        return
    for stamp in sorted(os.listdir(log_base), reverse=True):
        root = os.path.join(log_base, stamp)
        if exclude and os.path.abspath(root) == os.path.abspath(exclude):
            continue
        folder = os.path.join(root, system, BENCHMARK, scenario)
        s = read_json(os.path.join(folder, "summary.json"), missing=None, invalid=None, expect=dict)
        if s is None:
            continue
        if (s.get("result_validity") == "VALID" and TestMode.of(s.get("test_mode", TestMode.PERFORMANCE)) is TestMode.PERFORMANCE
                and not s.get("interrupted") and not s.get("audit")):
            yield folder, s


SETUP_KEYS = ("backend", "model", "precision", "config_ver", "batch_size", "null_latency_us")


def _same_setup(cfg: dict[str, Any], s: dict[str, Any], keys=SETUP_KEYS) -> bool:
    settings = s.get("settings") or {}
    return all(settings.get(k) == cfg.get(k) for k in keys)


def measured_capacity(cfg: dict[str, Any], scenario: str, log_base: str,
                      exclude: Optional[str] = None) -> Optional[tuple[float, str]]:
    """(samples/s, where from): the newest VALID run of this scenario with the same setup, else (for Server) the
    newest VALID Offline run's throughput, an upper bound of what Server can hold."""
    sc = get_scenario(scenario)
    system = cfg["system_id"]
    sources = [(sc.name, sc.summary_metric, SETUP_KEYS)]
    if sc.capacity_fallback:   # Offline batches differ from Server's: any batch size bounds what Server can hold
        sources.append((sc.capacity_fallback, get_scenario(sc.capacity_fallback).summary_metric,
                        tuple(k for k in SETUP_KEYS if k != "batch_size")))
    for source, key, keys in sources:
        for folder, s in _valid_summaries(log_base, system, source, exclude):
            if _same_setup(cfg, s, keys) and s.get(key):
                return float(s[key]), folder
    return None


def target_warning(cfg: dict[str, Any], scenario: str, log_base: str, exclude: Optional[str] = None) -> Optional[str]:
    sc = get_scenario(scenario)
    key = None if sc.latency_bound else sc.target_key      # a rate: Offline's expected qps, Server's target
    if key is None or not cfg.get(key):
        return None
    target = float(cfg[key])
    found = measured_capacity(cfg, scenario, log_base, exclude)
    if found is None:
        return None
    capacity, folder = found
    if target <= FAR_ABOVE * capacity:
        return None
    max_ms = max_duration_ms(cfg)
    bound = (f"it will end INVALID at max_duration ({max_ms / 1000:.0f} s)" if max_ms > 0 else
             "and --max_duration=0 leaves it unbounded")
    what = ("LoadGen will issue one query sized for that rate, which takes far longer than min_duration; " + bound
            if sc.one_query else "LoadGen will queue far more queries than the system answers; " + bound)
    return (f"WARNING: {scenario} {key} {target:g} is {target / capacity:.0f}x the {capacity:g}/s this system "
            f"measured in its newest VALID run with the same backend, model, precision and batch size "
            f"({folder}): {what}. Lower --{key} (or the config's), or pass it on purpose.")


# ---------------------------------------------------------------------------------------------------------------
# Run folders
def remove_if_empty(run_root: str) -> None:
    """A run refused before it wrote anything leaves no empty build/logs/<timestamp>/ behind."""
    if not os.path.isdir(run_root):
        return
    for folder, _, files in os.walk(run_root):
        if files:
            return
    for folder, dirs, _ in sorted(os.walk(run_root), key=lambda t: -len(t[0])):
        try:
            os.rmdir(folder)
        except OSError:
            return
