"""harness/submission/summarize.py: one row per staged result and its Markdown table."""
import json
import os

import pytest

from harness.core.errors import HarnessError
from harness.submission import summarize
from harness.submission.integrity import record_path


def _detail(path, **values):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        for key, value in values.items():
            f.write(":::MLLOG " + json.dumps({"key": key, "value": value, "metadata": {}}) + "\n")


def test_no_staged_tree(tmp_path):
    with pytest.raises(HarnessError, match=r"^No staged tree at .* \(staging_record\.json is missing\); run `make "
                                           r"update_results` first\.$"):
        summarize.rows(str(tmp_path / "submission"))


def test_rows_of_a_staged_tree(tmp_path):
    results = str(tmp_path / "submission")
    base = os.path.join(results, "closed", "Org")
    os.makedirs(os.path.dirname(record_path(results)))
    with open(record_path(results), "w") as f:
        json.dump({"round": "v6.1", "systems": {"closed/Org/T4x1": {"dry_run": True, "scenarios": {
            "Offline": {"fingerprint": {"model": "resnet50"}}, "SingleStream": {}}}}}, f)
    os.makedirs(os.path.join(base, "systems"))
    with open(os.path.join(base, "systems", "T4x1.json"), "w") as f:
        json.dump({"system_type": "edge", "system_name": "A T4 box", "framework": "TensorRT 10.8.0"}, f)
    sdir = os.path.join(base, "results", "T4x1", "resnet50")
    _detail(os.path.join(sdir, "Offline", "performance", "run_1", "mlperf_log_detail.txt"),
            effective_scenario="Offline", result_samples_per_second=1234.5678, result_validity="VALID")
    _detail(os.path.join(sdir, "SingleStream", "performance", "run_1", "mlperf_log_detail.txt"),
            effective_scenario="SingleStream", early_stopping_latency_ss=2500000)
    os.makedirs(os.path.join(sdir, "Offline", "accuracy"))
    with open(os.path.join(sdir, "Offline", "accuracy", "accuracy.txt"), "w") as f:
        f.write("accuracy=76.123%, good=1, total=1\n")
    for test, text in (("TEST01", "TEST PASS"), ("TEST04", "TEST FAIL")):
        os.makedirs(os.path.join(sdir, "Offline", test))
        with open(os.path.join(sdir, "Offline", test, "verify_performance.txt"), "w") as f:
            f.write(text + "\n")
    table = summarize.rows(results)
    assert [row["Scenario"] for row in table] == ["SingleStream", "Offline"]
    ss, off = table
    assert off == {"Organization": "Org", "Division": "closed", "SystemType": "edge", "SystemName": "A T4 box",
                   "Platform": "T4x1", "Model": "resnet50", "Scenario": "Offline", "Result": "1234.568",
                   "Units": "Samples/s", "Validity": "VALID", "Accuracy": "acc: 76.123",
                   "Compliance": "TEST01 PASS, TEST04 FAIL (performance)", "DryRun": "yes",
                   "Framework": "TensorRT 10.8.0", "Processor": "", "Accelerator": ""}
    assert ss["Result"] == "2.500" and ss["Units"] == "Latency (ms)" and ss["Validity"] == "missing"
    assert ss["Accuracy"] == "" and ss["Compliance"] == "none" and ss["Model"] == ""
    assert set(off) == set(summarize.COLUMNS)


def test_markdown():
    row = {c: c.lower() for c in summarize.COLUMNS}
    text = summarize.markdown([row], columns=("Platform", "Result"))
    assert text == "| Platform | Result |\n| --- | --- |\n| platform | result |"
    assert summarize.markdown([]).count("\n") == 1
