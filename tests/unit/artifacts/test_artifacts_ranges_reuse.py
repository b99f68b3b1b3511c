"""Calibration ranges are reused only when their file is the one calibration wrote (its md5 in the record)."""
from harness.artifacts import calibration
from harness.core import storage


def test_an_edited_ranges_file_is_not_reused(tmp_path, monkeypatch):
    monkeypatch.setenv(storage.DIGEST_CACHE_ENV, str(tmp_path / "digests"))
    ranges = tmp_path / "entropy.ranges.json"
    ranges.write_text('{"x": [0.0, 1.0]}')
    record = {"ranges": {"model_md5": "m", "method": "entropy"}}
    old = dict(record, outputs={"ranges": storage.file_digest(str(ranges))})
    assert calibration.ranges_reusable(old, record, str(ranges))
    said = []
    ranges.write_text('{"x": [0.0, 9.0]}')                      # edited after calibration
    assert not calibration.ranges_reusable(old, record, str(ranges), say=said.append)
    assert str(ranges) in said[0] and "recalibrating" in said[0]
    ranges.write_text("not json")
    assert not calibration.ranges_reusable(old, record, str(ranges))
    assert not calibration.ranges_reusable({"ranges": record["ranges"]}, record, str(ranges))   # no md5 recorded
    assert not calibration.ranges_reusable(old, {"ranges": {"method": "minmax"}}, str(ranges))
