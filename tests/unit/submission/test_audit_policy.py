"""TEST01's accuracy reference (same engine and config) and TEST04's retries, with fake runs and fake tries."""
import os

import pytest

from harness.core.errors import HarnessError
from harness.submission import audit_policy, rules
from harness.submission.audit import references
from harness.loadgen.logs import DetailLog
from harness.submission.runs import Run

FP32 = {"system_id": "CPU", "model": "resnet50", "model_md5": "m", "backend": "onnxruntime", "precision": "fp32",
        "batch_size": 8, "config_block": "CPU", "config_ver": "default", "engine": "e-fp32", "engine_md5": "a",
        "dataset_map_md5": "d", "dataset_samples": 50000}
INT8 = dict(FP32, precision="int8", engine="e-int8", engine_md5="b")


def _run(root, kind, fingerprint, scenario="Offline"):
    return Run(dir=f"/logs/{root}/CPU/resnet50/{scenario}", log_dir="/logs", root=root, system="CPU",
               scenario=scenario, kind=kind, summary={"fingerprint": fingerprint},
               detail=DetailLog(f"/logs/{root}/mlperf_log_detail.txt"))


def test_test01_uses_the_accuracy_run_of_the_same_engine_not_the_newest():
    perf = _run("2026.01.01-10.00.00", "performance", FP32)
    acc_fp32 = _run("2026.01.01-11.00.00", "accuracy", FP32)
    acc_int8 = _run("2026.01.01-12.00.00", "accuracy", INT8)       # newest, but another engine
    runs = [perf, acc_fp32, acc_int8]
    got, why = audit_policy.accuracy_reference(runs, "CPU", "Offline", perf)
    assert got is acc_fp32 and why == ""
    assert references(runs, "CPU", "Offline", rules.AUDIT_TESTS["TEST01"], "/logs") == (perf, acc_fp32)
    # TEST04 needs no accuracy run
    assert references(runs, "CPU", "Offline", rules.AUDIT_TESTS["TEST04"], "/logs") == (perf, None)


def test_test01_without_a_matching_accuracy_run_says_what_differs():
    perf = _run("2026.01.01-10.00.00", "performance", FP32)
    runs = [perf, _run("2026.01.01-12.00.00", "accuracy", INT8)]
    got, why = audit_policy.accuracy_reference(runs, "CPU", "Offline", perf)
    assert got is None and "precision 'fp32' vs 'int8'" in why and "engine file contents" in why
    with pytest.raises(HarnessError, match="no AccuracyOnly run from the same engine and config"):
        references(runs, "CPU", "Offline", rules.AUDIT_TESTS["TEST01"], "/logs")
    with pytest.raises(HarnessError, match="no AccuracyOnly run of system 'CPU'"):
        references([perf], "CPU", "Offline", rules.AUDIT_TESTS["TEST01"], "/logs")


PERF_FAIL = {"passed": False, "reasons": ["performance: test score outside the tolerance"]}
PASS = {"passed": True, "reasons": []}


def _tries(outcomes, test="TEST04"):
    said, kept, calls = [], [], []

    def attempt(n):
        calls.append(n)
        return None if outcomes[n - 1] is None else dict(outcomes[n - 1])

    def keep(n):
        kept.append(n)
        return f"TEST04.try{n}"
    result = audit_policy.run_with_retries(test, attempt, keep, said.append)
    return result, calls, kept, said


def test_test04_is_tried_again_until_it_passes():
    result, calls, kept, said = _tries([PERF_FAIL, PERF_FAIL, PASS])
    assert calls == [1, 2, 3] and kept == [1, 2] and result["passed"]
    assert [a["passed"] for a in result["attempts"]] == [False, False, True]
    assert result["attempts"][0]["kept_in"] == "TEST04.try1"
    assert said[0] == "TEST04 try 1 of 3: TEST FAIL: performance: test score outside the tolerance"
    assert "trying again" in said[1] and said[-1] == "TEST04 try 3 of 3: TEST PASS"


def test_test04_stops_after_three_tries_and_at_the_first_pass():
    result, calls, kept, _ = _tries([PERF_FAIL] * 3)
    assert calls == [1, 2, 3] and kept == [1, 2] and not result["passed"] and len(result["attempts"]) == 3
    result, calls, kept, _ = _tries([PASS, PERF_FAIL, PERF_FAIL])
    assert calls == [1] and kept == [] and result["attempts"] == [{"attempt": 1, "passed": True, "reasons": []}]


@pytest.mark.parametrize("failure", [
    {"passed": False, "reasons": ["performance: different engine or config than the reference run"],
     "fingerprint_differences": ["precision 'fp32' vs 'int8'"]},
    {"passed": False, "reasons": ["performance: LoadGen did not issue the same sample (performance_issue_same is "
                                  "off): the audit.config was not applied"]},
    None,   # the run did not finish
])
def test_test04_does_not_retry_what_another_try_cannot_fix(failure):
    result, calls, kept, said = _tries([failure, PASS, PASS])
    assert calls == [1] and kept == []
    if failure is None:
        assert result is None and "the run did not finish" in said[0]
    else:
        assert not result["passed"] and len(result["attempts"]) == 1


def test_test01_is_tried_once():
    result, calls, kept, said = _tries([PERF_FAIL, PASS], test="TEST01")
    assert calls == [1] and said == [] and "attempts" not in result


def test_the_report_names_retried_folders(tmp_path):
    from harness.report.read import read_folder
    for name in ("TEST04", "TEST04.try1"):
        folder = tmp_path / "CPU" / "resnet50" / "Offline" / name
        folder.mkdir(parents=True)
        (folder / "summary.json").write_text('{"test_mode": "PerformanceOnly"}')
    assert sorted(r.kind for r in read_folder(str(tmp_path)).runs) == ["TEST04", "TEST04.try1"]
    assert os.path.isdir(tmp_path / "CPU")
