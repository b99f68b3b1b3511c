"""Compliance (audit) tests: run them through LoadGen, then verify them against the normal runs.

For each scenario and test (TEST01 and TEST04 for ResNet50 since v5.0; TEST05 as well with --audit_version=v4.1):
1. find the reference runs in --log_dir: the newest PerformanceOnly run of that system and scenario (and, for
   TEST01, the newest AccuracyOnly run from the same engine and config, by run fingerprint: audit_policy.py); a
   half-finished or INVALID reference is refused with the reason;
2. run LoadGen with the test's audit.config, which the harness writes into the run directory
   (<run root>/<system>/resnet50/<Scenario>/<TEST0X>/audit.config), passes by path and removes afterwards;
3. verify, writing into the same directory:
   - verify_accuracy.txt (TEST01): every response LoadGen logged during the performance run must be byte-identical
     to the accuracy run's response for the same sample index; plus accuracy.txt / compliance_accuracy.txt (top-1
     of the logged responses) and baseline_accuracy.txt (top-1 of the accuracy run on the same indices);
   - verify_performance.txt: the result against the reference run's: TEST01 within 10%, TEST04 not more than 10%
     faster, TEST05 not more than 5% slower (20% where the reference latency is at most 0.2 ms in SingleStream or
     1.6 ms in MultiStream); both runs must be VALID;
   - verification.json: the numbers, the verdicts, and which reference runs (by file hash) were used.
Each file ends with `TEST PASS` or `TEST FAIL`, as the official verification scripts' outputs do.
TEST04 is tried up to three times when only its performance comparison fails, as NVIDIA's harness does; each try is
printed, failed tries are kept as <TEST04>.try<N>/ and verification.json lists them under "attempts".
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from harness.config.command import Command
from harness.core.paths import BENCHMARK, LOGS_DIR
from harness.core.errors import HarnessError
from harness.core.storage import file_digest, read_json
from harness.core.interrupt import RunInterrupted
from harness.loadgen.logs import DetailLog, read_accuracy_entries, read_detail, response_label, responses_by_index
from harness.loadgen.scenario import ScenarioJob, run_scenario
from harness.config.context import run_configs, system_id
from harness.core.isolation import run_isolated
from harness.config.runconfig import RunConfig
from harness.config.scenarios import get as get_scenario
from harness.submission import audit_policy, rules
from harness.submission.logs import write_json
from harness.submission.runs import Run, discover, newest, systems_with_runs
from harness.artifacts.fingerprints import fingerprint_differences
from resnet50.imagenet import read_map
from harness.core.paths import new_run_root
from harness.report.page import render_after_run


def default_log_dir(args: Command) -> str:
    return os.path.abspath(args.log_dir or LOGS_DIR)


# ---------------------------------------------------------------------------------------------------------------
# Verification (pure functions of the logs; unit-tested without LoadGen)
def _shown(path: str) -> str:
    """A log's path as the verify files show it: from its run root on (no local folders in a submission)."""
    parts = os.path.normpath(path).split(os.sep)
    if BENCHMARK in parts and parts.index(BENCHMARK) >= 2:
        return os.path.join(*parts[parts.index(BENCHMARK) - 2:])
    return os.path.basename(path)


def compare_performance(test: rules.AuditTest, ref: DetailLog, got: DetailLog) -> tuple[bool, list[str], dict]:
    lines = [f"{test.name} performance verification ({test.purpose})",
             f"reference log = {_shown(ref.path)}", f"test log = {_shown(got.path)}"]
    numbers: dict[str, Any] = {}

    def fail(why):
        lines.append(f"TEST FAIL: {why}")
        return False, lines, numbers

    for name, log in (("reference", ref), ("test", got)):
        if not log.ok:
            return fail(f"the {name} mlperf_log_detail.txt {log.problem}")
        if not log.valid:
            return fail(f"the {name} run is {log.get('result_validity')}")
    scenario = ref.scenario
    numbers["scenario"] = scenario
    lines.append(f"scenario = {scenario}")
    if got.scenario != scenario:
        return fail(f"scenarios differ: reference {scenario}, test {got.scenario}")
    sc = get_scenario(scenario)
    if sc.latency_constrained and got.get("effective_target_latency_ns") != ref.get("effective_target_latency_ns"):
        return fail(f"{scenario} target latency differs: reference {ref.get('effective_target_latency_ns')} ns, "
                    f"test {got.get('effective_target_latency_ns')} ns")
    r, t = ref.metric(), got.metric()
    if not r or not t:
        return fail(f"no {rules.RESULT_KEY.get(scenario)} in the logs")
    latency = sc.latency_bound
    tol = rules.result_tolerance(test, scenario, r if latency else None)
    unit = "ns (lower is better)" if latency else "samples/s (higher is better)"
    numbers.update(metric=rules.RESULT_KEY[scenario], reference=r, test=t, ratio=t / r, tolerance=tol,
                   rule=test.performance_rule)
    lines += [f"metric = {rules.RESULT_KEY[scenario]}, {unit}", f"reference score = {r:g}", f"test score = {t:g}",
              f"test / reference = {t / r:.4f}"]
    speedup = (r / t) if latency else (t / r)        # > 1: the test run was faster
    if test.performance_rule == "within":
        lines.append(f"rule = the test result within {tol:.0%} of the reference result")
        passed = (1 - tol) <= t / r <= (1 + tol)
    elif test.performance_rule == "not_faster":
        lines.append(f"rule = the test run not more than {tol:.0%} faster than the reference run")
        passed = speedup < 1 + tol
    else:
        lines.append(f"rule = the test run not more than {tol:.0%} slower than the reference run")
        passed = speedup > 1 - tol
    numbers["passed"] = passed
    lines.append("TEST PASS" if passed else "TEST FAIL: test score outside the tolerance")
    return passed, lines, numbers


def compare_responses(ref_entries: list[dict], test_entries: list[dict]) -> dict[str, Any]:
    ref, repeats, disagree = responses_by_index(ref_entries)
    matched = mismatched = missing = 0
    examples = []
    for entry in test_entries:
        idx, data = int(entry["qsl_idx"]), bytes.fromhex(entry.get("data") or "")
        if idx not in ref:
            missing += 1
        elif ref[idx] != data:
            mismatched += 1
            if len(examples) < 5:
                examples.append(f"sample {idx}: accuracy run {ref[idx].hex()}, performance run {data.hex()}")
        else:
            matched += 1
    passed = matched > 0 and mismatched == 0 and missing == 0 and disagree == 0
    return {"accuracy_log_entries": len(ref_entries), "accuracy_log_repeated_indices": repeats,
            "accuracy_log_inconsistent_repeats": disagree, "test_log_entries": len(test_entries),
            "matched": matched, "mismatched": mismatched, "missing_in_accuracy_run": missing,
            "mismatch_examples": examples, "passed": passed}


def top1(entries: list[dict], labels: np.ndarray, only: Optional[set[int]] = None) -> tuple[int, int]:
    """(correct, samples) over the distinct sample indices (the first response of each), as accuracy scripts count."""
    good = total = 0
    seen: set[int] = set()
    for entry in entries:
        idx = int(entry["qsl_idx"])
        if (only is not None and idx not in only) or idx in seen:
            continue
        seen.add(idx)
        label = response_label(entry["data"])
        good += int(label >= 0 and 0 <= idx < len(labels) and label == int(labels[idx]))
        total += 1
    return good, total


def _accuracy_line(good: int, total: int) -> str:
    return f"accuracy={100.0 * good / max(total, 1):.3f}%, good={good}, total={total}\n"


def audit_applied(test: rules.AuditTest, got: DetailLog, ref: DetailLog) -> Optional[str]:
    """Why the log shows the audit config was not in effect (None when it was)."""
    if test.name == "TEST01" and not got.get("effective_accuracy_log_sampling_target"):
        return "LoadGen logged no accuracy_log_sampling_target: the audit.config was not applied"
    if test.name == "TEST04" and not got.get("effective_performance_issue_same"):
        return "LoadGen did not issue the same sample (performance_issue_same is off): the audit.config was not applied"
    if test.name == "TEST05" and got.get("effective_qsl_rng_seed") == ref.get("effective_qsl_rng_seed"):
        return "the run used the normal seeds: test05 was not applied"
    return None


def verify(test: rules.AuditTest, audit_dir: str, perf: Run, acc: Optional[Run],
           labels: Optional[np.ndarray]) -> dict[str, Any]:
    """Verify one audit run against its references; writes the verify files and verification.json."""
    got = read_detail(os.path.join(audit_dir, "mlperf_log_detail.txt"))
    result: dict[str, Any] = {"test": test.name, "dir": audit_dir, "passed": False, "reasons": []}
    summary = read_json(os.path.join(audit_dir, "summary.json"), missing=None, expect=dict) or {}
    diffs = fingerprint_differences(perf.fingerprint, summary.get("fingerprint"))
    if acc is not None:
        diffs += [f"accuracy run: {d}" for d in fingerprint_differences(acc.fingerprint, summary.get("fingerprint"))]
    result["fingerprint_differences"] = diffs
    result["reference"] = {"performance": {"dir": perf.dir, "detail_sha256": file_digest(perf.path(
        "mlperf_log_detail.txt"), "sha256")}}
    not_applied = audit_applied(test, got, perf.detail)
    ok = _verify_performance(test, audit_dir, perf, got, diffs, not_applied, result)
    if test.compares_accuracy:
        assert acc is not None
        acc_ok = _verify_accuracy(test, audit_dir, acc, labels, diffs, not_applied, result)
        ok = ok and acc_ok
    result["passed"] = ok
    write_json(os.path.join(audit_dir, "verification.json"), result)
    return result


def _verify_performance(test: rules.AuditTest, audit_dir: str, perf: Run, got: DetailLog, diffs: list[str],
                        not_applied: Optional[str], result: dict[str, Any]) -> bool:
    """verify_performance.txt: the audit run's result against the reference's, failed as well when the engine or
    config differs or the audit config was not applied; the numbers and any reason go into `result`."""
    passed, lines, numbers = compare_performance(test, perf.detail, got)
    if diffs:
        lines.insert(-1, "the audit run used a different engine or config than the reference: " + "; ".join(diffs))
        if passed:
            lines[-1] = "TEST FAIL: different engine or config than the reference run"
            passed = False
    if not_applied and passed:
        lines[-1] = f"TEST FAIL: {not_applied}"
        passed = False
    with open(os.path.join(audit_dir, "verify_performance.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    result["performance"] = numbers | {"passed": passed}
    if not passed:
        result["reasons"].append(f"performance: {lines[-1].replace('TEST FAIL: ', '')}")
    return passed


def _verify_accuracy(test: rules.AuditTest, audit_dir: str, acc: Run, labels: Optional[np.ndarray],
                     diffs: list[str], not_applied: Optional[str], result: dict[str, Any]) -> bool:
    """verify_accuracy.txt (TEST01): the responses logged in performance mode against the accuracy run's, and the
    top-1 files when the labels are known; the comparison and any reason go into `result`."""
    ref_log = acc.path("mlperf_log_accuracy.json")
    test_log = os.path.join(audit_dir, "mlperf_log_accuracy.json")
    result["reference"]["accuracy"] = {"dir": acc.dir, "accuracy_log_sha256": file_digest(ref_log, "sha256")}
    lines = [f"{test.name} accuracy verification: responses logged in performance mode against the accuracy run",
             f"reference accuracy log = {_shown(ref_log)}", f"test accuracy log = {_shown(test_log)}"]
    try:
        ref_entries, test_entries = read_accuracy_entries(ref_log), read_accuracy_entries(test_log)
        cmp = compare_responses(ref_entries, test_entries)
        lines += [f"{k} = {v}" for k, v in cmp.items() if k not in ("passed", "mismatch_examples")]
        lines += [f"mismatch: {e}" for e in cmp["mismatch_examples"]]
        acc_ok = cmp["passed"] and not diffs and not not_applied
        if acc_ok:
            lines.append("TEST PASS")
        else:
            why = ("different engine or config than the accuracy run" if diffs else not_applied if not_applied
                   else "no logged responses" if not cmp["matched"] else
                   f"{cmp['mismatched']} response(s) differ, {cmp['missing_in_accuracy_run']} sample(s) missing "
                   "from the accuracy run")
            lines.append(f"TEST FAIL: {why}")
        result["accuracy"] = cmp | {"passed": acc_ok}
        if labels is not None:
            _write_top1(audit_dir, ref_entries, test_entries, labels, result["accuracy"], lines)
    except ValueError as e:
        acc_ok = False
        lines.append(f"TEST FAIL: an accuracy log is {e}")
        result["accuracy"] = {"passed": False}
    with open(os.path.join(audit_dir, "verify_accuracy.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    if not acc_ok:
        result["reasons"].append(f"accuracy: {lines[-1].replace('TEST FAIL: ', '')}")
    return acc_ok


def _write_top1(audit_dir: str, ref_entries: list[dict], test_entries: list[dict], labels: np.ndarray,
                accuracy: dict[str, Any], lines: list[str]) -> None:
    """accuracy.txt / compliance_accuracy.txt (top-1 of the responses logged here) and baseline_accuracy.txt (the
    accuracy run's on the same samples); both figures go into `accuracy` and before the verdict in `lines`."""
    indices = {int(e["qsl_idx"]) for e in test_entries}
    g, n = top1(test_entries, labels)
    bg, bn = top1(ref_entries, labels, indices)
    for name, text in (("accuracy.txt", _accuracy_line(g, n)),
                       ("compliance_accuracy.txt", _accuracy_line(g, n)),
                       ("baseline_accuracy.txt", _accuracy_line(bg, bn))):
        with open(os.path.join(audit_dir, name), "w") as f:
            f.write(text)
    accuracy.update(compliance_top1=100.0 * g / max(n, 1), baseline_top1=100.0 * bg / max(bn, 1))
    lines[-1:-1] = [f"compliance top-1 = {_accuracy_line(g, n).strip()} (distinct samples logged here)",
                    f"baseline top-1 = {_accuracy_line(bg, bn).strip()} (the accuracy run, same samples)"]


# ---------------------------------------------------------------------------------------------------------------
# Running
def references(runs: list[Run], system: str, scenario: str, test: rules.AuditTest,
               log_dir: str) -> tuple[Run, Optional[Run]]:
    """The normal runs an audit test is verified against, or a HarnessError saying why there are none."""
    kinds = ["performance"] + (["accuracy"] if test.compares_accuracy else [])
    found = []
    for kind in kinds:
        run = newest(runs, system, scenario, kind)
        mode = "PerformanceOnly" if kind == "performance" else "AccuracyOnly"
        if kind == "accuracy" and found:   # the accuracy run of the same engine and config (audit_policy.py)
            run, why = audit_policy.accuracy_reference(runs, system, scenario, found[0])
            if run is None and "same engine" in why:
                raise HarnessError(
                    f"{test.name} {scenario}: {why}. Run `make run_harness RUN_ARGS=\"--system_name={system} "
                    f"--scenarios={scenario} --test_mode=AccuracyOnly ...\"` with the performance run's settings.")
        if run is None:
            others = systems_with_runs(runs)
            hint = f" (runs exist there for: {', '.join(others)})" if others and system not in others else ""
            raise HarnessError(
                f"{test.name} {scenario}: no {mode} run of system {system!r} under {log_dir}{hint}; run "
                f"`make run_harness RUN_ARGS=\"--system_name={system} --scenarios={scenario} --test_mode={mode} ...\"`"
                " first.")
        if not run.usable:
            raise HarnessError(f"{test.name} {scenario}: the newest {mode} run {run.label} cannot be the reference: "
                               + "; ".join(run.problems) + ".")
        found.append(run)
    return found[0], (found[1] if len(found) > 1 else None)


def _labels(acc: Optional[Run]) -> Optional[np.ndarray]:
    path = ((acc.summary or {}).get("dataset") or {}).get("map") if acc else None
    if not path or not os.path.exists(path):
        return None
    return read_map(path).labels


@dataclass(frozen=True)
class AuditJob:
    """One compliance test of one scenario: run it, then verify it against its reference runs."""
    rc: RunConfig
    test: rules.AuditTest
    run_root: str
    command: str
    perf: Run
    acc: Optional[Run]


def run_one(job: AuditJob) -> dict[str, Any]:
    rc, test = job.rc, job.test
    run_scenario(ScenarioJob(rc, job.run_root, job.command, audit=test))
    audit_dir = os.path.join(job.run_root, rc.system_id, BENCHMARK, rc.scenario.name, test.name)
    leftover = os.path.join(audit_dir, "audit.config")
    if os.path.exists(leftover):  # run_loadgen removes it; make sure
        os.remove(leftover)
    result = verify(test, audit_dir, job.perf, job.acc, _labels(job.acc))
    for name in ("verify_accuracy.txt", "verify_performance.txt"):
        path = os.path.join(audit_dir, name)
        if os.path.exists(path):
            print(f"---- {os.path.relpath(path, job.run_root)}\n" + open(path).read().rstrip())
    return result


def run_audit_harness(args: Command, argv: Optional[list[str]] = None) -> int:
    version = rules.get_round(args.audit_version or args.round)
    tests = rules.audit_tests_for(version, args.audit_test)
    system = system_id(args)
    rcs = run_configs(args, system)          # every value checked before anything runs
    log_dir = default_log_dir(args)
    runs = discover(log_dir)
    refs = {(rc.scenario.name, t): references(runs, system, rc.scenario.name, rules.AUDIT_TESTS[t], log_dir)
            for rc in rcs for t in tests}
    run_root = new_run_root(log_dir)
    command = "code/main.py " + " ".join(argv if argv is not None else sys.argv[1:])
    jobs = [AuditJob(rc, rules.AUDIT_TESTS[t], run_root, command, *refs[(rc.scenario.name, t)])
            for rc in rcs for t in tests]
    results: dict[tuple[str, str], Optional[dict]] = {}
    for job in jobs:
        key = (job.rc.scenario.name, job.test.name)
        audit_dir = os.path.join(run_root, job.rc.system_id, BENCHMARK, *key)

        def attempt(n: int, job=job) -> Optional[dict]:
            if len(jobs) == 1 and n == 1:
                return run_one(job)
            try:   # one process per run: LoadGen reads its mlperf.conf once per process
                return run_isolated(run_one, job)
            except RunInterrupted:
                raise
            except HarnessError:
                return None

        def keep_failed(n: int, audit_dir=audit_dir) -> str:
            os.replace(audit_dir, f"{audit_dir}.try{n}")
            return os.path.relpath(f"{audit_dir}.try{n}", run_root)

        result = audit_policy.run_with_retries(job.test.name, attempt, keep_failed)
        if result and result.get("attempts"):
            write_json(os.path.join(audit_dir, "verification.json"), result)
        results[key] = result
    print(f"\n======== audit ({version.name} compliance tests) of {BENCHMARK} on {system} ========")
    failed = []
    for (scenario, test), result in results.items():
        if result is None:
            verdict = "ERROR (the run did not finish; see the messages above)"
        else:
            verdict = "TEST PASS" if result["passed"] else "TEST FAIL: " + "; ".join(result["reasons"])
            if len(result.get("attempts") or []) > 1:
                verdict += f" (try {len(result['attempts'])} of {audit_policy.RETRIED_TESTS.get(test, 1)})"
        if not result or not result["passed"]:
            failed.append(f"{test} {scenario}")
        print(f"{test} {scenario:<13} {verdict}")
    print(f"Logs: {run_root}")
    render_after_run(run_root)
    if any(r is None for r in results.values()):
        raise HarnessError(f"Audit run(s) did not finish: {', '.join(failed)}.")
    return 1 if failed else 0
