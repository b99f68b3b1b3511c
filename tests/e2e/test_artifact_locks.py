"""harness/core/storage.py: folder locks between runs, checked writes, cached digests; and the locks in use by the
preprocessing store (a second run waits, then refuses; --overwrite never deletes what another run holds)."""
import errno
import os
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from conftest import ROOT, SAMPLES_250
from harness.core import paths
from harness.core import storage as artifacts
from harness.core.errors import HarnessError


def _holder(folder, seconds=30):
    """A second process that takes the folder's lock and holds it (a run in progress)."""
    script = textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {os.path.join(ROOT, 'code')!r})
        from harness.core.storage import folder_lock
        with folder_lock({str(folder)!r}, "test holder"):
            print("held", flush=True)
            time.sleep({seconds})
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_holder_waits_then_refuses_naming_the_first(tmp_path, capsys):
    proc = _holder(tmp_path / "f")
    try:
        start = time.monotonic()
        with pytest.raises(HarnessError) as e:
            with artifacts.folder_lock(str(tmp_path / "f"), "second", timeout=0.5):
                pass
        assert time.monotonic() - start >= 0.5
        msg = str(e.value)
        assert f"{tmp_path / 'f'} is in use by pid {proc.pid}" in msg and "test holder" in msg
        assert "waiting up to 0 s" in capsys.readouterr().err
    finally:
        proc.kill()
        proc.wait()
    with artifacts.folder_lock(str(tmp_path / "f"), "after", timeout=5):    # a killed holder leaves no lock
        pass


def test_waiting_says_so_and_gets_the_lock_when_released(tmp_path, capsys):
    proc = _holder(tmp_path / "f", seconds=1)
    try:
        with artifacts.folder_lock(str(tmp_path / "f"), "second", timeout=60):
            pass                                                       # got it once the first let go
    finally:
        proc.wait()
    assert f"[lock] {tmp_path / 'f'} is in use by pid {proc.pid}" in capsys.readouterr().err


def test_lock_timeout_from_the_environment(monkeypatch):
    monkeypatch.setenv(artifacts.LOCK_TIMEOUT_ENV, "2.5")
    assert artifacts.lock_timeout() == 2.5
    monkeypatch.setenv(artifacts.LOCK_TIMEOUT_ENV, "soon")
    with pytest.raises(HarnessError, match="MLPERF_LOCK_TIMEOUT"):
        artifacts.lock_timeout()


def test_overwrite_never_deletes_what_another_run_holds(tmp_path, monkeypatch):
    from resnet50 import imagenet, preprocessing
    from resnet50.models import get_model
    spec = get_model("efficientnet-lite0")
    m = tmp_path / "map.txt"
    m.write_text("".join(f"{n} 1\n" for n in sorted(os.listdir(SAMPLES_250))[:2]))
    image_map = imagenet.read_map(str(m))
    base = str(tmp_path / "p")
    npy, _ = preprocessing.array_paths(base, spec, "fp32_nchw", image_map)
    os.makedirs(os.path.dirname(npy))
    with open(npy + ".partial", "wb") as f:                            # the other run's half-written array
        f.write(b"theirs")
    proc = _holder(os.path.dirname(npy))
    try:
        monkeypatch.setenv(artifacts.LOCK_TIMEOUT_ENV, "0.3")
        with pytest.raises(HarnessError, match="is in use by pid"):
            preprocessing.preprocess(spec, image_map, SAMPLES_250, base, overwrite=True, progress=False)
        assert open(npy + ".partial", "rb").read() == b"theirs"
    finally:
        proc.kill()
        proc.wait()
    preprocessing.preprocess(spec, image_map, SAMPLES_250, base, overwrite=True, progress=False)
    assert len(np.load(npy)) == 2


def test_pwrite_all_continues_short_writes_and_fails_without_progress(tmp_path, monkeypatch):
    path = str(tmp_path / "f")
    fd = os.open(path, os.O_RDWR | os.O_CREAT)
    real = os.pwrite
    monkeypatch.setattr(os, "pwrite", lambda f, data, off: real(f, bytes(memoryview(data)[:3]), off))
    artifacts.pwrite_all(fd, b"0123456789", 5, path)
    assert open(path, "rb").read() == b"\0" * 5 + b"0123456789"
    monkeypatch.setattr(os, "pwrite", lambda f, data, off: 0)
    with pytest.raises(artifacts.StorageError, match="made no progress"):
        artifacts.pwrite_all(fd, b"abc", 0, path)

    def enospc(f, data, off):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "pwrite", enospc)
    with pytest.raises(artifacts.StorageError) as e:
        artifacts.pwrite_all(fd, b"abc", 0, path)
    assert f"{path}: writing failed: the disk is full (ENOSPC)" in str(e.value)
    os.close(fd)


def test_write_json_atomic_reports_storage_errors(tmp_path, monkeypatch):
    path = str(tmp_path / "x.json")
    artifacts.write_json_atomic(path, {"a": 1})
    assert artifacts.read_json(path) == {"a": 1}
    real = os.replace

    def erofs(src, dst):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(os, "replace", erofs)
    with pytest.raises(artifacts.StorageError, match="x.json: writing failed: the file system is read-only"):
        artifacts.write_json_atomic(path, {"a": 2})
    monkeypatch.setattr(os, "replace", real)
    assert artifacts.read_json(path) == {"a": 1} and not os.path.exists(path + ".partial")


def test_cached_digest_rereads_only_a_changed_file(tmp_path, monkeypatch):
    monkeypatch.setenv(artifacts.DIGEST_CACHE_ENV, str(tmp_path / "cache"))
    path = tmp_path / "model.onnx"
    path.write_bytes(b"weights-1")
    calls = []
    real = artifacts.hashlib.new
    monkeypatch.setattr(artifacts.hashlib, "new", lambda name: calls.append(name) or real(name))   # full reads
    first = artifacts.file_digest(str(path), cached=True)
    assert first == artifacts.file_digest(str(path))
    assert artifacts.file_digest(str(path), cached=True) == first and len(calls) == 2        # cached
    path.write_bytes(b"weights-2")                                                          # replaced: read again
    assert artifacts.file_digest(str(path), cached=True) != first and len(calls) == 3
    with pytest.raises(ValueError):
        artifacts.file_digest(str(path), "sha256", cached=True)


def _refused_while_held(folder, *argv, lock_file=None):
    """code/main.py with `folder`'s lock held by another process: it must refuse, naming the holder."""
    from conftest import run_main
    proc = _holder(folder) if lock_file is None else _holder_file(folder, lock_file)
    try:
        old = os.environ.get(artifacts.LOCK_TIMEOUT_ENV)
        os.environ[artifacts.LOCK_TIMEOUT_ENV] = "0.5"
        try:
            r = run_main(*argv)
        finally:
            if old is None:
                del os.environ[artifacts.LOCK_TIMEOUT_ENV]
            else:
                os.environ[artifacts.LOCK_TIMEOUT_ENV] = old
    finally:
        proc.kill()
        proc.wait()
    assert r.returncode != 0 and "Traceback" not in r.stderr, r.stderr
    assert f"is in use by pid {proc.pid}" in r.stderr and "waiting up to 0 s" in r.stderr
    return r


def _holder_file(folder, lock_file):
    script = textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {os.path.join(ROOT, 'code')!r})
        from harness.core.storage import folder_lock
        with folder_lock({str(folder)!r}, "test holder", lock_file={str(lock_file)!r}):
            print("held", flush=True)
            time.sleep(30)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_generate_engines_waits_for_the_engine_folder(tmp_path):
    from harness.artifacts import engines
    _refused_while_held(paths.engine_dir("CPU", "Offline"), "--action=generate_engines", "--system_name=CPU",
                        "--backend=null", "--scenarios=Offline")


def test_staging_holds_a_lock_beside_the_results_tree(tmp_path):
    results = tmp_path / "submission"
    _refused_while_held(str(results), "--action=update_results", "--system_name=CPU", f"--results_dir={results}",
                        f"--log_dir={tmp_path}/logs", lock_file=str(results) + ".lock")
    assert not (results / ".lock").exists()            # the submission tree holds only what the checker expects


def test_calibration_holds_its_folder(tmp_path, monkeypatch):
    from harness.artifacts import calibration
    from resnet50.models import get_model
    model = tmp_path / "m.onnx"
    model.write_bytes(b"")
    monkeypatch.setenv(artifacts.LOCK_TIMEOUT_ENV, "0.3")
    proc = _holder(calibration.calibration_dir(str(model)))
    try:
        inputs = calibration.CalibrationInputs(str(model), np.zeros((1, 3, 224, 224), np.float32), "a", "c", "m",
                                               "md5", ["f"])
        with pytest.raises(HarnessError, match=f"in use by pid {proc.pid}"):
            calibration.calibrate(get_model("efficientnet-lite0"), inputs, progress=False)
    finally:
        proc.kill()
        proc.wait()
