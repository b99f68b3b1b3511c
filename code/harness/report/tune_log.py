"""One tune_log.jsonl record: what `tune` writes (harness/tune/probes.py, harness/actions/tune.py) and the report
reads (harness/report/read.py), as one dataclass with its writer and its reader.

<run root>/tune/<Scenario>/tune_log.jsonl holds one JSON object per line: a `start` line, one `probe` line per probe
or confirming run, a `result` line. The reader is tolerant: lines that are not JSON objects are skipped and counted,
unknown keys are kept in `extra`, and the older or hand-written spellings below are read too.
    event / kind / type                "start" (key, server_latency_bound_ns), "probe" (the default), or the chosen
                                       point: "result" / "chosen" / "choice" / "final"
    key                                the config key searched (server_target_qps, offline_expected_qps, ...)
    scenario, phase                    Offline ... MultiStream; bracket / bisect / measure / confirm (optional)
    value / target / target_qps / server_target_qps / offline_expected_qps    a probe's value of that key
    confirmed / searched               the result line's value (confirmed: None when no confirming run was VALID)
    valid (bool) / validity / result_validity ("VALID"; "INVALID", "STOPPED", "TIMEOUT", "ERROR" are not)
    latency_ms / p99_ms / p99_latency_ms / p90_ms / p90_latency_ms    the latency the probe measured (ms)
    bound_ms / target_latency_ms / latency_bound_ms                    the bound it is judged against (ms)
    measured / achieved / samples_per_second / scheduled_queries_per_second   what the probe reached (optional)
    chosen: true on a probe line marks it as the chosen point too.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from typing import Any, Optional

TUNE_LOG = "tune_log.jsonl"
START, PROBE, RESULT = "start", "probe", "result"
CHOSEN_EVENTS = (RESULT, "chosen", "choice", "final")

_VALUE_KEYS = ("value", "target", "target_qps", "server_target_qps", "offline_expected_qps", "confirmed", "searched")
_VALID_KEYS = ("valid", "result_validity", "validity")
_LATENCY_KEYS = ("latency_ms", "p99_ms", "p99_latency_ms", "p90_ms", "p90_latency_ms")
_BOUND_KEYS = ("bound_ms", "target_latency_ms", "latency_bound_ms")
_MEASURED_KEYS = ("measured", "achieved", "samples_per_second", "scheduled_queries_per_second")
_READ = {"time", "event", "kind", "type", "scenario", "key", "phase", "chosen", "server_latency_bound_ns"} | set(
    _VALUE_KEYS + _VALID_KEYS + _LATENCY_KEYS + _BOUND_KEYS + _MEASURED_KEYS)


def number(value) -> Optional[float]:
    """A finite float, or None."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def _pick(entry: dict, *keys):
    for key in keys:
        if entry.get(key) is not None:
            return entry[key]
    return None


@dataclass
class TuneRecord:
    """One line of tune_log.jsonl."""
    event: str = PROBE                   # start, probe, result (read: also chosen / choice / final)
    scenario: Optional[str] = None
    key: str = ""                        # the config key searched
    phase: Optional[str] = None          # probe: bracket, bisect, measure, confirm
    value: Optional[float] = None        # probe: its value of `key`; read from a result line: confirmed, else searched
    valid: Optional[bool] = None         # probe: VALID for the search (None: the line does not say)
    latency_ms: Optional[float] = None   # Server p99, SingleStream p90, MultiStream p99
    bound_ms: Optional[float] = None     # Server: the latency bound
    measured: Optional[float] = None     # completed samples/s, samples/s, or the mean latency in ns
    bound_ns: Optional[float] = None     # start: server_latency_bound_ns
    searched: Optional[float] = None     # result: the best value the search found
    confirmed: Optional[float] = None    # result: the value the confirming runs held VALID (None: none did)
    has_confirmed: bool = False          # the line names `confirmed` (a None there: no confirming run was VALID)
    chosen: bool = False                 # a probe line marked as the chosen point
    extra: dict[str, Any] = field(default_factory=dict)   # everything else the line holds, written as it is
    time: str = ""

    @property
    def is_choice(self) -> bool:
        return self.event in CHOSEN_EVENTS

    def to_json(self) -> dict[str, Any]:
        """The line as tune writes it: time, event, scenario, key, the fields of its event, then `extra`."""
        out: dict[str, Any] = {"time": self.time or time.strftime("%Y-%m-%dT%H:%M:%S"), "event": self.event}
        if self.scenario is not None:
            out["scenario"] = self.scenario
        out["key"] = self.key
        if self.event == START:
            out["server_latency_bound_ns"] = self.bound_ns
        elif self.event == PROBE:
            out.update(phase=self.phase, value=self.value, valid=self.valid, latency_ms=self.latency_ms,
                       bound_ms=self.bound_ms, measured=self.measured)
        elif self.event == RESULT:
            out.update(searched=self.searched, confirmed=self.confirmed)
        out.update(self.extra)
        return out

    @classmethod
    def from_json(cls, entry: dict[str, Any]) -> "TuneRecord":
        """A line as read back, tolerant of the spellings in the module docstring."""
        event = str(_pick(entry, "event", "kind", "type") or PROBE).lower()
        validity = _pick(entry, *_VALID_KEYS)
        if validity is not None and not isinstance(validity, bool):
            validity = str(validity).upper() == "VALID"
        return cls(event=event, scenario=entry.get("scenario"), key=str(entry.get("key") or ""),
                   phase=entry.get("phase"), value=number(_pick(entry, *_VALUE_KEYS)), valid=validity,
                   latency_ms=number(_pick(entry, *_LATENCY_KEYS)), bound_ms=number(_pick(entry, *_BOUND_KEYS)),
                   measured=number(_pick(entry, *_MEASURED_KEYS)),
                   bound_ns=number(entry.get("server_latency_bound_ns")), searched=entry.get("searched"),
                   confirmed=entry.get("confirmed"), has_confirmed="confirmed" in entry,
                   chosen=entry.get("chosen") is True, time=str(entry.get("time") or ""),
                   extra={k: v for k, v in entry.items() if k not in _READ})


def append(path: str, record: TuneRecord) -> None:
    """Add one line to a tune log."""
    with open(path, "a") as f:
        f.write(json.dumps(record.to_json()) + "\n")


def read_records(path: str) -> tuple[list[TuneRecord], int]:
    """Every record of a tune log, and how many lines were skipped (not JSON objects)."""
    records, skipped = [], 0
    with open(path, errors="replace") as f:
        for line in f:
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except ValueError:
                entry = None
            if not isinstance(entry, dict):
                skipped += 1
                continue
            records.append(TuneRecord.from_json(entry))
    return records, skipped
