"""Runs under a log folder: what each is, whether it finished, what produced it, and the newest of each kind.

    <log_dir>/<run root>/<system>/resnet50/<Scenario>/            a PerformanceOnly or AccuracyOnly run
    <log_dir>/<run root>/<system>/resnet50/<Scenario>/<TEST0X>/   an audit run (make run_audit_harness)

Run roots are timestamps (build/logs/2026.01.31-12.00.00[-N]); "newest" is the last in name order.
Every run records a fingerprint of what produced it (summary.json "fingerprint"): runs that are staged together
(performance, accuracy and audit runs of one scenario) must have equal fingerprints.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Optional

from harness.core.paths import BENCHMARK
from harness.core.storage import read_json
from harness.core.interrupt import MARKER as INTERRUPTED, is_interrupted
from harness.loadgen.limits import MARKER as ENDED_AT_MAX_DURATION
from harness.submission import rules
from harness.loadgen.logs import DetailLog, read_accuracy_entries, read_detail
from harness.config.scenarios import TestMode, run_kind

# Fingerprint keys that must agree between runs staged together, with what they mean in messages.


@dataclass
class Run:
    dir: str
    log_dir: str
    root: str
    system: str
    scenario: str
    kind: str
    summary: Optional[dict]
    detail: DetailLog
    problems: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return os.path.relpath(self.dir, self.log_dir)

    @property
    def fingerprint(self) -> Optional[dict]:
        return (self.summary or {}).get("fingerprint")

    @property
    def usable(self) -> bool:
        return not self.problems

    def path(self, name: str) -> str:
        return os.path.join(self.dir, name)


def _invalid_reasons(detail: DetailLog) -> str:
    reasons = []
    if detail.get("result_min_duration_met") is False:
        reasons.append("min duration not met")
    if detail.get("result_min_queries_met") is False:
        reasons.append("min queries not met")
    if detail.get("early_stopping_met") is False:
        text = " ".join(str(detail.get("early_stopping_result") or "").split())
        reasons.append("early stopping not met" + (f" ({text})" if text else ""))
    return "; ".join(reasons) or "see its mlperf_log_summary.txt"


def vet(run: Run) -> None:
    """Fill run.problems: why this run cannot be staged or used as an audit reference."""
    p = run.problems
    s = run.summary
    if is_interrupted(run.dir, s):
        p.append(f"interrupted: it was stopped by {(s or {}).get('signal') or 'a signal'} (its {INTERRUPTED} marker); "
                 "its logs are cut short and it is not a result; run it again")
        return
    if os.path.exists(run.path(ENDED_AT_MAX_DURATION)) or (s or {}).get("ended_at_max_duration"):
        p.append(f"the harness ended it at max_duration ({(s or {}).get('ended_at_max_duration')} ms) by answering "
                 f"the remaining queries at once (its {ENDED_AT_MAX_DURATION} marker): INVALID; lower the target and "
                 "run it again")
        return
    if s is None:
        p.append("half-finished: it has no summary.json (the run crashed, was stopped, or is still running)")
    if not run.detail.ok:
        p.append(f"half-finished: its mlperf_log_detail.txt {run.detail.problem}")
    if s is None or not run.detail.ok:
        return
    if s.get("settings", {}).get("system_id", run.system) != run.system:
        p.append(f"mismatched system name: it is filed under {run.system!r} but its summary.json says system "
                 f"{s['settings']['system_id']!r}")
    if run.detail.scenario != run.scenario:
        p.append(f"it is filed under {run.scenario} but LoadGen ran {run.detail.scenario}")
    if run.detail.errors:
        p.append(f"LoadGen reported {len(run.detail.errors)} error(s): {run.detail.errors[0]}")
    if not run.fingerprint:
        p.append("it has no run fingerprint (made by an older harness); run it again")
    needed = rules.ACCURACY_FILES if run.kind == "accuracy" else rules.PERFORMANCE_FILES + ("user.conf",)
    if run.kind in rules.AUDIT_TESTS and os.path.exists(run.path("verification.json")):
        needed += ("verify_performance.txt",)
        if rules.AUDIT_TESTS[run.kind].compares_accuracy:
            needed += ("verify_accuracy.txt",) + rules.TEST01_ACCURACY_FILES
    missing = [name for name in needed if not os.path.exists(run.path(name))]
    if missing:
        p.append(f"half-finished: it lacks {', '.join(missing)}")
    mode = run.detail.get("effective_test_mode")
    if run.kind == "accuracy":
        if mode != TestMode.ACCURACY:
            p.append(f"LoadGen ran it in {mode}, not AccuracyOnly")
        try:
            entries = read_accuracy_entries(run.path("mlperf_log_accuracy.json"))
            total = run.detail.get("qsl_reported_total_count")
            if total is not None and len({int(e["qsl_idx"]) for e in entries}) != int(total):
                p.append(f"its accuracy log covers {len({int(e['qsl_idx']) for e in entries})} of {total} samples")
        except ValueError as e:
            p.append(f"half-finished: its mlperf_log_accuracy.json is {e}")
        return
    if mode != TestMode.PERFORMANCE:
        p.append(f"LoadGen ran it in {mode}, not PerformanceOnly")
    if not run.detail.valid:
        p.append(f"LoadGen judged it {run.detail.get('result_validity')}: {_invalid_reasons(run.detail)}")
    if run.kind in rules.AUDIT_TESTS and not os.path.exists(run.path("verification.json")):
        p.append("half-finished: the audit run has no verification.json (it was not verified)")


def _kind(summary: Optional[dict], detail: DetailLog) -> str:
    mode = (summary or {}).get("test_mode") or detail.get("effective_test_mode")
    return run_kind(mode)


def _looks_like_run(path: str) -> bool:
    return any(os.path.exists(os.path.join(path, n)) for n in
               ("summary.json", "mlperf_log_detail.txt", "mlperf_log_summary.txt", "user.conf"))


def discover(log_dir: str) -> list[Run]:
    """Every run under log_dir, oldest first."""
    runs: list[Run] = []
    if not os.path.isdir(log_dir):
        return runs
    for root in sorted(os.listdir(log_dir)):
        root_path = os.path.join(log_dir, root)
        if not os.path.isdir(root_path):
            continue
        for system in sorted(os.listdir(root_path)):
            bench = os.path.join(root_path, system, BENCHMARK)
            if not os.path.isdir(bench):
                continue
            for scenario in sorted(os.listdir(bench)):
                sdir = os.path.join(bench, scenario)
                if not os.path.isdir(sdir):
                    continue
                candidates = []
                if _looks_like_run(sdir):
                    candidates.append((sdir, None))
                for sub in sorted(os.listdir(sdir)):
                    if sub in rules.AUDIT_TESTS and os.path.isdir(os.path.join(sdir, sub)):
                        candidates.append((os.path.join(sdir, sub), sub))
                for path, test in candidates:
                    summary = read_json(os.path.join(path, "summary.json"), missing=None, invalid=None, expect=dict)
                    detail = read_detail(os.path.join(path, "mlperf_log_detail.txt"))
                    kind = test or _kind(summary, detail)
                    run = Run(path, log_dir, root, system, scenario, kind, summary, detail)
                    vet(run)
                    runs.append(run)
    return runs


def newest(runs: list[Run], system: str, scenario: str, kind: str) -> Optional[Run]:
    found = [r for r in runs if r.system == system and r.scenario == scenario and r.kind == kind]
    return found[-1] if found else None


def systems_with_runs(runs: list[Run]) -> list[str]:
    return sorted({r.system for r in runs})
