"""check_submission: the project's own check of a staged tree, then the official MLCommons checker if present.

One line per problem, in three kinds:
  ERROR      structure: a required file, folder or field is missing or empty, a log is unreadable, INVALID or has
             LoadGen errors, a file differs from what was staged (sha256 in staging_record.json), an accuracy log is
             not truncated or its recorded hash is wrong, a verification file's verdict disagrees with the staged
             logs, a compliance test failed on responses, names do not match (system, division, submitter).
  RULE       the round's rules: duration, query counts, performance sample count, seeds, latency bound, dataset
             size, accuracy target and reference model (closed division), audit performance tolerances.
  NOT READY  a --dry_run tree, TODO placeholders left in systems/<system>.json.
The check fails on any line; with --structure_only only ERROR lines fail it (RULE and NOT READY become notes).
The official checker (tools/submission/submission_checker of a mlcommons/inference checkout at --inference_repo,
default build/inference) runs after a full check; it is skipped with --structure_only, since short runs fail it.
Its verdict is printed beside the project's, its errors sorted into short-run / not-ready / other
(harness/submission/official.py).
"""
from __future__ import annotations

import os
from typing import Optional

from harness.config.command import Command
from harness.core.paths import INFERENCE_REPO_DIR
from harness.core.errors import HarnessError
from harness.core.storage import file_digest, read_json
from harness.submission import layout, official, rules, system_desc
from harness.submission.audit import compare_performance, compare_responses, audit_applied
from harness.loadgen.logs import read_accuracy_entries, read_detail
from harness.submission.logs import read_accuracy_txt
from harness.submission.integrity import (
    LEGACY_ROOT_FILES,
    accuracy_problems,
    backup_path,
    record_path,
    records_dir,
    root_extras,
    summary_detail_problems,
)
from harness.submission.stage import DRY_RUN_MARKER, RECORD, default_results_dir, system_paths
from harness.config.scenarios import TestMode
from resnet50.imagenet import read_map

ERROR, RULE, NOT_READY = "ERROR", "RULE", "NOT READY"
DIVISION_DIRS = ("closed", "open", "network")


class Report:
    def __init__(self, results_dir: str):
        self.results_dir = results_dir
        self.lines: list[tuple[str, str, str]] = []
        self.results = 0

    def add(self, kind: str, path: str, message: str) -> None:
        rel = os.path.relpath(path, self.results_dir) if os.path.isabs(path) else path
        self.lines.append((kind, rel, message))

    def count(self, kind: str) -> int:
        return sum(1 for k, _, _ in self.lines if k == kind)

    def failed(self, structure_only: bool) -> bool:
        return self.count(ERROR) > 0 or (not structure_only and len(self.lines) > 0)


def _need(report: Report, path: str, nonempty: bool = True) -> bool:
    if not os.path.isfile(path):
        report.add(ERROR, path, "missing")
        return False
    if nonempty and os.path.getsize(path) == 0:
        report.add(ERROR, path, "empty")
        return False
    return True


def check_system_json(report: Report, path: str, division: str, submitter: str) -> Optional[dict]:
    if not _need(report, path):
        return None
    desc = read_json(path, missing=None, invalid=None, expect=dict)
    if desc is None:
        report.add(ERROR, path, "not a JSON object")
        return None
    for field in rules.SYSTEM_REQUIRED_FIELDS:
        if field not in desc:
            report.add(ERROR, path, f"field {field!r} is missing")
        elif field in rules.SYSTEM_MEANINGFUL_FIELDS and not desc[field]:
            report.add(ERROR, path, f"field {field!r} needs a value (configs/systems/<system>.json)")
        elif system_desc.is_placeholder(desc[field]):
            report.add(NOT_READY, path, f"field {field!r} is still a placeholder: {desc[field]!r}")
    if desc.get("division") != division:
        report.add(ERROR, path, f"division {desc.get('division')!r} but the tree's folder is {division!r}")
    if str(desc.get("submitter", "")).lower() != submitter.lower():
        report.add(ERROR, path, f"submitter {desc.get('submitter')!r} but the tree's folder is {submitter!r}")
    if desc.get("system_type") not in rules.CATEGORIES + ("edge,datacenter",):
        report.add(ERROR, path, f"system_type {desc.get('system_type')!r} is not one of {', '.join(rules.CATEGORIES)}")
    status = str(desc.get("status", ""))
    if not system_desc.is_placeholder(status) and status.lower() not in rules.VALID_STATUS:
        report.add(ERROR, path, f"status {status!r} is not one of {', '.join(rules.VALID_STATUS)}")
    problem = layout.description_problem(os.path.basename(path)[:-len(".json")], desc)
    if problem:
        report.add(ERROR, path, problem)
    if str(desc.get("is_network", "false")).lower() == "true":
        report.add(ERROR, path, "is_network is true: this harness has no network-division SUT")
    return desc


def _check_perf_log(report: Report, path: str, scenario: str, division: str, r: rules.Round,
                    audit: Optional[str] = None):
    if not _need(report, path):
        return None
    log = read_detail(path)
    if not log.ok:
        report.add(ERROR, path, log.problem)
        return None
    if log.scenario != scenario:
        report.add(ERROR, path, f"LoadGen ran {log.scenario}, but it is filed under {scenario}")
    if log.get("effective_test_mode") != TestMode.PERFORMANCE:
        report.add(ERROR, path, f"test mode {log.get('effective_test_mode')}, expected PerformanceOnly")
    if not log.valid:
        report.add(ERROR, path, f"LoadGen judged the run {log.get('result_validity')}")
    for e in log.errors:
        report.add(ERROR, path, f"LoadGen error: {e}")
    _cross_check_summary(report, path, log)
    for problem in rules.performance_rule_problems(log, scenario, division, r, audit=audit):
        report.add(RULE, path, problem)
    return log


def _check_accuracy_folder(report: Report, folder: str, files: tuple[str, ...], entry: dict) -> tuple:
    """Files, truncation and hash of an accuracy/ folder; returns (top-1, log entries or None when truncated)."""
    for name in files:
        _need(report, os.path.join(folder, name), nonempty=name != "mlperf_log_accuracy.json")
    txt, log = os.path.join(folder, "accuracy.txt"), os.path.join(folder, "mlperf_log_accuracy.json")
    top1, digest = read_accuracy_txt(txt)
    if os.path.exists(txt) and top1 is None:
        report.add(ERROR, txt, "no `accuracy=NN.NNN%` line")
    if not os.path.exists(log):
        return top1, None
    rel_log = os.path.relpath(log, report.results_dir)
    full = (entry.get("full_accuracy_logs") or {}).get(rel_log)
    if not digest:
        report.add(ERROR, txt, "no hash= line: the accuracy log is not truncated yet (make truncate_results)")
    elif full and digest != full:
        report.add(ERROR, txt, f"hash={digest} is not the staged log's sha256 {full}")
    if os.path.getsize(log) > rules.MAX_ACCURACY_LOG_BYTES:
        if digest:
            report.add(ERROR, log, f"{os.path.getsize(log)} bytes: larger than {rules.MAX_ACCURACY_LOG_BYTES} "
                                   "(not truncated)")
        try:
            return top1, read_accuracy_entries(log)
        except ValueError as e:
            report.add(ERROR, log, str(e))
    return top1, None


def _cross_check_summary(report: Report, detail_path: str, log) -> None:
    """mlperf_log_summary.txt must say what the detail log of the same run says (integrity.py)."""
    summary = os.path.join(os.path.dirname(detail_path), "mlperf_log_summary.txt")
    if os.path.exists(summary):
        for problem in summary_detail_problems(summary, log):
            report.add(ERROR, summary, problem)


def _cross_check_accuracy(report: Report, folder: str, entry: dict, labels) -> None:
    """accuracy.txt against the full accuracy log (the backup in <results_dir>.records/ once truncated)."""
    txt, log = os.path.join(folder, "accuracy.txt"), os.path.join(folder, "mlperf_log_accuracy.json")
    if not (os.path.exists(txt) and os.path.exists(log)):
        return
    rel_log = os.path.relpath(log, report.results_dir)
    full, backup = log, backup_path(report.results_dir, rel_log)
    if os.path.getsize(log) <= rules.MAX_ACCURACY_LOG_BYTES and os.path.exists(backup):
        full = backup
        recorded = (entry.get("full_accuracy_logs") or {}).get(rel_log)
        if recorded and file_digest(backup, "sha256") != recorded:
            report.add(ERROR, backup, f"sha256 differs from the full log's {recorded} recorded at truncation")
            return
    elif os.path.getsize(log) <= rules.MAX_ACCURACY_LOG_BYTES and (entry.get("full_accuracy_logs") or {}).get(rel_log):
        report.add(ERROR, txt, f"cannot be checked: the full accuracy log {backup} is gone (truncate_results keeps "
                               "it; restore it or stage again)")
        return
    for problem in accuracy_problems(txt, full, labels):
        report.add(ERROR, txt, problem)


def _map_labels(report: Report, scenario_entry: dict, where: str):
    """The labels of the val map the accuracy run used (recorded at staging), checked against its md5."""
    path = scenario_entry.get("accuracy_map")
    want = (scenario_entry.get("fingerprint") or {}).get("dataset_map_md5")
    if not path:
        return None
    try:
        image_map = read_map(path)
    except (HarnessError, OSError) as e:
        report.add(ERROR, where, f"cannot recompute the top-1: the val map {path} recorded at staging cannot be "
                                 f"read ({e}); check on a machine that has it")
        return None
    if want and image_map.md5 != want:
        report.add(ERROR, where, f"cannot recompute the top-1: the val map {path} changed since the run (md5 "
                                 f"{image_map.md5}, the run's {want})")
        return None
    return image_map.labels


def _verdict(path: str) -> Optional[bool]:
    try:
        lines = [line.strip() for line in open(path)]
    except OSError:
        return None
    if "TEST PASS" in lines:
        return True
    return False if any(line.startswith("TEST FAIL") for line in lines) else None


def check_scenario(report: Report, base: str, r: rules.Round, system: str, scenario: str, division: str,
                   entry: dict) -> None:
    report.results += 1
    sdir = os.path.join(base, rules.scenario_dir(r, system, scenario))
    _check_measurements(report, base, r, system, scenario)
    perf = _check_perf_log(report, os.path.join(sdir, "performance", "run_1", "mlperf_log_detail.txt"), scenario,
                           division, r)
    _need(report, os.path.join(sdir, "performance", "run_1", "mlperf_log_summary.txt"))

    adir = os.path.join(sdir, "accuracy")
    top1, acc_entries = _check_accuracy_folder(report, adir, rules.ACCURACY_FILES, entry)
    labels = _map_labels(report, (entry.get("scenarios") or {}).get(scenario) or {}, os.path.join(adir, "accuracy.txt"))
    _cross_check_accuracy(report, adir, entry, labels)
    _check_accuracy_run(report, adir, scenario, division, entry, top1)

    cdir = os.path.join(base, rules.compliance_dir(r, system, scenario))
    for name in r.audit_tests:
        _check_audit_test(report, os.path.join(cdir, name), name, r, scenario, division, entry, perf, labels,
                          acc_entries)


def _check_measurements(report: Report, base: str, r: rules.Round, system: str, scenario: str) -> None:
    """The measurements folder's files, and the fields measurements.json must fill."""
    mdir = os.path.join(base, rules.measurements_dir(r, system, scenario))
    for name in rules.SCENARIO_FILES:
        _need(report, os.path.join(mdir, name))
    mpath = os.path.join(base, rules.measurements_json(r, system, scenario))
    if _need(report, mpath):
        m = read_json(mpath, missing=None, invalid=None, expect=dict)
        if m is None:
            report.add(ERROR, mpath, "not a JSON object")
        else:
            for field in rules.MEASUREMENTS_REQUIRED_FIELDS:
                if not m.get(field):
                    report.add(ERROR, mpath, f"field {field!r} is missing or empty")


def _check_accuracy_run(report: Report, adir: str, scenario: str, division: str, entry: dict,
                        top1: Optional[float]) -> None:
    """The accuracy run's detail log: an AccuracyOnly run of this scenario without LoadGen errors, whose top-1
    meets the rules."""
    acc_path = os.path.join(adir, "mlperf_log_detail.txt")
    acc = read_detail(acc_path) if os.path.exists(acc_path) else None
    if acc is None:
        return
    _cross_check_summary(report, acc_path, acc)
    if not acc.ok:
        report.add(ERROR, acc_path, acc.problem)
    if acc.get("effective_test_mode") != TestMode.ACCURACY:
        report.add(ERROR, acc_path, f"test mode {acc.get('effective_test_mode')}, expected AccuracyOnly")
    if acc.scenario != scenario:
        report.add(ERROR, acc_path, f"LoadGen ran {acc.scenario}, but it is filed under {scenario}")
    for e in acc.errors:
        report.add(ERROR, acc_path, f"LoadGen error: {e}")
    model = ((entry.get("scenarios") or {}).get(scenario, {}).get("fingerprint") or {}).get("model")
    for problem in rules.accuracy_rule_problems(acc, top1, model, division):
        report.add(RULE, os.path.join(adir, "accuracy.txt"), problem)


def _check_audit_test(report: Report, tdir: str, name: str, r: rules.Round, scenario: str, division: str,
                      entry: dict, perf, labels, acc_entries) -> None:
    """One compliance test's folder: its performance log against the scenario's (`perf`), its verdicts, and for
    TEST01 its logged responses against the accuracy run's."""
    test = rules.AUDIT_TESTS[name]
    if not os.path.isdir(tdir):
        if division == "closed":
            report.add(ERROR, tdir, f"missing: the closed division requires {name} (make run_audit_harness, "
                                    "then make update_results)")
        return
    got = _check_perf_log(report, os.path.join(tdir, "performance", "run_1", "mlperf_log_detail.txt"), scenario,
                          division, r, audit=name)
    _need(report, os.path.join(tdir, "performance", "run_1", "mlperf_log_summary.txt"))
    vpath = os.path.join(tdir, "verify_performance.txt")
    said = _verdict(vpath) if _need(report, vpath) else None
    if os.path.exists(vpath) and said is None:
        report.add(ERROR, vpath, "no TEST PASS / TEST FAIL verdict")
    if perf is not None and got is not None:
        _check_audit_performance(report, tdir, vpath, test, perf, got, said)
    if test.compares_accuracy:
        _check_audit_accuracy(report, tdir, entry, labels, acc_entries)


def _check_audit_performance(report: Report, tdir: str, vpath: str, test, perf, got, said: Optional[bool]) -> None:
    why = audit_applied(test, got, perf)
    if why:
        report.add(ERROR, tdir, why)
    passed, lines, numbers = compare_performance(test, perf, got)
    if said is not None and said != passed:
        report.add(ERROR, vpath, f"says TEST {'PASS' if said else 'FAIL'}, but the staged logs give "
                                 f"{lines[-1]}")
    if not passed:
        report.add(RULE, vpath, f"performance verification fails: {lines[-1]} (test/reference "
                                f"{numbers.get('ratio', float('nan')):.3f}; "
                                f"{rules.describe_rule(numbers.get('rule'), numbers.get('tolerance'))})")


def _check_audit_accuracy(report: Report, tdir: str, entry: dict, labels, acc_entries) -> None:
    apath = os.path.join(tdir, "verify_accuracy.txt")
    if _need(report, apath):
        verdict = _verdict(apath)
        if verdict is not True:
            report.add(ERROR, apath, "the logged responses do not match the accuracy run (no TEST PASS)")
    _, test_entries = _check_accuracy_folder(report, os.path.join(tdir, "accuracy"),
                                             rules.TEST01_ACCURACY_FILES, entry)
    _cross_check_accuracy(report, os.path.join(tdir, "accuracy"), entry, labels)
    if test_entries is not None and acc_entries is not None:
        cmp = compare_responses(acc_entries, test_entries)
        if not cmp["passed"]:
            report.add(ERROR, apath, f"the staged logs disagree: {cmp['mismatched']} response(s) differ, "
                                     f"{cmp['missing_in_accuracy_run']} missing from the accuracy run")


def check_tree(results_dir: str, round_name: Optional[str] = None) -> Report:
    report = Report(results_dir)
    if not os.path.isdir(results_dir):
        raise HarnessError(f"No staged tree at {results_dir}; run `make update_results` first.")
    record = read_json(record_path(results_dir), missing=None, invalid=None, expect=dict)
    if record is None:
        report.add(ERROR, record_path(results_dir), "missing: this tree was not staged by this harness (make "
                                                    "update_results)")
        record = {}
    for name in root_extras(results_dir):
        why = (f"belongs in {records_dir(results_dir)} (staged by an older harness: make update_results moves it)"
               if name in LEGACY_ROOT_FILES else "not part of a submission")
        report.add(ERROR, name, f"at the submission root, where MLCommons' checker expects only closed/, open/ "
                                f"(and network/): {why}")
    r = rules.get_round(round_name or record.get("round"), for_staging=True)
    _check_layout(report, results_dir, r, record)
    if round_name and record.get("round") and record["round"] != round_name:
        report.add(ERROR, RECORD, f"the tree was staged for {record['round']}, checked as {round_name}")
    entries = record.get("systems", {})
    seen = set()
    divisions = [d for d in sorted(os.listdir(results_dir)) if d in DIVISION_DIRS]
    if not divisions:
        report.add(ERROR, ".", "no closed/ or open/ folder")
    for division in divisions:
        if division == "network":
            report.add(ERROR, division, "the network division is not supported by this harness")
            continue
        for submitter in sorted(os.listdir(os.path.join(results_dir, division))):
            base = os.path.join(results_dir, division, submitter)
            if os.path.isdir(base):
                _check_submitter(report, base, r, division, submitter, entries, seen)
    for key in entries:
        if key not in seen:
            report.add(ERROR, key, "in staging_record.json but not in the tree (removed or renamed?)")
    if os.path.exists(os.path.join(records_dir(results_dir), DRY_RUN_MARKER)) and not any(e.get("dry_run") for e in
                                                                             entries.values()):
        report.add(NOT_READY, DRY_RUN_MARKER, "dry-run marker present")
    return report


def _check_layout(report: Report, results_dir: str, r: rules.Round, record: dict) -> None:
    """Links, stray entries, the code folder against its staged hashes, runs of another machine or staged twice."""
    problems = layout.symlinks(results_dir) + layout.shared_runs(record.get("systems") or {})
    for division in (d for d in DIVISION_DIRS[:2] if os.path.isdir(os.path.join(results_dir, d))):
        problems += layout.stray_entries(results_dir, division, r.code_dir, r.layout == "v6")
    for prefix, hashes in (record.get("code") or {}).items():
        problems += layout.code_problems(results_dir, os.path.join(results_dir, prefix), r.code_dir, hashes)
    for key, entry in (record.get("systems") or {}).items():
        for scenario, staged in (entry.get("scenarios") or {}).items():
            problem = layout.machine_problem(staged.get("detected_system"), key.split("/")[-1], f"{key} {scenario}")
            if problem:
                problems.append((key, problem))
    for path, problem in problems:
        report.add(ERROR, path, problem)


def _check_submitter(report: Report, base: str, r: rules.Round, division: str, submitter: str, entries: dict,
                     seen: set) -> None:
    """One <division>/<submitter>/ folder: its code folder, its results and system descriptions, and every system
    (the keys found go into `seen`)."""
    if not os.path.isdir(os.path.join(base, r.code_dir)):
        report.add(ERROR, os.path.join(base, r.code_dir), f"missing: {r.name} wants the code in {r.code_dir}/")
    results = os.path.join(base, "results")
    with_results = sorted(d for d in os.listdir(results) if os.path.isdir(os.path.join(results, d))) \
        if os.path.isdir(results) else []
    if not with_results:
        report.add(ERROR, results, "no results")
    described = sorted(f[:-5] for f in os.listdir(os.path.join(base, "systems")) if f.endswith(".json")) \
        if os.path.isdir(os.path.join(base, "systems")) else []
    for system in described:
        if system not in with_results:
            report.add(ERROR, os.path.join(base, "systems", f"{system}.json"),
                       f"describes a system with no results/{system} (mismatched system name?)")
    for system in with_results:
        key = f"{division}/{submitter}/{system}"
        seen.add(key)
        entry = entries.get(key)
        if entry is None:
            report.add(ERROR, os.path.join(results, system),
                       "not in staging_record.json: not staged by this harness, or renamed afterwards "
                       "(mismatched system name?)")
            entry = {}
        desc = check_system_json(report, os.path.join(base, "systems", f"{system}.json"), division,
                                 submitter)
        category = (desc or {}).get("system_type") or entry.get("category") or "edge"
        if category == "edge,datacenter":
            category = "datacenter,edge"
        check_system(report, base, r, system, division, category, entry)
        if entry.get("dry_run"):
            report.add(NOT_READY, DRY_RUN_MARKER, f"{key} was staged with --dry_run: not a submission "
                                                  f"({len(entry.get('dry_run_exceptions', []))} rule "
                                                  "exception(s) recorded)")


def check_system(report: Report, base: str, r: rules.Round, system: str, division: str, category: str,
                 entry: dict) -> None:
    bench_root = os.path.join(base, "results", system)
    for bench in sorted(os.listdir(bench_root)):
        if bench != rules.BENCHMARK_DIR:
            report.add(ERROR, os.path.join(bench_root, bench), "unknown benchmark (this harness stages resnet50)")
    bench_dir = os.path.join(bench_root, rules.BENCHMARK_DIR)
    staged = sorted(os.listdir(bench_dir)) if os.path.isdir(bench_dir) else []
    try:
        required = rules.required_scenarios(r, category)
    except HarnessError as e:
        report.add(ERROR, bench_dir, str(e))
        required = ()
    for scenario in staged:
        if scenario not in rules.SCENARIO_ORDER:
            report.add(ERROR, os.path.join(bench_dir, scenario), "unknown scenario")
        elif required and scenario not in required:
            report.add(ERROR, os.path.join(bench_dir, scenario), f"not a {category} scenario of ResNet50 in {r.name}")
        elif scenario not in (entry.get("scenarios") or {}) and entry:
            report.add(ERROR, os.path.join(bench_dir, scenario), "not in staging_record.json")
        else:
            check_scenario(report, base, r, system, scenario, division, entry)
    if division == "closed":
        for scenario in required:
            if scenario not in staged:
                report.add(ERROR, os.path.join(bench_dir, scenario), f"missing: the {category} category requires "
                                                                     f"{', '.join(required)}")
    files = entry.get("files") or {}
    for rel, digest in files.items():
        path = os.path.join(report.results_dir, rel)
        if not os.path.exists(path):
            report.add(ERROR, rel, "missing (it was staged)")
        elif file_digest(path, "sha256") != digest:
            report.add(ERROR, rel, "changed since it was staged (sha256 differs from staging_record.json)")
    if files:
        for folder in system_paths(base, r, system):
            walk = [(os.path.dirname(folder), [], [os.path.basename(folder)])] if os.path.isfile(folder) else \
                os.walk(folder)
            for root, _, names in walk:
                for name in names:
                    rel = os.path.relpath(os.path.join(root, name), report.results_dir)
                    if rel not in files:
                        report.add(ERROR, rel, "not staged by this harness (added afterwards)")


def check_submission(args: Command, argv: list[str]) -> int:
    results_dir = default_results_dir(args)
    report = check_tree(results_dir, args.round)
    structure_only = bool(args.structure_only)
    print(f"check_submission: {results_dir} ({report.results} result(s); "
          f"{'structure only' if structure_only else 'full check'})")
    order = {ERROR: 0, RULE: 1, NOT_READY: 2}
    for kind, path, message in sorted(report.lines, key=lambda x: order[x[0]]):
        label = kind if (kind == ERROR or not structure_only) else f"note ({kind.lower()})"
        print(f"{label:<10} {path}: {message}")
    failed = report.failed(structure_only)
    print(f"Project check: {'FAIL' if failed else 'PASS'} ({report.count(ERROR)} structural, {report.count(RULE)} "
          f"rule, {report.count(NOT_READY)} not-ready problem(s))")
    if structure_only:
        print("official checker: skipped (--structure_only; short runs fail the official rules by design)")
        return 1 if failed else 0
    repo = os.path.abspath(args.inference_repo or INFERENCE_REPO_DIR)
    record = read_json(record_path(results_dir), missing=None, invalid=None, expect=dict) or {}
    verdict = official.run_official(results_dir, repo, rules.get_round(args.round or record.get("round")).name)
    print("\n".join(official.describe(verdict, repo)))   # harness/submission/official.py
    print(f"Verdicts: project {'FAIL' if failed else 'PASS'}, official "
          + ("not run" if verdict.returncode is None else "PASS" if verdict.passed else
             "FAIL (short-run errors only)" if verdict.only_short_run else "FAIL"))
    return 1 if failed or (verdict.returncode not in (None, 0)) else 0
