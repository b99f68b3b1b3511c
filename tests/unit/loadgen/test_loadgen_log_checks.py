"""check_logs_complete (loadgen/run.py): LoadGen's logs after it returned, written by hand here (issue 19)."""
import json

import pytest

from harness.core.errors import HarnessError
from harness.loadgen.run import check_logs_complete


def _entry(key, value):
    return ":::MLLOG " + json.dumps({"key": key, "value": value, "metadata": {}}) + "\n"


def _logs(folder, summary="Result is : VALID\n", detail=None):
    detail = _entry("effective_scenario", "Offline") + _entry("result_validity", "VALID") if detail is None else detail
    (folder / "mlperf_log_summary.txt").write_text(summary)
    (folder / "mlperf_log_detail.txt").write_text(detail)


def test_complete_logs_pass(tmp_path):
    _logs(tmp_path)
    check_logs_complete("Offline", "PerformanceOnly", str(tmp_path))


@pytest.mark.parametrize("summary,detail,needle", [
    ("", None, "mlperf_log_summary.txt is empty (0 bytes)"),
    ("x\n", _entry("result_validity", "VALID") + ':::MLLOG {"key": "resu', "mlperf_log_detail.txt is cut short"),
    ("x\n", _entry("effective_scenario", "Offline"), "mlperf_log_detail.txt has no result (the run did not finish)"),
])
def test_cut_or_empty_logs_fail_the_run(tmp_path, summary, detail, needle):
    _logs(tmp_path, summary, detail)
    with pytest.raises(HarnessError, match="LoadGen's logs in .* are incomplete") as e:
        check_logs_complete("Offline", "PerformanceOnly", str(tmp_path))
    assert needle in str(e.value) and "free space (or pass another --log_dir)" in str(e.value)


def test_missing_logs_and_a_cut_accuracy_log(tmp_path):
    with pytest.raises(HarnessError, match="mlperf_log_summary.txt is missing; mlperf_log_detail.txt is missing"):
        check_logs_complete("Server", "PerformanceOnly", str(tmp_path))
    _logs(tmp_path)
    (tmp_path / "mlperf_log_accuracy.json").write_text('[\n{"seq_id": 0, "qsl_idx": 3, "da')
    with pytest.raises(HarnessError, match="mlperf_log_accuracy.json is not a complete accuracy log"):
        check_logs_complete("Offline", "AccuracyOnly", str(tmp_path))
