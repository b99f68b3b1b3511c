"""Artifacts verified by content (issue 19, part 2): preprocessed arrays, their labels and their image folder;
damaged arrays refused with one error naming the file. Real images from ../shared (a few of samples-250 or val-1300),
the real preprocessing pool."""
import json
import os
import shutil

import pytest

from conftest import SAMPLES_250, VAL_1300, run_main
from harness.core.errors import HarnessError
from resnet50 import imagenet, manifest as manifest_mod, preprocessing
from resnet50.models import get_model

SPEC = get_model("efficientnet-lite0")


def _map(tmp_path, names, label=1):
    path = tmp_path / "map.txt"
    path.write_text("".join(f"{n} {label + i}\n" for i, n in enumerate(names)))
    return imagenet.read_map(str(path))


def _made(tmp_path, n=4, folder=SAMPLES_250):
    m = _map(tmp_path, sorted(os.listdir(folder))[:n])
    base = str(tmp_path / "p")
    preprocessing.preprocess(SPEC, m, folder, base, progress=False)
    npy, manifest_path = preprocessing.array_paths(base, SPEC, "fp32_nchw", m)
    return m, base, npy, manifest_path


def test_a_new_data_dir_rebuilds_the_array(tmp_path, capsys):
    m, base, npy, manifest_path = _made(tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    for name in m.files:              # another folder of other images under the same names
        shutil.copy(os.path.join(VAL_1300, sorted(os.listdir(VAL_1300))[m.files.index(name)]), other / name)
    result = preprocessing.preprocess(SPEC, m, str(other), base, progress=True)
    assert result.done_now == len(m.files)
    assert f"not {other} (--data_dir): preprocessing it again" in capsys.readouterr().out
    assert json.load(open(manifest_path))["data_dir"] == str(other)
    # The same folder again: up to date; an image touched in it: rebuilt.
    assert preprocessing.preprocess(SPEC, m, str(other), base, progress=False).done_now == 0
    os.utime(other / m.files[1], ns=(1, 1))
    assert preprocessing.preprocess(SPEC, m, str(other), base, progress=True).done_now == len(m.files)
    assert "changed (size or mtime) since it was made" in capsys.readouterr().out


def test_a_flipped_byte_with_the_mtime_restored_is_found_without_verify(tmp_path, monkeypatch, capsys):
    """The sample is emptied so only the changed stamp (its ctime, which os.utime cannot set back) can find it."""
    m, base, npy, _ = _made(tmp_path)
    monkeypatch.setattr(manifest_mod, "sample_rows", lambda n, k=0: [])
    preprocessing.load_preprocessed(SPEC, m, base)                      # unchanged: the (empty) sample passes
    st = os.stat(npy)
    with open(npy, "r+b") as f:
        f.seek(st.st_size - 1000)
        b = f.read(1)
        f.seek(st.st_size - 1000)
        f.write(bytes([b[0] ^ 1]))                                      # one byte of the last row
    os.utime(npy, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert os.stat(npy).st_size == st.st_size and os.stat(npy).st_mtime_ns == st.st_mtime_ns
    with pytest.raises(HarnessError, match=r"1 of 4 rows checked differ .*rows 3"):
        preprocessing.load_preprocessed(SPEC, m, base)
    assert preprocessing.preprocess(SPEC, m, SAMPLES_250, base, progress=True).done_now == 4
    assert "Preprocessing it again" in capsys.readouterr().out
    preprocessing.load_preprocessed(SPEC, m, base, verify=True)


def test_edited_labels_are_refused(tmp_path):
    m, base, _, manifest_path = _made(tmp_path)
    manifest = json.load(open(manifest_path))
    manifest["labels"] = [0] * len(manifest["labels"])
    json.dump(manifest, open(manifest_path, "w"))
    with pytest.raises(HarnessError, match="its labels do not match the digest"):
        preprocessing.load_preprocessed(SPEC, m, base)
    manifest["labels_md5"] = manifest_mod.labels_digest(manifest["labels"])     # digest recomputed too
    json.dump(manifest, open(manifest_path, "w"))
    with pytest.raises(HarnessError, match=f"its labels differ from those of {m.path}"):
        preprocessing.load_preprocessed(SPEC, m, base)
    assert preprocessing.preprocess(SPEC, m, SAMPLES_250, base, progress=False).done_now == 4   # rebuilt
    assert preprocessing.load_preprocessed(SPEC, m, base).labels.tolist() == [1, 2, 3, 4]


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
def test_a_damaged_npy_is_one_error_naming_it(tmp_path, damage):
    m, base, npy, _ = _made(tmp_path, n=2)
    data = open(npy, "rb").read()
    open(npy, "wb").write({"truncated": data[:len(data) // 2], "garbage": os.urandom(len(data)),
                           "empty": b""}[damage])
    with pytest.raises(HarnessError) as e:
        preprocessing.load_preprocessed(SPEC, m, base)
    assert npy in str(e.value) and "is not a complete .npy array" in str(e.value)
    assert "make preprocess_data" in str(e.value) and "--overwrite" in str(e.value)
    assert preprocessing.preprocess(SPEC, m, SAMPLES_250, base, progress=False).done_now == 2


# ------------------------------------------------------------------------------------------------------------
# Damaged engines: one error at backend load, naming the file and the rebuild command
def _damaged(tmp_path, source, damage):
    data = open(source, "rb").read()
    path = tmp_path / "engine.onnx"
    path.write_bytes({"truncated": data[:len(data) // 3], "garbage": os.urandom(4096), "empty": b""}[damage])
    return str(path)


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
def test_a_damaged_onnxruntime_engine_is_one_error(tmp_path, effnet_path, damage):
    from harness.backends.onnxruntime.backend import OrtRunner
    engine = _damaged(tmp_path, effnet_path, damage)
    with pytest.raises(HarnessError) as e:
        OrtRunner(engine, 1)
    assert f"Engine {engine} cannot be loaded by the onnxruntime backend" in str(e.value)
    assert "make generate_engines" in str(e.value) and "--overwrite" in str(e.value)


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_a_damaged_torch_engine_is_one_error(tmp_path, effnet_path, damage):
    from harness.backends.torch.backend import BACKEND
    engine = _damaged(tmp_path, effnet_path, damage)
    options = BACKEND.options({"model": "efficientnet-lite0", "precision": "fp32"})
    with pytest.raises(HarnessError) as e:
        BACKEND._module(engine, "cpu", options)
    assert f"Engine {engine} cannot be loaded by the torch backend" in str(e.value)
    assert "--backend=torch" in str(e.value) and "--overwrite" in str(e.value)


# ------------------------------------------------------------------------------------------------------------
# A run: labels set to 0 in the manifest (a null-backend AccuracyOnly run scored 100% on them) are refused
def test_a_run_refuses_a_manifest_with_edited_labels(tmp_path, val16):
    map_path, prep = val16
    shutil.copytree(prep, tmp_path / "prep")                        # the session's array stays as it is
    m = imagenet.read_map(map_path)
    _, manifest_path = preprocessing.array_paths(str(tmp_path / "prep"), SPEC, "fp32_nchw", m)
    manifest = json.load(open(manifest_path))
    manifest["labels"] = [0] * len(manifest["labels"])
    json.dump(manifest, open(manifest_path, "w"))
    r = run_main("--action=run_harness", "--system_name=CPU", "--model=efficientnet-lite0", "--backend=null",
                 "--scenarios=Offline", "--test_mode=AccuracyOnly", f"--map_path={map_path}",
                 f"--preprocessed_data_dir={tmp_path / 'prep'}", f"--log_dir={tmp_path / 'logs'}")
    assert r.returncode != 0, r.stdout[-2000:]
    assert "its labels do not match the digest" in r.stderr and manifest_path in r.stderr
    assert "Traceback" not in r.stderr
