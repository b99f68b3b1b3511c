"""harness/report/tune_log.py: the one tune_log.jsonl record, as tune writes it and the report reads it back."""
import json

from harness.report.read import read_tune_log
from harness.report.tune_log import PROBE, RESULT, START, TuneRecord, append, read_records


def test_a_record_round_trips(tmp_path):
    path = str(tmp_path / "tune_log.jsonl")
    append(path, TuneRecord(START, "Server", "server_target_qps", bound_ns=15e6, extra={"system": "X"}))
    append(path, TuneRecord(PROBE, "Server", "server_target_qps", phase="bracket", value=100, valid=True,
                            latency_ms=9.5, bound_ms=15.0, measured=99.8, extra={"index": 1, "validity": "VALID"}))
    append(path, TuneRecord(RESULT, "Server", "server_target_qps", searched=100, confirmed=None,
                            extra={"searches": {}}))
    lines = [json.loads(line) for line in open(path)]
    assert [line["event"] for line in lines] == ["start", "probe", "result"]
    assert lines[0]["server_latency_bound_ns"] == 15e6 and lines[0]["system"] == "X"
    assert lines[1]["value"] == 100 and lines[1]["valid"] is True and lines[1]["validity"] == "VALID"
    assert "confirmed" in lines[2] and lines[2]["confirmed"] is None and all("time" in line for line in lines)
    records, skipped = read_records(path)
    assert skipped == 0 and records[1].value == 100 and records[1].measured == 99.8 and records[1].phase == "bracket"
    assert records[1].extra == {"index": 1}          # validity is read into `valid`
    assert records[2].is_choice and records[2].has_confirmed and records[2].confirmed is None
    log = read_tune_log(path, str(tmp_path))
    assert log.bound_ms == 15 and len(log.probes) == 1 and log.chosen is None
    assert "no confirming run was VALID" in log.note


def test_older_spellings_are_read():
    rec = TuneRecord.from_json({"kind": "chosen", "target_qps": "250", "result_validity": "invalid", "p99_ms": 3})
    assert rec.is_choice and rec.value == 250.0 and rec.valid is False and rec.latency_ms == 3.0
    assert TuneRecord.from_json({}).event == PROBE
