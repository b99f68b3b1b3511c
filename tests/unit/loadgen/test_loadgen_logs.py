"""harness/loadgen/logs.py: the one reader of LoadGen's detail, summary and accuracy logs."""
import json

import numpy as np
import pytest

from harness.core.errors import HarnessError
from harness.loadgen import logs


def _line(key, value, is_error=False):
    """A line as LoadGen 6.0 writes it to mlperf_log_detail.txt."""
    return ":::MLLOG " + json.dumps({
        "key": key, "value": value, "time_ms": 12.5, "namespace": "mlperf::logging", "event_type": "POINT_IN_TIME",
        "metadata": {"is_error": is_error, "is_warning": False, "file": "loadgen.cc", "line_no": 1, "pid": 7,
                     "tid": 7}}) + "\n"


DETAIL = ("".join([
    _line("effective_scenario", "Offline"), _line("effective_test_mode", "PerformanceOnly"),
    _line("result_samples_per_second", 100.0), _line("result_samples_per_second", 123.5),
    _line("error_invalid_config", "min_query_count too small", is_error=True), "a stray line\n",
    ":::MLLOG {cut", "\n", _line("result_validity", "VALID")]))

SUMMARY = """================================================
MLPerf Results Summary
================================================
SUT name : PySUT
Scenario : Offline
Mode     : PerformanceOnly
Samples per second: 123.5
Result is : VALID
  Min duration satisfied : Yes
* Early stopping 90.0th percentile estimate: 1234
"""


def test_parse_detail_keeps_the_last_value_and_the_errors():
    values, errors = logs.parse_detail(DETAIL.splitlines(keepends=True))
    assert values["result_samples_per_second"] == 123.5 and values["result_validity"] == "VALID"
    assert errors == ["min_query_count too small"]


def test_read_detail(tmp_path):
    path = tmp_path / logs.DETAIL_LOG
    path.write_text(DETAIL)
    log = logs.read_detail(str(path))
    assert log.ok and log.valid and log.scenario == "Offline" and log.metric() == 123.5
    assert log.errors == ["min_query_count too small"] and log.get("missing", 1) == 1


def test_read_detail_says_why_a_log_cannot_be_used(tmp_path):
    assert logs.read_detail(str(tmp_path / "none.txt")).problem == "missing"
    empty = tmp_path / "empty.txt"
    empty.write_text("no entries\n")
    assert logs.read_detail(str(empty)).problem == "holds no LoadGen log entries"
    unfinished = tmp_path / "unfinished.txt"
    unfinished.write_text(_line("effective_scenario", "Server"))
    assert logs.read_detail(str(unfinished)).problem == "has no result (the run did not finish)"
    accuracy = tmp_path / "accuracy.txt"
    accuracy.write_text(_line("effective_test_mode", "AccuracyOnly"))
    assert logs.read_detail(str(accuracy)).ok


@pytest.mark.parametrize("scenario,key", [("Offline", "result_samples_per_second"),
                                          ("Server", "result_completed_samples_per_sec"),
                                          ("SingleStream", "early_stopping_latency_ss"),
                                          ("MultiStream", "early_stopping_latency_ms")])
def test_metric_is_the_checkers_key(scenario, key):
    assert logs.DetailLog("p", {"effective_scenario": scenario, key: 7}).metric() == 7.0
    assert logs.DetailLog("p", {"effective_scenario": scenario}).metric() is None
    assert logs.DetailLog("p", {}).metric() is None


def test_read_detail_log(tmp_path):
    path = tmp_path / logs.DETAIL_LOG
    path.write_text(DETAIL)
    values = logs.read_detail_log(str(path))
    assert values["result_validity"] == "VALID" and values["_errors"] == ["min_query_count too small"]
    with pytest.raises(HarnessError, match="LoadGen wrote no .*none.txt; the run did not finish"):
        logs.read_detail_log(str(tmp_path / "none.txt"))


def test_find_peak_result(tmp_path):
    path = tmp_path / logs.DETAIL_LOG
    path.write_text(_line("generic_message", "FindBoundaries: Lower limit 10, upper limit 20")
                    + _line("generic_message", "FindPeakPerformance: Found peak performance field: 15.5")
                    + _line("effective_test_mode", "FindPeakPerformance"))
    found = logs.find_peak_result(str(path))
    assert found["peak_target_qps"] == 15.5 and len(found["messages"]) == 2
    assert logs.find_peak_result(str(tmp_path / "none.txt")) == {"messages": []}


def test_summary_log(tmp_path):
    shown = logs.parse_summary(SUMMARY)
    assert shown["Scenario"] == "Offline" and shown["Result is"] == "VALID"
    assert shown["Min duration satisfied"] == "Yes" and shown["Early stopping 90.0th percentile estimate"] == "1234"
    path = tmp_path / logs.SUMMARY_LOG
    path.write_text(SUMMARY)
    assert logs.read_summary(str(path)) == shown
    with pytest.raises(OSError):
        logs.read_summary(str(tmp_path / "none.txt"))


def test_accuracy_log(tmp_path):
    def hexed(label):
        return np.array([label], dtype=np.int32).tobytes().hex().upper()
    entries = [{"seq_id": 0, "qsl_idx": 3, "data": hexed(65)}, {"seq_id": 1, "qsl_idx": 3, "data": hexed(66)},
               {"seq_id": 2, "qsl_idx": 5, "data": ""}]
    path = tmp_path / logs.ACCURACY_LOG
    path.write_text(json.dumps(entries))
    assert logs.read_accuracy_entries(str(path)) == entries
    by_index, repeats, disagree = logs.responses_by_index(entries)
    assert sorted(by_index) == [3, 5] and (repeats, disagree) == (1, 1)
    assert [logs.response_label(e["data"]) for e in entries] == [65, 66, -1]


@pytest.mark.parametrize("text,why", [(None, "missing"), ('[{"qsl_idx": 1', "not a complete accuracy log"),
                                      ('{"a": 1}', "not a JSON list")])
def test_an_unreadable_accuracy_log_is_a_value_error(tmp_path, text, why):
    path = tmp_path / logs.ACCURACY_LOG
    if text is not None:
        path.write_text(text)
    with pytest.raises(ValueError, match=why):
        logs.read_accuracy_entries(str(path))
