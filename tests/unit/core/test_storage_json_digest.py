"""harness/core/storage.py: the one JSON reader (read_json) and the one digest helper (file_digest)."""
import hashlib

import pytest

from harness.core import storage
from harness.core.errors import HarnessError


def test_read_json_reads_a_file(tmp_path):
    path = tmp_path / "a.json"
    path.write_text('{"a": [1, 2]}')
    assert storage.read_json(str(path)) == {"a": [1, 2]}
    assert storage.read_json(str(path), expect=dict) == {"a": [1, 2]}


def test_a_missing_file_is_an_error_naming_it_unless_the_caller_says_what_it_means(tmp_path):
    path = str(tmp_path / "none.json")
    with pytest.raises(HarnessError, match="none.json does not exist"):
        storage.read_json(path)
    assert storage.read_json(path, missing=None) is None
    assert storage.read_json(path, missing={}) == {}


def test_bad_json_is_an_error_naming_the_file(tmp_path):
    path = tmp_path / "cut.json"
    path.write_text('{"a": ')
    with pytest.raises(HarnessError, match="cut.json is not valid JSON"):
        storage.read_json(str(path), missing=None)
    assert storage.read_json(str(path), missing=None, invalid=None) is None


def test_an_unreadable_file_is_an_error_naming_it(tmp_path):
    with pytest.raises(HarnessError, match="cannot be read"):
        storage.read_json(str(tmp_path))                 # a folder
    assert storage.read_json(str(tmp_path), invalid="x") == "x"


def test_expect_checks_the_type(tmp_path):
    path = tmp_path / "list.json"
    path.write_text("[1]")
    with pytest.raises(HarnessError, match="holds a JSON list, expected a JSON object"):
        storage.read_json(str(path), expect=dict)
    assert storage.read_json(str(path), invalid=None, expect=dict) is None
    assert storage.read_json(str(path), expect=list) == [1]


def test_file_digest(tmp_path, monkeypatch):
    monkeypatch.setenv("MLPERF_DIGEST_CACHE", str(tmp_path / "cache"))
    path = tmp_path / "blob"
    path.write_bytes(b"x" * 5000)
    assert storage.file_digest(str(path)) == hashlib.md5(b"x" * 5000).hexdigest()
    assert storage.file_digest(str(path), "sha256") == hashlib.sha256(b"x" * 5000).hexdigest()
    assert storage.file_digest(str(path), cached=True) == hashlib.md5(b"x" * 5000).hexdigest()
    assert (tmp_path / "cache").is_dir()
    assert storage.short_digest(str(path)) == hashlib.md5(b"x" * 5000).hexdigest()[:8]


def test_a_corrupt_digest_cache_entry_is_recomputed(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("MLPERF_DIGEST_CACHE", str(cache))
    path = tmp_path / "blob"
    path.write_bytes(b"abc")
    storage.file_digest(str(path), cached=True)
    (entry,) = cache.iterdir()
    entry.write_text("{not json")
    assert storage.file_digest(str(path), cached=True) == hashlib.md5(b"abc").hexdigest()
