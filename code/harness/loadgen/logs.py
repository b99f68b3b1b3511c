"""The one reader of LoadGen's logs: mlperf_log_detail.txt (`:::MLLOG` lines), the accuracy log's responses, and
the FindPeakPerformance result."""
from __future__ import annotations

import json
from typing import Any

import numpy as np

from harness.core.errors import HarnessError


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


def response_label(data_hex: str) -> int:
    """The one decoder of a mlperf_log_accuracy.json response: the SUT answers each sample with its top-1 class as
    one int32 (harness/sut.py); -1 for an empty response."""
    value = np.frombuffer(bytes.fromhex(data_hex or ""), dtype=np.int32)
    return int(value[0]) if len(value) else -1


def read_detail_log(path: str) -> dict[str, Any]:
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
