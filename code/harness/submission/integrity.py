"""What keeps a staged tree honest: the harness's own files kept beside it, safe names, and logs that agree.

The submission root (--results_dir, default build/submission) holds only what MLCommons' checker reads:
<division>/<submitter>/... Everything the harness keeps about the tree lives in a sibling folder,
`<results_dir>.records/` (build/submission.records/):

    staging_record.json     which runs were staged, their fingerprints, the sha256 of every staged file
    DRY_RUN.txt             for --dry_run trees (a copy also sits in <division>/<submitter>/)
    accuracy_log_backup/    the untruncated accuracy logs (truncate_results); keep them, MLCommons may ask
    official_checker.log, official_summary.csv, results_summary.csv

So uploading the root ships neither the untruncated logs nor the record, and a record edited to match an edited
tree is not the only guard: check_submission also cross-checks each mlperf_log_summary.txt against its
mlperf_log_detail.txt (validity, result and latency values, constraint verdicts) and each accuracy.txt against its
accuracy log (sample count, and top-1 recomputed from the val map recorded at staging).
"""
from __future__ import annotations

import math
import os
import re
import shutil
from typing import Any, Optional

from harness.core.errors import HarnessError
from harness.loadgen.logs import DetailLog, read_accuracy_entries, read_summary, response_label
from harness.config.scenarios import TestMode

RECORD = "staging_record.json"
ROOT_ENTRIES = ("closed", "open", "network")   # what MLCommons' checker reads at the root of a submission
SIDECAR_SUFFIX = ".records"
BACKUP_DIR = "accuracy_log_backup"
LEGACY_ROOT_FILES = (RECORD, "DRY_RUN.txt", BACKUP_DIR, "official_checker.log", "official_summary.csv",
                     "results_summary.csv")


def records_dir(results_dir: str) -> str:
    return os.path.abspath(results_dir).rstrip(os.sep) + SIDECAR_SUFFIX


def record_path(results_dir: str) -> str:
    return os.path.join(records_dir(results_dir), RECORD)


def backup_path(results_dir: str, rel_log: str) -> str:
    return os.path.join(records_dir(results_dir), BACKUP_DIR, rel_log)


def move_legacy_files(results_dir: str) -> list[str]:
    """A tree staged by an older harness kept its record, backups and checker logs at the root: move them out."""
    moved = []
    for name in LEGACY_ROOT_FILES:
        src = os.path.join(results_dir, name)
        if not os.path.exists(src):
            continue
        dst = os.path.join(records_dir(results_dir), name)
        if os.path.exists(dst):
            raise HarnessError(f"{src} and {dst} both exist: the first is a leftover of an older harness inside the "
                               f"submission root. Compare them, keep the right one in {records_dir(results_dir)} "
                               "and remove the other.")
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.move(src, dst)
        moved.append(name)
    return moved


def root_extras(results_dir: str) -> list[str]:
    """Entries at the submission root that MLCommons' checker does not expect."""
    try:
        return sorted(n for n in os.listdir(results_dir) if n not in ROOT_ENTRIES)
    except OSError:
        return []


# ---------------------------------------------------------------------------------------------------------------
# mlperf_log_summary.txt against mlperf_log_detail.txt
_LATENCY = re.compile(r"(\d+\.\d+) percentile latency \(ns\)")
_SUMMARY_KEYS = {
    "Result is": "result_validity",
    "Samples per second": "result_samples_per_second",
    "Completed samples per second": "result_completed_samples_per_sec",
    "Scheduled samples per second": "result_scheduled_samples_per_sec",
    "Min latency (ns)": "result_min_latency_ns",
    "Max latency (ns)": "result_max_latency_ns",
    "Mean latency (ns)": "result_mean_latency_ns",
    "90.0th percentile latency (ns)": "result_90.00_percentile_latency_ns",     # SingleStream's result
    "99.0th percentile latency (ns)": "result_99.00_percentile_latency_ns",     # MultiStream's result
    "Early stopping 90.0th percentile estimate": "early_stopping_latency_ss",
    "Early stopping 99.0th percentile estimate": "early_stopping_latency_ms",
    "QPS w/ loadgen overhead": "result_qps_with_loadgen_overhead",
    "QPS w/o loadgen overhead": "result_qps_without_loadgen_overhead",
    "Min duration satisfied": "result_min_duration_met",
    "Min queries satisfied": "result_min_queries_met",
    "Early stopping satisfied": "early_stopping_met",
    "Performance constraints satisfied": "result_perf_constraints_met",
    "Scenario": "effective_scenario",
    "Mode": "effective_test_mode",
}


def _detail_key(label: str) -> Optional[str]:
    if label in _SUMMARY_KEYS:
        return _SUMMARY_KEYS[label]
    m = _LATENCY.fullmatch(label)
    return f"result_{m.group(1)}_percentile_latency_ns" if m else None


def _same(shown: str, value: Any) -> bool:
    if isinstance(value, bool):
        return shown.lower() == ("yes" if value else "no")
    if isinstance(value, (int, float)):
        try:
            token = shown.split()[0]
            number = float(token)
        except (ValueError, IndexError):
            return False
        # The summary rounds (QPS to 2 decimals, rates to ~6 digits): agree to half a unit of its last digit.
        decimals = len(token.split(".", 1)[1]) if "." in token else 0
        return math.isclose(number, float(value), rel_tol=1e-9, abs_tol=0.5 * 10.0 ** -decimals + 1e-9)
    return shown == str(value)


def summary_detail_problems(summary_path: str, detail: DetailLog) -> list[str]:
    """Where mlperf_log_summary.txt disagrees with the detail log LoadGen wrote in the same run."""
    try:
        shown = read_summary(summary_path)
    except OSError as e:
        return [f"unreadable ({e.strerror})"]
    if "Result is" not in shown and detail.get("effective_test_mode") != TestMode.ACCURACY:   # AccuracyOnly has none
        return ["no `Result is :` line: not a LoadGen summary, or cut short"]
    problems = []
    for label, text in shown.items():
        key = _detail_key(label)
        if key is None or detail.get(key) is None:
            continue
        if not _same(text, detail.get(key)):
            problems.append(f"{label} {text!r} disagrees with mlperf_log_detail.txt {key} = {detail.get(key)!r}")
    return problems


# ---------------------------------------------------------------------------------------------------------------
# accuracy.txt against the accuracy log
_ACCURACY_LINE = re.compile(r"accuracy=([0-9.]+)%, good=(\d+), total=(\d+)")


def accuracy_problems(accuracy_txt: str, full_log: str, labels: Optional[Any] = None) -> list[str]:
    """Where accuracy.txt disagrees with the (untruncated) accuracy log; with the val map's labels, the top-1 too."""
    try:
        with open(accuracy_txt) as f:
            m = _ACCURACY_LINE.search(f.read())
    except OSError as e:
        return [f"unreadable ({e.strerror})"]
    if not m:
        return ["no `accuracy=NN.NNN%, good=N, total=N` line"]
    top1, good, total = float(m.group(1)), int(m.group(2)), int(m.group(3))
    try:
        entries = read_accuracy_entries(full_log)
    except (ValueError, OSError) as e:
        return [f"its accuracy log {full_log} cannot be read ({e})"]
    first: dict[int, str] = {}
    for e in entries:
        first.setdefault(int(e["qsl_idx"]), e["data"])
    problems = []
    if total != len(first):
        problems.append(f"total={total}, but the accuracy log answers {len(first)} distinct samples")
    if total and abs(100.0 * good / total - top1) > 0.0005 + 1e-9:
        problems.append(f"accuracy={top1}% is not good/total = {good}/{total}")
    if labels is not None and first:
        found = 0
        for idx, data in first.items():
            label = response_label(data)
            if idx < len(labels) and label >= 0 and label == int(labels[idx]):
                found += 1
        if found != good:
            problems.append(f"good={good}, but the accuracy log has {found} correct answers against the val map")
    return problems
