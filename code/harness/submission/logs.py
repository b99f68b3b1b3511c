"""Reading what LoadGen and the harness wrote: detail logs, accuracy logs, accuracy.txt, file hashes."""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from typing import Any, Optional

from harness.core.storage import file_digest
from harness.loadgen.logs import parse_detail
from harness.submission import rules
from harness.config.scenarios import TestMode


@dataclass
class DetailLog:
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
        """The scenario's result: samples/s (Offline, Server) or the early-stopping latency in ns (streams)."""
        value = self.values.get(rules.RESULT_KEY.get(self.scenario or "", ""))
        return None if value is None else float(value)


def read_detail(path: str) -> DetailLog:
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


ACCURACY_RE = re.compile(r"^accuracy=([\d.]+)%")
HASH_RE = re.compile(r"^hash=([0-9a-fA-F]+)$")


def read_accuracy_txt(path: str) -> tuple[Optional[float], Optional[str]]:
    """(top-1 %, recorded sha256) from an accuracy.txt; either may be None."""
    acc = digest = None
    try:
        with open(path) as f:
            for line in f:
                line = line.strip()
                m = ACCURACY_RE.match(line)
                if m and acc is None:
                    acc = float(m.group(1))
                m = HASH_RE.match(line)
                if m:
                    digest = m.group(1).lower()
    except FileNotFoundError:
        pass
    return acc, digest


def sha256_file(path: str) -> str:
    return file_digest(path, "sha256")


def load_json(path: str) -> Optional[dict]:
    try:
        with open(path) as f:
            data = json.load(f)
        return data if isinstance(data, dict) else None
    except (OSError, json.JSONDecodeError):
        return None


def write_json(path: str, data: Any) -> None:
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w") as f:
        json.dump(data, f, indent=1, sort_keys=False)
        f.write("\n")
