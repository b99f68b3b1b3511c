"""harness/core/storage.py: atomic writes, folder_lock basics, read_json, file_digest (more in tests/e2e/test_artifact_locks.py)."""
import hashlib
import json
import os

import pytest

from harness.core import storage
from harness.core.errors import HarnessError


def test_file_digest_matches_hashlib(tmp_path):
    path = tmp_path / "blob"
    data = os.urandom(5000) * 1000          # over one 4 MiB read chunk
    path.write_bytes(data)
    assert storage.file_digest(str(path)) == hashlib.md5(data).hexdigest()
    assert storage.file_digest(str(path), "sha256") == hashlib.sha256(data).hexdigest()
    assert storage.file_digest(str(path)) == hashlib.md5(data).hexdigest()


def test_file_digest_of_an_empty_file(tmp_path):
    (tmp_path / "empty").write_bytes(b"")
    assert storage.file_digest(str(tmp_path / "empty")) == hashlib.md5(b"").hexdigest()


def test_write_bytes_atomic_replaces_and_leaves_no_partial(tmp_path):
    path = tmp_path / "out.bin"
    path.write_bytes(b"old")
    storage.write_bytes_atomic(str(path), b"new contents")
    assert path.read_bytes() == b"new contents"
    assert sorted(os.listdir(tmp_path)) == ["out.bin"]


def test_write_json_atomic_compact_or_indented_and_sorted(tmp_path):
    path = str(tmp_path / "a.json")
    storage.write_json_atomic(path, {"b": 1, "a": [1, 2]})
    assert open(path).read() == '{"b": 1, "a": [1, 2]}'
    storage.write_json_atomic(path, {"b": 1, "a": 2}, indent=1)
    assert open(path).read() == '{\n "a": 2,\n "b": 1\n}'
    assert storage.read_json(path) == {"a": 2, "b": 1}


def test_a_failed_atomic_write_is_a_storage_error_naming_the_file(tmp_path):
    path = str(tmp_path / "no_such_folder" / "x.json")
    with pytest.raises(storage.StorageError) as e:
        storage.write_json_atomic(path, {})
    assert str(e.value).startswith(f"{path}: writing failed: ")
    assert "ENOENT" in str(e.value) and "run the same command again" in str(e.value)
    assert isinstance(e.value, HarnessError)


def test_read_json_names_the_file_or_returns_what_the_caller_asks_for(tmp_path):
    missing, broken = str(tmp_path / "missing.json"), str(tmp_path / "broken.json")
    with pytest.raises(HarnessError, match="missing.json does not exist"):
        storage.read_json(missing)
    assert storage.read_json(missing, missing=None) is None
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(HarnessError, match="broken.json is not valid JSON"):
        storage.read_json(broken)
    assert storage.read_json(broken, invalid=None) is None
    (tmp_path / "list.json").write_text("[1, 2]")
    assert storage.read_json(str(tmp_path / "list.json")) == [1, 2]
    with pytest.raises(HarnessError, match="holds a JSON list, expected a JSON object"):
        storage.read_json(str(tmp_path / "list.json"), expect=dict)


def test_storage_error_words_per_errno(tmp_path):
    import errno
    e = storage.storage_error(OSError(errno.ENOSPC, "No space left on device"), "/x/y", "reading")
    assert str(e).startswith("/x/y: reading failed: the disk is full (ENOSPC).")
    assert storage.is_storage_errno(OSError(errno.EROFS, "ro"))
    assert not storage.is_storage_errno(OSError(errno.ENOENT, "missing"))
    assert not storage.is_storage_errno(ValueError())


def test_folder_lock_creates_the_folder_and_names_its_holder(tmp_path):
    folder = str(tmp_path / "engines" / "sys")
    with storage.folder_lock(folder, "generate_engines", timeout=0) as held:
        assert held == folder
        info = json.loads(open(os.path.join(folder, storage.LOCK_NAME)).read())
        assert info["pid"] == os.getpid() and info["step"] == "generate_engines"
    assert open(os.path.join(folder, storage.LOCK_NAME)).read() == ""   # the note is cleared on release


def test_a_held_lock_refuses_a_second_holder_naming_the_first(tmp_path):
    folder = str(tmp_path)
    with storage.folder_lock(folder, "calibrate", timeout=0):
        with pytest.raises(HarnessError) as e:
            with storage.folder_lock(folder, "other", timeout=0):
                pass
    text = str(e.value)
    assert text.startswith(f"{folder} is in use by pid {os.getpid()} on ")
    assert "(calibrate, since " in text and "$MLPERF_LOCK_TIMEOUT sets the wait" in text
    with storage.folder_lock(folder, "again", timeout=0):     # released: free again
        pass


def test_shared_locks_coexist_and_a_missing_folder_is_not_created(tmp_path):
    folder = str(tmp_path)
    with storage.folder_lock(folder, "read", timeout=0, shared=True):
        with storage.folder_lock(folder, "read", timeout=0, shared=True):
            pass
    missing = str(tmp_path / "missing")
    with storage.folder_lock(missing, "read", timeout=0, shared=True) as held:
        assert held == missing
    assert not os.path.exists(missing)


def test_folder_locks_take_each_folder(tmp_path):
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    with storage.folder_locks([b, a, a], "stage", timeout=0):
        for folder in (a, b):
            with pytest.raises(HarnessError, match="is in use by"):
                with storage.folder_lock(folder, "x", timeout=0):
                    pass


def test_lock_timeout_env(monkeypatch):
    monkeypatch.delenv(storage.LOCK_TIMEOUT_ENV, raising=False)
    assert storage.lock_timeout() == storage.DEFAULT_LOCK_TIMEOUT
    monkeypatch.setenv(storage.LOCK_TIMEOUT_ENV, "2.5")
    assert storage.lock_timeout() == 2.5
    monkeypatch.setenv(storage.LOCK_TIMEOUT_ENV, "soon")
    with pytest.raises(HarnessError, match=r"^\$MLPERF_LOCK_TIMEOUT='soon': expected seconds\.$"):
        storage.lock_timeout()


def test_cached_md5_and_short_digest(tmp_path, monkeypatch):
    monkeypatch.setenv(storage.DIGEST_CACHE_ENV, str(tmp_path / "cache"))
    path = tmp_path / "f"
    path.write_bytes(b"abc")
    digest = hashlib.md5(b"abc").hexdigest()
    assert storage.file_digest(str(path), cached=True) == digest
    assert len(os.listdir(tmp_path / "cache")) == 1
    assert storage.short_digest(str(path)) == digest[:8]
    assert storage.short_digest(str(path), 4) == digest[:4]
