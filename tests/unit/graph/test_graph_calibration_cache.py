"""harness/graph/calibration_cache.py: the TensorRT cache format, its headers and the installed-version rewrite."""
import numpy as np
import pytest

from harness.core.errors import HarnessError
from harness.graph import calibration_cache as cc


def test_format_and_parse_round_trip():
    scales = {"input": 0.0186, "conv1:0": 1.5e-3, "fc/logits": 7.25}
    text = cc.format_calibration_cache("TRT-100800-EntropyCalibration2", scales)
    assert text.endswith("\n") and text.splitlines()[0] == "TRT-100800-EntropyCalibration2"
    header, back = cc.parse_calibration_cache(text)
    assert header == "TRT-100800-EntropyCalibration2"
    assert list(back) == list(scales)
    for name, scale in scales.items():
        assert back[name] == float(np.float32(scale))


def test_scales_are_big_endian_float32_hex():
    text = cc.format_calibration_cache("TRT-8601-EntropyCalibration2", {"x": 1.0})
    assert text == "TRT-8601-EntropyCalibration2\nx: 3f800000\n"
    assert cc.parse_calibration_cache("TRT-1-X\n\n  y : 40000000 \n")[1] == {"y": 2.0}


def test_a_bad_cache_is_refused_with_a_clear_message():
    with pytest.raises(HarnessError, match=r"^c\.cache: not a TensorRT calibration cache \(the first line should be "
                                           r"`TRT-<version>-EntropyCalibration2` or similar\)\.$"):
        cc.parse_calibration_cache("hello\nx: 3f800000\n", "c.cache")
    with pytest.raises(HarnessError, match="not a TensorRT calibration cache"):
        cc.parse_calibration_cache("")
    with pytest.raises(HarnessError, match=r"^c\.cache:3: expected `<tensor>: <8 hex digits>`, got 'y: zz'\.$"):
        cc.parse_calibration_cache("TRT-100800-EntropyCalibration2\nx: 3f800000\ny: zz\n", "c.cache")
    with pytest.raises(HarnessError, match=r"^c\.cache:2: expected .*got 'no colon here'"):
        cc.parse_calibration_cache("TRT-100800-EntropyCalibration2\nno colon here\n", "c.cache")
    with pytest.raises(HarnessError, match=r":2: expected"):
        cc.parse_calibration_cache("TRT-100800-EntropyCalibration2\nx: 3f80\n")   # too short for a float32


def test_read_calibration_cache(tmp_path):
    path = tmp_path / "entropy.cache"
    path.write_text(cc.format_calibration_cache("TRT-100800-EntropyCalibration2", {"a": 0.5}))
    assert cc.read_calibration_cache(str(path)) == ("TRT-100800-EntropyCalibration2", {"a": 0.5})
    with pytest.raises(HarnessError, match=r"^No calibration cache at .*missing\.cache: implicit INT8 needs one\. "
                                           r"Run `make calibrate`"):
        cc.read_calibration_cache(str(tmp_path / "missing.cache"))
    (tmp_path / "binary.cache").write_bytes(b"\xff\xfe\x00\x81")
    with pytest.raises(HarnessError, match=r"binary\.cache: not a text TensorRT calibration cache\.$"):
        cc.read_calibration_cache(str(tmp_path / "binary.cache"))


@pytest.mark.parametrize("version, number", [("10.8.0", 100800), ("10.8.0.43", 100800), ("8.6.1", 8601),
                                             ("8.6", 8600), ("10", 100000), ("10.13.2", 101302), ("9.1.0", 9100)])
def test_header_versions(version, number):
    assert cc.calibration_cache_version(version) == number


def test_version_tuple_and_bad_versions():
    assert cc.version_tuple("10.8.0.43") == (10, 8, 0)
    for bad in ("", "x.1", "10.x", "v10"):
        with pytest.raises(HarnessError, match=r"is not <major>\.<minor>\.<patch>\[\.<build>\]\.$"):
            cc.version_tuple(bad)


def test_a_pre_release_suffix_is_not_part_of_the_patch():
    assert cc.version_tuple("10.0.0b6") == (10, 0, 0)


def test_default_header():
    assert cc.TARGET_TENSORRT == "10.8.0"
    assert cc.calibration_cache_header() == "TRT-100800-EntropyCalibration2"
    assert cc.calibration_cache_header("8.6.1", "MinMaxCalibration") == "TRT-8601-MinMaxCalibration"


def test_cache_for_tensorrt_keeps_a_matching_header_and_rewrites_another():
    text = cc.format_calibration_cache("TRT-100800-EntropyCalibration2", {"a": 0.25, "b": 3.0})
    assert cc.cache_for_tensorrt(text, "10.8.0") == (text, None)
    new, note = cc.cache_for_tensorrt(text, "8.6.1", "e.cache")
    assert new == cc.format_calibration_cache("TRT-8601-EntropyCalibration2", {"a": 0.25, "b": 3.0})
    assert note == ("e.cache: header TRT-100800-EntropyCalibration2 rewritten to TRT-8601-EntropyCalibration2 for the "
                    "installed TensorRT 8.6.1 (the scales are unchanged).")


def test_cache_for_tensorrt_refuses_another_calibrator_and_odd_headers():
    other = cc.format_calibration_cache("TRT-100800-MinMaxCalibration", {"a": 1.0})
    with pytest.raises(HarnessError, match=r"^e\.cache: a MinMaxCalibration cache; the builder replays caches through "
                                           r"EntropyCalibration2"):
        cc.cache_for_tensorrt(other, "10.8.0", "e.cache")
    with pytest.raises(HarnessError, match=r"^e\.cache: header 'TRT-ten-EntropyCalibration2' is not "
                                           r"`TRT-<version>-<calibrator>`\.$"):
        cc.cache_for_tensorrt("TRT-ten-EntropyCalibration2\n", "10.8.0", "e.cache")
    with pytest.raises(HarnessError, match="is not `TRT-<version>-<calibrator>`"):
        cc.cache_for_tensorrt("TRT-100800\n", "10.8.0", "e.cache")


def test_methods():
    assert cc.METHODS == ("entropy", "minmax", "percentile")
