"""Reading run folders for the report: each scenario run (mlperf_log_detail.txt through harness.loadgen.logs,
summary.json, sut_timing.json, verification.json, accuracy_summary.json), each tune search (tune_log.jsonl through
harness/report/tune_log.py), and what a run shows (its headline figure and its bounds, as the Scenario says).

Runs under a `probes/` folder beside a tune log are the search's probes: the tune table lists them, the scenario
sections do not. charts.py draws what is read here; page.py writes the HTML.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any, Optional

from harness.config.scenarios import DISPLAY_ORDER, SCENARIOS, find as find_scenario, run_kind
from harness.core.errors import HarnessError
from harness.core.paths import LOGS_DIR
from harness.core.storage import read_json
from harness.loadgen import timing as sut_timing
from harness.loadgen.logs import parse_detail
from harness.report.tune_log import TUNE_LOG, TuneRecord, number, read_records

REPORT_DIR = "report"
RUN_ROOT_RE = re.compile(r"^\d{4}\.\d{2}\.\d{2}-\d{2}\.\d{2}\.\d{2}(-\d+)?$")
SCENARIO_ORDER = DISPLAY_ORDER


# ---------------------------------------------------------------------------------------------------------------
# Reading a run folder
@dataclass
class ScenarioRun:
    dir: str
    label: str
    scenario: str
    kind: str                       # performance, accuracy, TEST01, TEST04, TEST05, unknown
    detail: dict[str, Any]
    errors: list[str]
    summary: dict[str, Any]
    timing: Optional[dict]
    verification: Optional[dict]
    accuracy: Optional[dict]

    def get(self, key: str, default=None):
        return self.detail.get(key, default)

    @property
    def sc(self):
        """The Scenario this run is of (None: a name the harness does not know)."""
        return find_scenario(self.scenario)

    @property
    def validity(self) -> str:
        if self.kind == "accuracy":
            acc = self.accuracy or self.summary.get("accuracy") or {}
            return "PASS" if acc.get("pass") else ("FAIL" if acc else "accuracy run")
        return str(self.get("result_validity") or "UNFINISHED")


@dataclass
class TuneLog:
    path: str
    label: str
    probes: list[TuneRecord] = field(default_factory=list)
    chosen: Optional[TuneRecord] = None
    skipped_lines: int = 0
    key: str = ""
    bound_ms: Optional[float] = None
    note: str = ""


@dataclass
class Folder:
    path: str
    runs: list[ScenarioRun]
    tunes: list[TuneLog]
    harness_summary: Optional[dict]


def _load_json(path: str) -> Optional[dict]:
    """A run's own JSON (summary.json, perf_harness_summary.json): None when missing or damaged (the page says so)."""
    return read_json(path, missing=None, invalid=None, expect=dict)


def _read_run(path: str, folder: str) -> ScenarioRun:
    try:
        with open(os.path.join(path, "mlperf_log_detail.txt"), errors="replace") as f:
            detail, errors = parse_detail(f)
    except OSError:
        detail, errors = {}, []
    summary = _load_json(os.path.join(path, "summary.json")) or {}
    name = os.path.basename(path)
    scenario = detail.get("effective_scenario") or (summary.get("settings") or {}).get("scenario") or (
        name if name in SCENARIOS else os.path.basename(os.path.dirname(path)))
    mode = summary.get("test_mode") or detail.get("effective_test_mode")
    kind = name if re.fullmatch(r"TEST0\d(\.try\d+)?", name) else run_kind(mode)   # .tryN: TEST04
    return ScenarioRun(path, os.path.relpath(path, folder), scenario, kind, detail, errors, summary,
                       _load_json(os.path.join(path, sut_timing.FILE_NAME)),
                       _load_json(os.path.join(path, "verification.json")),
                       _load_json(os.path.join(path, "accuracy_summary.json")))





def read_tune_log(path: str, folder: str) -> TuneLog:
    """A tune search log (harness/report/tune_log.py), tolerant of unknown keys and broken lines."""
    log = TuneLog(path, os.path.relpath(path, folder))
    records, log.skipped_lines = read_records(path)
    for record in records:
        log.key = record.key or log.key
        if record.event == "start":
            log.bound_ms = record.bound_ns / 1e6 if record.bound_ns else log.bound_ms
        elif record.is_choice:
            log.chosen = record
            if record.has_confirmed and record.confirmed is None:
                log.note = (f"searched {record.searched}, but no confirming run was VALID: nothing chosen"
                            if record.searched is not None else "no VALID value found")
                log.chosen = None
        else:
            log.probes.append(record)
            if record.chosen:
                log.chosen = record
    return log


def read_folder(path: str) -> Folder:
    path = os.path.abspath(path)
    runs, tunes = [], []
    for root, dirs, files in os.walk(path):
        dirs[:] = sorted(d for d in dirs if d != REPORT_DIR and not (d == "probes" and TUNE_LOG in files))
        if "mlperf_log_detail.txt" in files or "summary.json" in files:
            runs.append(_read_run(root, path))
        if TUNE_LOG in files:
            tunes.append(read_tune_log(os.path.join(root, TUNE_LOG), path))
    runs.sort(key=lambda r: (r.sc.display_order if r.sc else 9, r.kind != "performance", r.label))
    return Folder(path, runs, tunes, _load_json(os.path.join(path, "perf_harness_summary.json")))


def resolve_folders(log_dir: Optional[str]) -> list[str]:
    """--log_dir as run folders: a comma list; a base folder of run roots (build/logs) means its newest."""
    if not log_dir:
        log_dir = LOGS_DIR
    out = []
    for word in (w.strip() for w in log_dir.split(",")):
        if not word:
            continue
        path = os.path.abspath(word)
        if not os.path.isdir(path):
            raise HarnessError(f"report: --log_dir {word} is not a folder; give a run folder such as "
                               "build/logs/<timestamp> (a comma list compares several).")
        roots = sorted(d for d in os.listdir(path) if RUN_ROOT_RE.match(d) and os.path.isdir(os.path.join(path, d)))
        if roots and not any(os.path.isdir(os.path.join(path, d, "resnet50")) for d in os.listdir(path)):
            path = os.path.join(path, roots[-1])
            print(f"[report] {word} holds {len(roots)} run folder(s); reporting the newest, {path}")
        out.append(path)
    if not out:
        raise HarnessError("report: --log_dir is empty; give one run folder or a comma list.")
    return out


# ---------------------------------------------------------------------------------------------------------------
# What a run shows
def ms_of(ns) -> Optional[float]:
    x = number(ns)
    return None if x is None else x / 1e6


def result_line(run: ScenarioRun) -> tuple[str, Optional[float], str]:
    """(metric name, value, unit) of a run's result: the scenario's headline figure (latencies in ms)."""
    sc = run.sc
    if sc is None:
        return "result", None, ""
    read = ms_of if sc.latency_bound else number
    value = None
    for key in sc.headline_keys:
        value = value or read(run.get(key))
    return sc.headline, value, sc.headline_unit


def short_number(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"


def invalid_reasons(run: ScenarioRun) -> str:
    """Why LoadGen judged a run INVALID, in its own words where it has them."""
    g, out = run.get, []
    if g("result_validity") != "INVALID":
        return ""
    if g("result_perf_constraints_met") is False:
        out.append("latency constraint not met")
    if g("result_min_duration_met") is False:
        out.append("min duration not met")
    if g("result_min_queries_met") is False:
        out.append("min queries not met")
    if g("early_stopping_met") is False:
        out.append("early stopping not met")
    return "; ".join(out) or "see mlperf_log_summary.txt"


def bounds(run: ScenarioRun) -> list[tuple[str, str, Optional[bool]]]:
    """(what, value against its bound, met?) for the table; met None when there is no verdict."""
    g = run.get
    out: list[tuple[str, str, Optional[bool]]] = []

    def fmt(x, digits=3):
        if x is None:
            return "n/a"
        text = f"{x:,.{digits}f}"
        return text.rstrip("0").rstrip(".") if "." in text else text

    sc = run.sc
    if sc is not None and sc.latency_constrained:
        p99, bound = ms_of(g("result_99.00_percentile_latency_ns")), ms_of(g("effective_target_latency_ns"))
        out.append(("p99 latency", f"{fmt(p99)} ms vs bound {fmt(bound)} ms",
                    None if p99 is None or bound is None else p99 <= bound))
        out.append(("rate", f"scheduled {fmt(number(g('result_scheduled_samples_per_sec')), 1)} q/s, completed "
                            f"{fmt(number(g('result_completed_samples_per_sec')), 1)} q/s, target "
                            f"{fmt(number(g('effective_target_qps')), 1)} q/s", None))
        over = g("result_overlatency_query_count")
        if over is not None:
            out.append(("queries over the bound", f"{over} of {g('result_query_count')}", None))
    elif sc is not None and sc.one_query:
        out.append(("rate", f"{fmt(number(g('result_samples_per_second')), 1)} samples/s vs expected "
                            f"{fmt(number(g('effective_target_qps')), 1)}", None))
    elif sc is not None and sc.latency_bound:
        pct = sc.latency_percentile
        rate = number(g("effective_target_qps"))      # LoadGen stores the expected latency as 1e9 / ns
        expected = f"expected {fmt(1000.0 / rate, 4)} ms, a hint, not a bound" if rate else "no expected latency"
        out.append((f"p{pct} latency", f"{fmt(ms_of(g(f'result_{pct}.00_percentile_latency_ns')), 4)} ms ({expected})",
                    None))
    if run.kind != "accuracy" and g("result_validity") is not None:
        out.append(("min duration", f"{fmt(number(g('effective_min_duration_ms')), 0)} ms",
                    g("result_min_duration_met")))
        out.append(("min query count", f"{g('result_query_count', g('generated_query_count'))} queries vs "
                                       f"{g('effective_min_query_count')}", g("result_min_queries_met")))
        text = " ".join(str(g("early_stopping_result") or "").split())
        if g("early_stopping_met") is not None and text:
            out.append(("early stopping", text[:300], g("early_stopping_met")))
    return out

