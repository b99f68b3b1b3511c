"""The one reader of LoadGen's logs. Runs (loadgen/run.py), tune, the report, the audits and the submission all read
LoadGen's files through this module:

- mlperf_log_detail.txt (`:::MLLOG {json}` lines): `parse_detail` (lines -> the last value of each key, and the
  entries LoadGen marked is_error); `read_detail` -> a `DetailLog` (the parsed-detail type: values, errors, and why
  the file could not be read, never raising); `read_detail_log` -> the values as a dict with `_errors`, a
  HarnessError when LoadGen wrote no file (a run that must have finished);
- mlperf_log_summary.txt (`label : value` lines): `parse_summary`, `read_summary`;
- mlperf_log_accuracy.json: `read_accuracy_entries` ({seq_id, qsl_idx, data} entries), `responses_by_index` and
  `response_label` (the one decoder of a response);
- the FindPeakPerformance result logged in the detail log: `find_peak_result`.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from harness.core.errors import HarnessError
from harness.config.scenarios import SCENARIOS, TestMode

DETAIL_LOG = "mlperf_log_detail.txt"
SUMMARY_LOG = "mlperf_log_summary.txt"
ACCURACY_LOG = "mlperf_log_accuracy.json"


# ---------------------------------------------------------------------------------------------------------------
# mlperf_log_detail.txt
def parse_detail(lines) -> tuple[dict[str, Any], list[str]]:
    """mlperf_log_detail.txt lines (`:::MLLOG {json}`) -> the last value of each key, and the logged errors."""
    values: dict[str, Any] = {}
    errors: list[str] = []
    for line in lines:
        if not line.startswith(":::MLLOG"):
            continue
        try:
            entry = json.loads(line[len(":::MLLOG"):])
        except json.JSONDecodeError:
            continue
        values[entry.get("key")] = entry.get("value")
        if (entry.get("metadata") or {}).get("is_error"):
            errors.append(str(entry.get("value")))
    return values, errors


@dataclass
class DetailLog:
    """A parsed mlperf_log_detail.txt: its values (the last of each key), the entries LoadGen marked is_error, and
    `problem`, why the file could not be used (None when it could)."""
    path: str
    values: dict[str, Any] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)       # entries LoadGen marked is_error
    problem: Optional[str] = None                          # why the file could not be read

    def get(self, key: str, default=None):
        return self.values.get(key, default)

    @property
    def ok(self) -> bool:
        return self.problem is None

    @property
    def scenario(self) -> Optional[str]:
        return self.values.get("effective_scenario")

    @property
    def valid(self) -> bool:
        return self.values.get("result_validity") == "VALID"

    def metric(self) -> Optional[float]:
        """The scenario's result: samples/s (Offline, Server) or the early-stopping latency in ns (streams), the key
        the submission checker reads (config/scenarios.py: checker_key)."""
        sc = SCENARIOS.get(self.scenario or "")
        value = None if sc is None else self.values.get(sc.checker_key)
        return None if value is None else float(value)


def read_detail(path: str) -> DetailLog:
    """The detail log as a DetailLog; a missing, unreadable, empty or unfinished log says so in `problem`."""
    log = DetailLog(path)
    try:
        with open(path, errors="replace") as f:
            log.values, log.errors = parse_detail(f)
    except FileNotFoundError:
        log.problem = "missing"
        return log
    except OSError as e:
        log.problem = f"unreadable ({e})"
        return log
    if not log.values:
        log.problem = "holds no LoadGen log entries"
    elif "result_validity" not in log.values and log.values.get("effective_test_mode") != TestMode.ACCURACY:
        log.problem = "has no result (the run did not finish)"
    return log


def read_detail_log(path: str) -> dict[str, Any]:
    """The detail log of a run that just ended: its values, with the logged errors under `_errors`; a HarnessError
    when LoadGen wrote no file."""
    try:
        with open(path, errors="replace") as f:
            values, errors = parse_detail(f)
    except FileNotFoundError:
        raise HarnessError(f"LoadGen wrote no {path}; the run did not finish.") from None
    values["_errors"] = errors
    return values


def find_peak_result(detail_path: str) -> dict[str, Any]:
    """What LoadGen's FindPeakPerformance mode logged: the boundaries and the peak target it found."""
    found: dict[str, Any] = {"messages": []}
    try:
        with open(detail_path, errors="replace") as f:
            for line in f:
                if "FindPeakPerformance" not in line and "FindBoundaries" not in line:
                    continue
                try:
                    entry = json.loads(line[len(":::MLLOG"):])
                except json.JSONDecodeError:
                    continue
                text = str(entry.get("value"))
                if entry.get("key") != "generic_message" and not str(entry.get("key")).startswith("error"):
                    continue                      # e.g. effective_test_mode's value
                found["messages"].append(text)
                if "Found peak performance field:" in text:
                    found["peak_target_qps"] = float(text.rsplit(":", 1)[1])
    except FileNotFoundError:
        pass
    return found


# ---------------------------------------------------------------------------------------------------------------
# mlperf_log_summary.txt
def parse_summary(text: str) -> dict[str, str]:
    """`label : value` lines of mlperf_log_summary.txt (the first of each label)."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        if ":" not in line:
            continue
        label, value = line.split(":", 1)
        label = label.strip().lstrip("* ").strip()   # "* Early stopping 90.0th percentile estimate: N"
        if label and label not in out:
            out[label] = value.strip()
    return out


def read_summary(path: str) -> dict[str, str]:
    """mlperf_log_summary.txt's `label : value` lines; OSError when it cannot be read."""
    with open(path, errors="replace") as f:
        return parse_summary(f.read())


# ---------------------------------------------------------------------------------------------------------------
# mlperf_log_accuracy.json
def read_accuracy_entries(path: str) -> list[dict]:
    """mlperf_log_accuracy.json as a list of {seq_id, qsl_idx, data}; raises ValueError when unreadable."""
    try:
        with open(path) as f:
            entries = json.load(f)
    except FileNotFoundError:
        raise ValueError("missing") from None
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"not a complete accuracy log ({e.__class__.__name__}: {e})") from None
    if not isinstance(entries, list):
        raise ValueError("not a JSON list")
    return entries


def responses_by_index(entries: list[dict]) -> tuple[dict[int, bytes], int, int]:
    """qsl_idx -> response bytes (first seen), number of repeated indices, number of repeats that disagree."""
    out: dict[int, bytes] = {}
    repeats = disagree = 0
    for entry in entries:
        idx, data = int(entry["qsl_idx"]), bytes.fromhex(entry.get("data") or "")
        if idx in out:
            repeats += 1
            disagree += out[idx] != data
        else:
            out[idx] = data
    return out, repeats, disagree


def response_label(data_hex: str) -> int:
    """The one decoder of a mlperf_log_accuracy.json response: the SUT answers each sample with its top-1 class as
    one int32 (loadgen/sut.py); -1 for an empty response."""
    value = np.frombuffer(bytes.fromhex(data_hex or ""), dtype=np.int32)
    return int(value[0]) if len(value) else -1
