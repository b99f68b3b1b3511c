"""Map files (val_map.txt, calibration lists): every bad input is a one-line error naming the file and the line."""
import os

import pytest

from conftest import VAL_MAP_1300
from harness.core.errors import HarnessError
from resnet50 import imagenet


def _write(tmp_path, data: bytes, name="map.txt"):
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def _error(path, **kw) -> str:
    with pytest.raises(HarnessError) as e:
        imagenet.read_map(path, **kw)
    msg = str(e.value)
    assert "\n" not in msg and "Traceback" not in msg
    return msg


def test_the_shared_val_map_reads():
    m = imagenet.read_map(VAL_MAP_1300)
    assert len(m.files) == 1300 and len(set(m.files)) == 1300 and m.labels.min() >= 0 and m.labels.max() <= 999


def test_utf8_with_a_byte_order_mark_is_the_same_map(tmp_path):
    plain = imagenet.read_map(_write(tmp_path, b"a.JPEG 1\nb.JPEG 2\n", "plain.txt"))
    bom = imagenet.read_map(_write(tmp_path, b"\xef\xbb\xbfa.JPEG 1\r\nb.JPEG 2\r\n", "bom.txt"))
    assert bom.files == plain.files == ["a.JPEG", "b.JPEG"] and bom.labels.tolist() == [1, 2]
    assert imagenet.read_map(_write(tmp_path, "é.JPEG 3\n".encode(), "utf8.txt")).files == ["é.JPEG"]


def test_latin1_is_an_error_naming_the_line(tmp_path):
    path = _write(tmp_path, b"a.JPEG 1\n\xe9t\xe9.JPEG 2\n")
    msg = _error(path)
    assert f"{path}:2: not UTF-8 (byte 0xe9" in msg and "save the map as UTF-8" in msg


def test_a_byte_order_mark_inside_the_file(tmp_path):
    path = _write(tmp_path, b"a.JPEG 1\n\xef\xbb\xbfb.JPEG 2\n")
    assert f"{path}:2: a byte-order mark" in _error(path)


@pytest.mark.parametrize("label", ["\u00b2", "\u0663", "1.5", "-1", "0x10", "one"])
def test_labels_must_be_ascii_digits(tmp_path, label):
    path = _write(tmp_path, f"a.JPEG 1\nb.JPEG {label}\n".encode())
    msg = _error(path)
    assert f"{path}:2: the label {label!r} is not a number 0..999 in ASCII digits" in msg


def test_label_out_of_range(tmp_path):
    path = _write(tmp_path, b"a.JPEG 1\nb.JPEG 1000\n")
    assert f"{path}:2: label 1000 is out of range" in _error(path)


def test_duplicate_line(tmp_path):
    path = _write(tmp_path, b"a.JPEG 1\nb.JPEG 2\na.JPEG 1\n")
    msg = _error(path)
    assert f"{path}:3: a.JPEG is listed again; first at line 1" in msg and "count twice" in msg
    cal = _write(tmp_path, b"a.JPEG\nb.JPEG\nb.JPEG\n", "cal.txt")
    assert f"{cal}:3: b.JPEG is listed again" in _error(cal, need_labels=False)


def test_conflicting_labels(tmp_path):
    path = _write(tmp_path, b"a.JPEG 1\nb.JPEG 2\n\na.JPEG 7\n")
    assert f"{path}:4: a.JPEG is listed again with label 7 (line 1: 1)" in _error(path)


def test_missing_label_names_its_line(tmp_path):
    path = _write(tmp_path, b"a.JPEG 1\nb.JPEG\n")
    assert f"{path}:2: b.JPEG has no label" in _error(path)
    assert f"{path}:2: b.JPEG has no label, but other lines have one" in _error(path, need_labels=False)


def test_unreadable_map(tmp_path):
    os.makedirs(tmp_path / "dir.txt")
    assert "cannot be read" in _error(str(tmp_path / "dir.txt"))
