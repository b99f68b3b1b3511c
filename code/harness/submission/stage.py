"""update_results: the newest valid runs of one system, copied into the round's submission layout.

    <results_dir>/<division>/<submitter>/systems/<system>.json
    <results_dir>/<division>/<submitter>/src/                    (code/ before v6.0): this harness
    <results_dir>/<division>/<submitter>/results/<system>/resnet50/<Scenario>/
        README.md, user.conf, measurements.json                  (v5.x: measurements/<system>/... instead)
        performance/run_1/mlperf_log_{detail,summary}.txt
        accuracy/mlperf_log_{detail,summary}.txt, mlperf_log_accuracy.json, accuracy.txt
        TEST01/verify_{accuracy,performance}.txt, accuracy/..., performance/run_1/...   (v5.x: compliance/...)
        TEST04/verify_performance.txt, performance/run_1/...
    <results_dir>.records/staging_record.json   which runs were staged, their fingerprints, the sha256 of every
                                                file (outside the submission root: submission/integrity.py)
    <results_dir>.records/DRY_RUN.txt           only for --dry_run trees (also in <division>/<submitter>/)

Refused, with the reason: no run or a half-finished run of a kind that is needed; INVALID runs; LoadGen errors;
a run filed under another system than its own; performance, accuracy and audit runs of a scenario that come from
different engines or configs; audit runs verified against other runs than those being staged, or whose responses
did not match. Runs whose settings do not meet the round's rules (duration, query counts, performance sample
count, seeds, latency bound, dataset size, accuracy target, reference model in the closed division) and audit
performance comparisons outside tolerance are refused too, unless --dry_run: then they are staged, each reason is
recorded in DRY_RUN.txt and staging_record.json, and check_submission fails the tree as a submission.
"""
from __future__ import annotations

import datetime
import os
import shutil
from typing import Any, Optional

from harness.config.command import Command
from harness.core.paths import REPO_ROOT, BENCHMARK, SUBMISSION_DIR
from harness.core.errors import HarnessError
from harness.config.context import system_id
from harness.config.scenarios import get as get_scenario
from harness.submission import layout, rules, system_desc
from harness.submission.integrity import RECORD  # noqa: F401  (check.py imports it from here)
from harness.core.names import check_safe_name, make_command
from harness.submission.integrity import (
    move_legacy_files,
    record_path as staging_record_path,
    records_dir,
)
from harness.submission.audit import default_log_dir
from harness.submission.logs import read_accuracy_txt, write_json
from harness.submission.reproduce import recorded_words, reproduce_lines
from harness.submission.runs import Run, discover, newest, systems_with_runs
from harness.artifacts.fingerprints import fingerprint_differences
from resnet50.models import MODELS
from harness.core.storage import file_digest, folder_lock, read_json

DRY_RUN_MARKER = "DRY_RUN.txt"
HARNESS_FILES = ("code", "configs", "Makefile", "README.md", "FAQ.md", "command_flags.md", "calibration.md",
                 "requirements.txt")


def default_results_dir(args: Command) -> str:
    return os.path.abspath(args.results_dir or SUBMISSION_DIR)


def _given(argv: list[str], name: str) -> bool:
    return any(w == f"--{name}" or w.startswith(f"--{name}=") for w in argv)


class Plan:
    """What one scenario would stage, and what stops it."""

    def __init__(self, scenario: str):
        self.scenario = scenario
        self.runs: dict[str, Run] = {}
        self.refusals: list[str] = []
        self.rule_problems: list[str] = []
        self.notes: list[str] = []


def plan_scenario(runs: list[Run], system: str, scenario: str, r: rules.Round, division: str,
                  log_dir: str) -> Plan:
    plan = Plan(scenario)
    refuse, rule = plan.refusals.append, plan.rule_problems.append
    for kind, mode in (("performance", "PerformanceOnly"), ("accuracy", "AccuracyOnly")):
        run = newest(runs, system, scenario, kind)
        if run is None:
            refuse(f"{scenario}: missing {kind} run: no {mode} run of system {system!r} under {log_dir}; run `make "
                   f"run_harness RUN_ARGS=\"--system_name={system} --scenarios={scenario} --test_mode={mode} ...\"`")
            continue
        if not run.usable:
            refuse(f"{scenario}: the newest {kind} run {run.label} is refused: " + "; ".join(run.problems))
            continue
        plan.runs[kind] = run
    perf, acc = plan.runs.get("performance"), plan.runs.get("accuracy")
    if perf and acc:
        diffs = fingerprint_differences(perf.fingerprint, acc.fingerprint)
        if diffs:
            refuse(f"{scenario}: the performance run {perf.label} and the accuracy run {acc.label} come from a "
                   f"different engine or config: {'; '.join(diffs)}")
    if perf:
        for problem in rules.performance_rule_problems(perf.detail, scenario, division, r):
            rule(f"{scenario} performance run {perf.label}: {problem}")
    if acc:
        top1, _ = read_accuracy_txt(acc.path("accuracy.txt"))
        for problem in rules.accuracy_rule_problems(acc.detail, top1, (acc.fingerprint or {}).get("model"), division):
            rule(f"{scenario} accuracy run {acc.label}: {problem}")

    required = division == "closed"
    for test in r.audit_tests:
        run = newest(runs, system, scenario, test)
        problems: list[str] = []
        if run is None:
            problems.append(f"no {test} audit run of system {system!r} under {log_dir}; run `make run_audit_harness "
                            f"RUN_ARGS=\"--system_name={system} --scenarios={scenario} ...\"`")
        elif not run.usable:
            problems.append(f"the newest {test} audit run {run.label} is refused: " + "; ".join(run.problems))
        else:
            problems += _audit_problems(run, test, perf, acc, plan)
        if problems:
            if required:
                for p in problems:
                    refuse(f"{scenario} {test}: {p}")
            else:
                plan.notes.append(f"{scenario} {test}: not staged (optional in the open division): {problems[0]}")
            continue
        plan.runs[test] = run
        for problem in rules.performance_rule_problems(run.detail, scenario, division, r, audit=test):
            rule(f"{scenario} {test} run {run.label}: {problem}")
    return plan


def _audit_problems(run: Run, test: str, perf: Optional[Run], acc: Optional[Run], plan: Plan) -> list[str]:
    v = read_json(run.path("verification.json"), missing=None, expect=dict) or {}
    problems = []
    if v.get("fingerprint_differences"):
        problems.append("it ran a different engine or config than its reference runs: "
                        + "; ".join(v["fingerprint_differences"]))
    ref = v.get("reference") or {}
    if perf and (ref.get("performance") or {}).get("detail_sha256") != file_digest(
            perf.path("mlperf_log_detail.txt"), "sha256"):
        problems.append(f"it was verified against another performance run ({(ref.get('performance') or {}).get('dir')})"
                        f" than the one being staged ({perf.label}); run `make run_audit_harness` again")
    if rules.AUDIT_TESTS[test].compares_accuracy:
        if acc and (ref.get("accuracy") or {}).get("accuracy_log_sha256") != file_digest(
                acc.path("mlperf_log_accuracy.json"), "sha256"):
            problems.append(f"it was verified against another accuracy run ({(ref.get('accuracy') or {}).get('dir')}) "
                            f"than the one being staged ({acc.label}); run `make run_audit_harness` again")
        if not (v.get("accuracy") or {}).get("passed"):
            problems.append("its responses do not match the accuracy run's (verify_accuracy.txt: TEST FAIL)")
    if not problems and not (v.get("performance") or {}).get("passed"):
        perf_v = v.get("performance") or {}
        plan.rule_problems.append(
            f"{plan.scenario} {test} run {run.label}: performance verification failed (test/reference "
            f"{perf_v.get('ratio', float('nan')):.3f}; {rules.describe_rule(perf_v.get('rule'), perf_v.get('tolerance'))}"
            "); short runs are too noisy to compare, a real submission must pass")
    return problems


# ---------------------------------------------------------------------------------------------------------------
# Writing the tree
def _copy(src: str, dst: str) -> None:
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    shutil.copyfile(src, dst)


def _make_command(command: Optional[str], action: Optional[str] = None) -> str:
    """`code/main.py --action=X args` as `make X RUN_ARGS="args"` (or as another action with the same args),
    shell-quoted (core/names.py make_command)."""
    words = recorded_words(command)
    if len(words) >= 2 and words[0].endswith("main.py") and words[1].startswith("--action="):
        rest = [w for w in words[2:] if not (action and w.startswith("--test_mode="))]
        return make_command(action or words[1].split("=", 1)[1], rest).replace("|", "\\|")
    return " ".join((command or "(not recorded)").split()).replace("`", "'").replace("|", "\\|")


def _measurements(perf: Run) -> dict[str, Any]:
    fp = perf.fingerprint or {}
    spec = MODELS.get(fp.get("model"))
    precision = fp.get("precision") or "fp32"
    settings = (perf.summary or {}).get("settings") or {}
    transform = {"fp32": "none", "fp16": "cast to FP16", "bf16": "cast to BF16",
                 "int8": "post-training quantization to INT8 (Q/DQ), calibrated on data_maps/imagenet/cal_map.txt"}
    return {
        "input_data_types": settings.get("input_dtype") or "fp32",
        "retraining": "no",
        "starting_weights_filename": spec.file_name if spec else str(fp.get("model")),
        "weight_data_types": precision,
        "weight_transformations": transform.get(precision, precision),
    }


def _readme(r: rules.Round, system: str, plan: Plan) -> str:
    perf = plan.runs["performance"]
    fp = perf.fingerprint or {}
    metric = perf.detail.metric()
    shown = get_scenario(plan.scenario).shown(metric) if metric else f"{metric}"
    lines = [f"# {BENCHMARK} {plan.scenario} on {system}", "",
             f"Staged by `make update_results` (MLPerf Inference {r.name} layout) from these runs of this harness:", "",
             "| run | log folder | command |", "| --- | --- | --- |"]
    for kind, run in plan.runs.items():
        lines.append(f"| {kind} | `{run.label}` | `{_make_command((run.summary or {}).get('command'))}` |")
    lines += ["", f"Model `{fp.get('model')}`, backend `{fp.get('backend')}`, precision `{fp.get('precision')}`, "
                  f"batch size {fp.get('batch_size')}, engine `{fp.get('engine')}`.",
              f"Result: {rules.RESULT_KEY[plan.scenario]} = {shown} ({perf.detail.get('result_validity')}).", ""]
    lines += reproduce_lines(plan.runs, r.code_dir)   # every make target in order (reproduce.py)
    return "\n".join(lines)


def write_scenario(base: str, r: rules.Round, system: str, plan: Plan) -> None:
    perf, acc = plan.runs["performance"], plan.runs["accuracy"]
    sdir = os.path.join(base, rules.scenario_dir(r, system, plan.scenario))
    for name in rules.PERFORMANCE_FILES:
        _copy(perf.path(name), os.path.join(sdir, "performance", "run_1", name))
    for name in rules.ACCURACY_FILES:
        _copy(acc.path(name), os.path.join(sdir, "accuracy", name))
    mdir = os.path.join(base, rules.measurements_dir(r, system, plan.scenario))
    _copy(perf.path("user.conf"), os.path.join(mdir, "user.conf"))
    os.makedirs(mdir, exist_ok=True)
    with open(os.path.join(mdir, "README.md"), "w") as f:
        f.write(_readme(r, system, plan))
    write_json(os.path.join(base, rules.measurements_json(r, system, plan.scenario)), _measurements(perf))
    cdir = os.path.join(base, rules.compliance_dir(r, system, plan.scenario))
    for test, run in plan.runs.items():
        if test not in rules.AUDIT_TESTS:
            continue
        tdir = os.path.join(cdir, test)
        for name in rules.PERFORMANCE_FILES:
            _copy(run.path(name), os.path.join(tdir, "performance", "run_1", name))
        _copy(run.path("verify_performance.txt"), os.path.join(tdir, "verify_performance.txt"))
        if rules.AUDIT_TESTS[test].compares_accuracy:
            _copy(run.path("verify_accuracy.txt"), os.path.join(tdir, "verify_accuracy.txt"))
            for name in rules.TEST01_ACCURACY_FILES:
                _copy(run.path(name), os.path.join(tdir, "accuracy", name))


def _copy_harness(dst: str) -> None:
    if os.path.exists(dst):
        shutil.rmtree(dst)
    os.makedirs(dst)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in HARNESS_FILES:
        src = os.path.join(REPO_ROOT, name)
        if os.path.isdir(src):
            shutil.copytree(src, os.path.join(dst, name), ignore=ignore)
        elif os.path.exists(src):
            shutil.copyfile(src, os.path.join(dst, name))


def system_paths(base: str, r: rules.Round, system: str) -> list[str]:
    """The staged folders and files that belong to one system (besides src/)."""
    paths = [os.path.join(base, "results", system), os.path.join(base, "systems", f"{system}.json")]
    if r.layout != "v6":
        paths += [os.path.join(base, "compliance", system), os.path.join(base, "measurements", system)]
    return paths


def hash_tree(results_dir: str, paths: list[str]) -> dict[str, str]:
    out = {}
    for path in paths:
        if os.path.isfile(path):
            out[os.path.relpath(path, results_dir)] = file_digest(path, "sha256")
        for folder, _, files in os.walk(path):
            for name in files:
                full = os.path.join(folder, name)
                out[os.path.relpath(full, results_dir)] = file_digest(full, "sha256")
    return dict(sorted(out.items()))


def write_markers(results_dir: str, record: dict) -> None:
    """DRY_RUN.txt at the root and in each <division>/<submitter>/ holding a dry-run system; removed otherwise."""
    by_base: dict[str, list[str]] = {}
    for key, entry in record.get("systems", {}).items():
        division, submitter, system = key.split("/")
        base = os.path.join(division, submitter)
        by_base.setdefault(base, [])
        if entry.get("dry_run"):
            by_base[base] += [f"{system}: {e}" for e in entry.get("dry_run_exceptions", [])] or [f"{system}: dry run"]
    everything = [line for lines in by_base.values() for line in lines]
    header = ("DRY RUN: staged with --dry_run. This tree is NOT a valid MLPerf submission; check_submission fails it.\n"
              "Rules these runs do not meet:\n")
    for base, lines in list(by_base.items()) + [("", everything)]:
        path = os.path.join(results_dir if base else records_dir(results_dir), base, DRY_RUN_MARKER)
        if lines:
            with open(path, "w") as f:
                f.write(header + "".join(f"- {line}\n" for line in lines))
        elif os.path.exists(path):
            os.remove(path)


def update_results(args: Command, argv: list[str]) -> int:
    """Staging holds `<results_dir>.lock` (a sibling: the tree itself holds only what the checker expects)."""
    results_dir = os.path.abspath(default_results_dir(args)).rstrip(os.sep)
    with folder_lock(results_dir, "update_results", lock_file=results_dir + ".lock"):
        return _update_results(args, argv)


def _update_results(args: Command, argv: list[str]) -> int:
    if args.submitter is not None:
        check_safe_name(args.submitter)
    r = rules.get_round(args.round, for_staging=True)
    system = system_id(args)
    log_dir = default_log_dir(args)
    results_dir = default_results_dir(args)
    division, category = args.division, args.category
    scenarios, missing = _scenarios_to_stage(args, argv, r, category)
    runs = _runs_of(log_dir, system)
    record_path = staging_record_path(results_dir)
    record = _open_record(results_dir, record_path, r)
    plans, rule_problems = _plans(runs, system, scenarios, r, division, log_dir, args.dry_run)
    backends = {(p.runs["performance"].fingerprint or {}).get("backend") for p in plans} - {None}
    desc = system_desc.build(system, args.submitter, division, category, backends)
    base = os.path.join(results_dir, division, desc["submitter"])
    key = f"{division}/{desc['submitter']}/{system}"
    _refuse_mislabelled(plans, system, record, key)
    _write_system(base, r, system, desc, plans)
    record.setdefault("code", {})[f"{division}/{desc['submitter']}"] = layout.hash_folder(
        results_dir, os.path.join(base, r.code_dir))
    record["round"] = r.name
    record.setdefault("systems", {})[key] = {
        "staged_at": datetime.datetime.now().isoformat(timespec="seconds"),
        "log_dir": log_dir, "category": category, "dry_run": bool(args.dry_run),
        "dry_run_exceptions": rule_problems if args.dry_run else [],
        "scenarios": {p.scenario: {"fingerprint": p.runs["performance"].fingerprint,
                                   "runs": {k: run.label for k, run in p.runs.items()},
                                   "detected_system": (p.runs["performance"].summary or {}).get("detected_system"),
                                   # check_submission recomputes accuracy.txt's top-1 from this map
                                   "accuracy_map": ((p.runs["accuracy"].summary or {}).get("dataset") or {}).get("map")}
                      for p in plans},
        "files": hash_tree(results_dir, system_paths(base, r, system)),
        "full_accuracy_logs": {},
    }
    write_json(record_path, record)
    write_markers(results_dir, record)
    _say_staged(args, r, system, base, record_path, results_dir, plans, missing, rule_problems)
    return 0


def _refuse_mislabelled(plans: list, system: str, record: dict, key: str) -> None:
    """Runs of another machine than the system they would be staged as, and runs already staged in this tree under
    another submitter or system, are refused (submission/layout.py)."""
    problems = []
    owned = {d: (k, rel) for k, e in (record.get("systems") or {}).items() if layout._owner(k) != layout._owner(key)
             for d, rel in layout.perf_log_digests(e).items()}
    for p in plans:
        for kind, run in p.runs.items():
            problem = layout.machine_problem((run.summary or {}).get("detected_system"), system,
                                             f"{p.scenario}: the {kind} run {run.label}")
            if problem:
                problems.append(problem)
            digest = file_digest(run.path("mlperf_log_detail.txt"), "sha256")
            if kind == "performance" and digest in owned:
                problems.append(f"{p.scenario}: the performance run {run.label} is already staged as "
                                f"{owned[digest][1]} ({owned[digest][0]}); one run belongs to one submitter and one "
                                "system: stage it once, or into another --results_dir")
    if problems:
        raise HarnessError("update_results refused:\n  " + "\n  ".join(problems))


def _scenarios_to_stage(args: Command, argv: list[str], r: rules.Round, category: str) -> tuple[list, list]:
    """The scenarios to stage (--scenarios, else all the category requires) and those required but left out."""
    allowed = rules.required_scenarios(r, category)
    scenarios = args.scenarios if _given(argv, "scenarios") else list(allowed)
    wrong = [s for s in scenarios if s not in allowed]
    if wrong:
        raise HarnessError(f"{', '.join(wrong)}: not a ResNet50 scenario of the {category} category in {r.name} "
                           f"({', '.join(allowed)}).")
    missing = [s for s in allowed if s not in scenarios]
    return scenarios, missing


def _runs_of(log_dir: str, system: str) -> list:
    """The runs under log_dir, refused when none is of this system (naming the systems that have runs there)."""
    runs = discover(log_dir)
    if not any(run.system == system for run in runs):
        others = systems_with_runs(runs)
        raise HarnessError(f"No runs of system {system!r} under {log_dir}" +
                           (f"; runs there are of: {', '.join(others)} (mismatched system name? pass "
                            f"--system_name)." if others else "; run `make run_harness` first."))
    return runs


def _open_record(results_dir: str, record_path: str, r: rules.Round) -> dict:
    """The tree's staging record (empty for a new tree), after moving an older harness's files out of the root;
    a tree of another round is refused."""
    if os.path.isdir(results_dir):
        moved = move_legacy_files(results_dir)
        if moved:
            print(f"Moved {', '.join(moved)} out of the submission root into {records_dir(results_dir)}.")
    record = read_json(record_path, missing=None, expect=dict) or {}
    if record.get("round") not in (None, r.name):
        raise HarnessError(f"{results_dir} holds a {record['round']} tree; stage {r.name} results into another "
                           "--results_dir.")
    return record


def _plans(runs: list, system: str, scenarios: list, r: rules.Round, division: str, log_dir: str,
           dry_run: bool) -> tuple[list, list]:
    """One plan per scenario and the rule problems of them all; refusals, and rule problems without --dry_run,
    are a HarnessError listing them."""
    plans = [plan_scenario(runs, system, s, r, division, log_dir) for s in scenarios]
    refusals = [x for p in plans for x in p.refusals]
    rule_problems = [x for p in plans for x in p.rule_problems]
    if refusals:
        raise HarnessError("update_results refused:\n  " + "\n  ".join(refusals))
    if rule_problems and not dry_run:
        raise HarnessError("update_results refused: these runs do not meet the " + r.name + " rules:\n  "
                           + "\n  ".join(rule_problems) + "\nRe-run them with the rules' settings (no --fast, "
                           "--min_duration, --min_query_count or other overrides), or pass --dry_run to stage them "
                           "as a dry run that check_submission fails as a submission.")
    return plans, rule_problems


def _write_system(base: str, r: rules.Round, system: str, desc: dict, plans: list) -> None:
    """The system's staged files replaced: its description, the harness's code, and every planned scenario."""
    for path in system_paths(base, r, system):
        if os.path.isdir(path):
            shutil.rmtree(path)
        elif os.path.exists(path):
            os.remove(path)
    write_json(os.path.join(base, "systems", f"{system}.json"), desc)
    _copy_harness(os.path.join(base, r.code_dir))
    for plan in plans:
        write_scenario(base, r, system, plan)


def _say_staged(args: Command, r: rules.Round, system: str, base: str, record_path: str, results_dir: str,
                plans: list, missing: list, rule_problems: list) -> None:
    division, category = args.division, args.category
    print(f"Staged {system} ({r.name}, {division}, {category}) into {base} (record: {record_path}):")
    for p in plans:
        print(f"  {p.scenario:<13} " + ", ".join(f"{k} {run.label}" for k, run in p.runs.items()))
        for note in p.notes:
            print(f"  note: {note}")
    if missing:
        print(f"  note: {category} also requires {', '.join(missing)}; check_submission reports it missing until "
              "it is staged.")
    if args.dry_run:
        print(f"DRY RUN: {len(rule_problems)} rule problem(s) staged anyway, listed in "
              f"{os.path.join(records_dir(results_dir), DRY_RUN_MARKER)}; this tree is not a submission.")
    print("Next: make truncate_results, make summarize_results, make check_submission "
          f"(with RUN_ARGS=\"--results_dir={results_dir}\" if not the default).")
