"""Preprocessing at full scale: recipes pinned on real images, the four formats, parallel / idempotent / resumable
runs, and the bad inputs (missing, corrupt and wrong-mode images, mismatched manifests). Real images from ../shared."""
import json
import os
import shutil

import numpy as np
import pytest

from conftest import SAMPLES_250, SAMPLES_MAP_250, VAL_1300, run_main
from harness.core.errors import HarnessError
from resnet50 import imagenet
from resnet50 import array_store, preprocessing
from harness.graph import formats
from resnet50.models import get_model


def _first(n, folder=SAMPLES_250):
    return sorted(os.listdir(folder))[:n]


def _map(tmp_path, names, name="map.txt", label=1):
    path = tmp_path / name
    path.write_text("".join(f"{n} {label}\n" for n in names))
    return imagenet.read_map(str(path))


# ------------------------------------------------------------------------------------------------------------
# Recipes
# Pinned once from the MLCommons reference arithmetic (cv2.imread, BGR->RGB, INTER_AREA to shorter side 256 with
# int() of the longer side, int() centre-crop offsets, float32 minus [123.68, 116.78, 103.94]); the pixel at
# [1, 100, 100] of the first image is checked by hand below.
RESNET50_PINNED = {
    "n01440764_tench.JPEG": {"shape_in": (375, 500), "mean": (-0.5165, 5.2714, -6.5342),
                             "px": {(0, 0, 0): -48.68, (1, 100, 100): 19.22, (2, 223, 223): -10.94}},
    "n01494475_hammerhead.JPEG": {"shape_in": (500, 333), "mean": (27.4841, 15.6340, 17.5058),
                                  "px": {(0, 0, 0): 77.32, (1, 100, 100): -39.78, (2, 223, 223): -12.94}},
}


def test_resnet50_recipe_pinned_on_real_images():
    for name, want in RESNET50_PINNED.items():
        path = os.path.join(SAMPLES_250, name)
        out = imagenet.preprocess_file(path, "mlperf_resnet50")
        assert out.shape == (3, 224, 224) and out.dtype == np.float32
        assert imagenet.load_rgb(path).shape[:2] == want["shape_in"]
        np.testing.assert_allclose(out.reshape(3, -1).mean(1, dtype=np.float64), want["mean"], atol=5e-4)
        for index, value in want["px"].items():
            assert out[index] == pytest.approx(value, abs=1e-4), (name, index)


def test_resnet50_area_pixel_by_hand():
    """One output pixel recomputed by hand: the area average of the source pixels it covers (375x500 -> 256x341,
    crop offsets 16 and 58), rounded as OpenCV rounds to uint8, minus the green mean."""
    path = os.path.join(SAMPLES_250, "n01440764_tench.JPEG")
    rgb = imagenet.load_rgb(path).astype(np.float64)
    h, w = rgb.shape[:2]
    nh, nw = 256, int(256 * w / h)
    y, x = 100 + int((nh - 224) / 2), 100 + int((nw - 224) / 2)
    sy, sx = h / nh, w / nw

    def weights(lo, hi, n):
        idx = np.arange(int(np.floor(lo)), min(int(np.ceil(hi)), n))
        return idx, np.clip(np.minimum(idx + 1, hi) - np.maximum(idx, lo), 0, None)

    rows, wy = weights(y * sy, (y + 1) * sy, h)
    cols, wx = weights(x * sx, (x + 1) * sx, w)
    area = (wy[:, None] * wx[None, :] * rgb[rows][:, cols, 1]).sum() / (wy.sum() * wx.sum())
    got = imagenet.preprocess_file(path, "mlperf_resnet50")[1, 100, 100] + np.float32(116.78)
    assert abs(got - area) <= 0.5 + 1e-6 and got == round(got)


def test_ofa_recipe_is_pil_bilinear_202_crop_176_with_round():
    """Alibaba's recipe: PIL bilinear to shorter side 202, centre crop 176 with round() offsets, /255, mean/std."""
    from PIL import Image
    r = imagenet.RECIPES["ofa_autosinian"]
    assert (r["decoder"], r["interpolation"], r["resize_shorter"], r["crop"], r["offsets"]) == \
        ("pil", "bilinear", 202, 176, "round")
    path = os.path.join(SAMPLES_250, "n01440764_tench.JPEG")
    with Image.open(path) as im:
        im = im.convert("RGB").resize((269, 202), Image.BILINEAR)       # 500x375 -> int(202 * 500 / 375) = 269
    left, top = int(round((269 - 176) / 2.0)), int(round((202 - 176) / 2.0))   # 46 (round(46.5) = 46), 13
    ref = np.asarray(im.crop((left, top, left + 176, top + 176)), np.float32) / np.float32(255)
    ref = (ref - np.asarray(r["mean"], np.float32)) / np.asarray(r["std"], np.float32)
    np.testing.assert_array_equal(imagenet.preprocess_file(path, "ofa_autosinian"), ref.transpose(2, 0, 1))
    # round() against int() in the offsets: a 203-pixel-wide resize puts the crop at round(13.5) = 14, not 13.
    img = np.zeros((202, 203, 3), np.uint8)
    img[:, 14:] = 255
    out = imagenet.apply_recipe(img, "ofa_autosinian")
    assert out[0, 0, 0] == pytest.approx((1 - r["mean"][0]) / r["std"][0], abs=1e-5)


def test_ofa_input_scale_is_alibabas():
    import struct
    assert get_model("ofa-autosinian-is176").input_scale == struct.unpack("!f", bytes.fromhex("3caa5293"))[0]
    assert get_model("ofa-autosinian-is176").input_scale == pytest.approx(0.0207913, abs=1e-7)


# ------------------------------------------------------------------------------------------------------------
# Formats
def test_four_formats_in_one_pass(tmp_path):
    import onnxruntime as ort
    from onnx import TensorProto, helper
    spec = get_model("efficientnet-lite0")
    image_map = _map(tmp_path, _first(6))
    result = preprocessing.preprocess(spec, image_map, SAMPLES_250, str(tmp_path / "p"), formats=formats.FORMATS,
                                 workers=2, progress=False)
    assert result.done_now == 6 and set(result.paths) == set(formats.FORMATS)
    sets = {f: preprocessing.load_preprocessed(spec, image_map, str(tmp_path / "p"), f) for f in formats.FORMATS}
    fp32 = np.asarray(sets["fp32_nchw"].array)
    # int8_linear is exactly ONNX QuantizeLinear(x, input_scale, 0).
    graph = helper.make_graph(
        [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"])], "q",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(fp32.shape))],
        [helper.make_tensor_value_info("q", TensorProto.INT8, list(fp32.shape))],
        [helper.make_tensor("s", TensorProto.FLOAT, [], [spec.input_scale]),
         helper.make_tensor("z", TensorProto.INT8, [], [0])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    q = ort.InferenceSession(model.SerializeToString()).run(None, {"x": fp32})[0]
    lin = np.asarray(sets["int8_linear"].array)
    np.testing.assert_array_equal(lin, q)
    assert lin.dtype == np.int8 and np.abs(lin.astype(np.int32) - np.rint(fp32 * 128)).max() <= 1  # (x-127)/128
    np.testing.assert_array_equal(sets["int8_nhwc"].array, lin.transpose(0, 2, 3, 1))
    chw4 = np.asarray(sets["int8_chw4"].array)
    assert chw4.shape == (6, 1, 224, 224, 4)
    np.testing.assert_array_equal(chw4[:, 0, :, :, :3], lin.transpose(0, 2, 3, 1))
    assert not chw4[..., 3].any()
    for f, s in sets.items():
        assert s.manifest["checksum"] == preprocessing.array_checksum(s.array), f
        assert (s.manifest.get("input_scale") == spec.input_scale) == (f != "fp32_nchw")


# ------------------------------------------------------------------------------------------------------------
# Parallel, idempotent, resumable
def test_idempotent_and_resumable_after_an_interruption(tmp_path, monkeypatch):
    spec = get_model("efficientnet-lite0")
    image_map = _map(tmp_path, _first(48))
    ref = preprocessing.preprocess(spec, image_map, SAMPLES_250, str(tmp_path / "ref"), workers=2, progress=False)
    ref_manifest = preprocessing.load_preprocessed(spec, image_map, str(tmp_path / "ref")).manifest
    again = preprocessing.preprocess(spec, image_map, SAMPLES_250, str(tmp_path / "ref"), workers=2, progress=False)
    assert again.done_now == 0 and again.paths == ref.paths          # idempotent: nothing redone

    # Interrupt a run after 20 images (commits after every batch of results, so some rows are on disk).
    base = str(tmp_path / "run")
    monkeypatch.setattr(preprocessing, "COMMIT_SECONDS", 0.0)

    def interrupt(self, done, force=False):
        if done >= 20:
            raise KeyboardInterrupt

    monkeypatch.setattr(preprocessing.Progress, "update", interrupt)
    with pytest.raises(KeyboardInterrupt):
        preprocessing.preprocess(spec, image_map, SAMPLES_250, base, workers=2, chunk=4, progress=False)
    monkeypatch.undo()
    npy, _ = preprocessing.array_paths(base, spec, "fp32_nchw", image_map)
    assert not os.path.exists(npy) and os.path.exists(npy + ".partial")   # never looks complete
    with pytest.raises(HarnessError, match="interrupted run left a partial array"):
        preprocessing.load_preprocessed(spec, image_map, base)
    done_rows = int((np.fromfile(npy + ".partial.done", np.int64) >= 0).sum())
    assert 20 <= done_rows < 48
    resumed = preprocessing.preprocess(spec, image_map, SAMPLES_250, base, workers=2, progress=False)
    assert resumed.done_now == 48 - done_rows                          # only the rest was done
    data = preprocessing.load_preprocessed(spec, image_map, base)
    assert data.manifest["checksum"] == ref_manifest["checksum"] == preprocessing.array_checksum(data.array)
    np.testing.assert_array_equal(data.array, np.load(ref.paths["fp32_nchw"]))
    assert not any(p.endswith((".partial", ".partial.done", ".partial.json")) for p in os.listdir(os.path.dirname(npy)))


def test_a_stale_partial_of_other_inputs_is_not_resumed(tmp_path):
    spec = get_model("efficientnet-lite0")
    image_map = _map(tmp_path, _first(4))
    npy, _ = preprocessing.array_paths(str(tmp_path / "p"), spec, "fp32_nchw", image_map)
    os.makedirs(os.path.dirname(npy))
    np.lib.format.open_memmap(npy + ".partial", mode="w+", dtype=np.float32, shape=(4, 3, 224, 224))[:] = 7
    np.zeros(4, np.int64).tofile(npy + ".partial.done")              # claims every row done...
    with open(npy + ".partial.json", "w") as f:
        json.dump({"model": "something else"}, f)                     # ...of other inputs
    result = preprocessing.preprocess(spec, image_map, SAMPLES_250, str(tmp_path / "p"), progress=False)
    assert result.done_now == 4
    assert not (np.load(npy) == 7).all(axis=(1, 2, 3)).any()


# ------------------------------------------------------------------------------------------------------------
# Bad input
def test_corrupt_and_wrong_mode_images(tmp_path):
    from PIL import Image
    spec = get_model("resnet50")
    data_dir = tmp_path / "images"
    data_dir.mkdir()
    src = os.path.join(SAMPLES_250, "n01440764_tench.JPEG")
    shutil.copy(src, data_dir / "rgb.JPEG")
    with Image.open(src) as im:
        im.convert("L").save(data_dir / "grey.JPEG", quality=95)
        im.convert("CMYK").save(data_dir / "cmyk.JPEG", quality=95)
    raw = open(src, "rb").read()
    (data_dir / "truncated.JPEG").write_bytes(raw[:len(raw) // 2])
    (data_dir / "garbage.JPEG").write_bytes(b"this is not an image" * 10)
    good = _map(tmp_path, ["rgb.JPEG", "grey.JPEG", "cmyk.JPEG"], "good.txt")
    preprocessing.preprocess(spec, good, str(data_dir), str(tmp_path / "p"), progress=False)
    arr = np.asarray(preprocessing.load_preprocessed(spec, good, str(tmp_path / "p")).array)
    rgb, grey, cmyk = arr
    mean = np.asarray([123.68, 116.78, 103.94], np.float32)[:, None, None]
    plain = grey + mean
    np.testing.assert_array_equal(plain[0], plain[1])                   # greyscale: three equal channels
    np.testing.assert_array_equal(plain[1], plain[2])
    assert np.abs(cmyk - rgb).mean() < 3.0                              # CMYK converted, not rejected

    bad = _map(tmp_path, ["rgb.JPEG", "truncated.JPEG", "garbage.JPEG"], "bad.txt")
    with pytest.raises(HarnessError) as e:
        preprocessing.preprocess(spec, bad, str(data_dir), str(tmp_path / "p"), progress=False)
    msg = str(e.value)
    assert "2 of 3 images could not be preprocessed" in msg and "truncated.JPEG (truncated" in msg
    assert "garbage.JPEG (not a readable image)" in msg and "--allow_missing" in msg
    result = preprocessing.preprocess(spec, bad, str(data_dir), str(tmp_path / "p"), allow_missing=True, progress=False)
    assert set(result.skipped) == {"truncated.JPEG", "garbage.JPEG"}
    data = preprocessing.load_preprocessed(spec, bad, str(tmp_path / "p"))
    assert data.files == ["rgb.JPEG"] and len(data.array) == 1 and set(data.skipped) == set(result.skipped)
    # Without --allow_missing the skipped set is not taken as up to date: the error comes back.
    with pytest.raises(HarnessError, match="could not be preprocessed"):
        preprocessing.preprocess(spec, bad, str(data_dir), str(tmp_path / "p"), progress=False)


def test_manifest_that_does_not_match_the_model_or_format(tmp_path):
    spec = get_model("efficientnet-lite0")
    image_map = _map(tmp_path, _first(2))
    base = str(tmp_path / "p")
    preprocessing.preprocess(spec, image_map, SAMPLES_250, base, progress=False)
    src = os.path.dirname(preprocessing.array_paths(base, spec, "fp32_nchw", image_map)[0])
    other = get_model("resnet50-synthetic")                            # same 3x224x224 input, other recipe
    shutil.copytree(src, os.path.dirname(preprocessing.array_paths(base, other, "fp32_nchw", image_map)[0]))
    with pytest.raises(HarnessError) as e:
        preprocessing.load_preprocessed(other, image_map, base)
    assert "resnet50-synthetic/fp32_nchw/map.manifest.json" in str(e.value)
    assert "model='efficientnet-lite0'" in str(e.value)
    shutil.copytree(src, os.path.dirname(preprocessing.array_paths(base, spec, "int8_linear", image_map)[0]))
    with pytest.raises(HarnessError) as e:
        preprocessing.load_preprocessed(spec, image_map, base, "int8_linear")
    assert "int8_linear/map.manifest.json" in str(e.value) and "format='fp32_nchw'" in str(e.value)


def test_preprocess_data_cal_only_val_only_and_summary(tmp_path):
    """Through code/main.py: --cal_only does the calibration list only (fp32), --val_only the map in --formats."""
    names = _first(5)
    cal = tmp_path / "cal.txt"
    cal.write_text("".join(f"{n}\n" for n in names[:3]))
    val = tmp_path / "val.txt"
    val.write_text("".join(f"{n} 0\n" for n in names) + "missing.JPEG 0\n")
    common = ["--action=preprocess_data", "--system_name=CPU", "--model=efficientnet-lite0",
              f"--data_dir={SAMPLES_250}", f"--preprocessed_data_dir={tmp_path}/p", f"--calib_data_map={cal}",
              f"--map_path={val}"]
    r = run_main(*common, "--cal_only")
    assert r.returncode == 0, r.stderr
    folder = tmp_path / "p" / "imagenet" / "efficientnet-lite0"
    assert sorted(os.listdir(folder / "fp32_nchw")) == [".lock", "cal.manifest.json", "cal.npy"]  # .lock: the lock
    r = run_main(*common, "--val_only", "--formats=int8_chw4")
    assert r.returncode != 0 and "1 of 6 images" in r.stderr and "missing.JPEG" in r.stderr
    assert "Traceback" not in r.stderr
    r = run_main(*common, "--val_only", "--formats=int8_chw4", "--allow_missing")
    assert r.returncode == 0, r.stderr
    assert "skipped" in r.stdout and "missing.JPEG" in r.stdout
    with open(folder / "int8_chw4" / "val.manifest.json") as f:
        manifest = json.load(f)
    assert manifest["skipped"] == {"missing.JPEG": "missing"} and manifest["shape"] == [5, 1, 224, 224, 4]
    assert run_main(*common, "--cal_only", "--val_only").returncode != 0


def test_run_summary_records_skipped_images(tmp_path):
    """A set preprocessed with --allow_missing is run as it is, and the run summary names what it lacks."""
    names = _first(4, VAL_1300)
    val = tmp_path / "val.txt"
    val.write_text("".join(f"{n} 1\n" for n in names) + "ILSVRC2012_val_99999999.JPEG 1\n")
    common = ["--system_name=CPU", "--model=efficientnet-lite0", f"--map_path={val}",
              f"--preprocessed_data_dir={tmp_path}/p"]
    r = run_main("--action=preprocess_data", *common, f"--data_dir={VAL_1300}", "--val_only", "--allow_missing")
    assert r.returncode == 0, r.stderr
    r = run_main("--action=run_harness", *common, "--backend=null", "--min_duration=100", "--min_query_count=4",
                 f"--log_dir={tmp_path}/logs")
    assert r.returncode == 0, r.stderr
    assert "1 image(s) skipped" in r.stdout and "ILSVRC2012_val_99999999.JPEG" in r.stdout
    (stamp,) = os.listdir(tmp_path / "logs")
    with open(tmp_path / "logs" / stamp / "perf_harness_summary.json") as f:
        dataset = json.load(f)["CPU"]["resnet50"]["Offline"]["dataset"]
    assert dataset["skipped"] == {"ILSVRC2012_val_99999999.JPEG": "missing"}
    assert dataset["samples"] == 4 and dataset["map_images"] == 5


def test_samples_250_map_names_the_shared_files():
    assert len(imagenet.read_map(SAMPLES_MAP_250).files) == 250


# ------------------------------------------------------------------------------------------------------------
# Corrupt JPEG data, storage errors, verification (issue 11)
CORRUPT_SRC = os.path.join(VAL_1300, "ILSVRC2012_val_00000347.JPEG")


def _corrupt_mid_stream(src, dst, frac=0.3):
    """A copy of a real JPEG with 8 bytes of its entropy-coded data flipped (the markers left alone): OpenCV still
    decodes it (wrong pixels), libjpeg only warns "Corrupt JPEG data"."""
    data = bytearray(open(src, "rb").read())
    sos = data.find(b"\xff\xda")
    start = sos + 2 + int.from_bytes(data[sos + 2:sos + 4], "big")
    p = start + int((len(data) - start) * frac)
    for k in range(8):
        if data[p + k] != 0xFF and data[p + k - 1] != 0xFF:
            data[p + k] ^= 0x5A
    open(dst, "wb").write(bytes(data))
    return dst


@pytest.mark.parametrize("recipe", ["mlperf_resnet50", "ofa_autosinian"])
def test_jpeg_corrupt_mid_stream_is_an_error(tmp_path, recipe):
    bad = _corrupt_mid_stream(CORRUPT_SRC, str(tmp_path / "bad.JPEG"))
    import cv2
    assert cv2.imdecode(np.fromfile(bad, np.uint8), cv2.IMREAD_COLOR) is not None    # OpenCV alone accepts it
    with pytest.raises(ValueError, match=r"corrupt JPEG data \(libjpeg: Corrupt JPEG data"):
        imagenet.preprocess_file(bad, recipe)
    imagenet.preprocess_file(CORRUPT_SRC, recipe)                       # the original is fine


def test_jpeg_corrupt_mid_stream_in_a_run(tmp_path):
    spec = get_model("resnet50")
    data_dir = tmp_path / "images"
    data_dir.mkdir()
    shutil.copy(CORRUPT_SRC, data_dir / "good.JPEG")
    _corrupt_mid_stream(CORRUPT_SRC, str(data_dir / "bad.JPEG"))
    m = _map(tmp_path, ["good.JPEG", "bad.JPEG"])
    with pytest.raises(HarnessError) as e:
        preprocessing.preprocess(spec, m, str(data_dir), str(tmp_path / "p"), workers=2, progress=False)
    assert "1 of 2 images could not be preprocessed" in str(e.value) and "bad.JPEG (corrupt JPEG data" in str(e.value)
    result = preprocessing.preprocess(spec, m, str(data_dir), str(tmp_path / "p"), allow_missing=True,
                                      progress=False)
    assert list(result.skipped) == ["bad.JPEG"] and "Corrupt JPEG data" in result.skipped["bad.JPEG"]


def test_disk_full_while_writing_rows_is_a_storage_error(tmp_path, monkeypatch):
    """ENOSPC from pwrite (inherited by the forked workers) is reported as a full disk naming the array, never as
    images that could not be preprocessed; the rows already on disk are kept and the next run resumes."""
    import errno
    spec = get_model("efficientnet-lite0")
    m = _map(tmp_path, _first(8))
    base = str(tmp_path / "p")
    real = os.pwrite
    calls = {"n": 0}

    def full(fd, data, offset):
        calls["n"] += 1
        if calls["n"] > 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd, data, offset)

    monkeypatch.setattr(os, "pwrite", full)
    with pytest.raises(HarnessError) as e:
        preprocessing.preprocess(spec, m, SAMPLES_250, base, workers=1, chunk=1, progress=False)
    monkeypatch.undo()
    msg = str(e.value)
    npy, _ = preprocessing.array_paths(base, spec, "fp32_nchw", m)
    assert "the disk is full" in msg and npy + ".partial" in msg and "could not be preprocessed" not in msg
    assert isinstance(e.value, preprocessing.StorageError)
    done = int((np.fromfile(npy + ".partial.done", np.int64) >= 0).sum())
    resumed = preprocessing.preprocess(spec, m, SAMPLES_250, base, workers=1, progress=False)
    assert resumed.done_now == 8 - done
    data = preprocessing.load_preprocessed(spec, m, base, verify=True)
    np.testing.assert_array_equal(data.array[5], imagenet.preprocess_file(os.path.join(SAMPLES_250, m.files[5]),
                                                                          spec.recipe))


def test_short_writes_are_continued(tmp_path, monkeypatch):
    spec = get_model("efficientnet-lite0")
    m = _map(tmp_path, _first(3))
    real = os.pwrite
    monkeypatch.setattr(os, "pwrite", lambda fd, data, offset: real(fd, memoryview(data)[:4097], offset))
    preprocessing.preprocess(spec, m, SAMPLES_250, str(tmp_path / "p"), workers=1, progress=False)
    monkeypatch.undo()
    data = preprocessing.load_preprocessed(spec, m, str(tmp_path / "p"), verify=True)
    for i, name in enumerate(m.files):
        np.testing.assert_array_equal(data.array[i], imagenet.preprocess_file(os.path.join(SAMPLES_250, name),
                                                                              spec.recipe))


def test_rows_that_read_back_differently_are_refused(tmp_path, monkeypatch):
    spec = get_model("efficientnet-lite0")
    m = _map(tmp_path, _first(2))
    monkeypatch.setattr(os, "pread", lambda fd, n, offset: bytes(n))        # the storage "lost" the rows
    with pytest.raises(preprocessing.StorageError, match="row 0 .* read back differs from what was written"):
        preprocessing.preprocess(spec, m, SAMPLES_250, str(tmp_path / "p"), workers=1, progress=False)


def test_file_size_limit_in_a_subprocess(tmp_path):
    """RLIMIT_FSIZE (the kernel's EFBIG, as a full disk would stop a write): a clear storage error with the path."""
    import subprocess
    import sys
    m = tmp_path / "map.txt"
    m.write_text("".join(f"{n} 1\n" for n in _first(4)))
    script = (
        "import resource, signal, sys\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))\n"
        "sys.path.insert(0, 'code')\n"
        "from harness.core.errors import HarnessError\n"
        "from resnet50 import imagenet, preprocessing\n"
        "from resnet50.models import get_model\n"
        "try:\n"
        f"    preprocessing.preprocess(get_model('resnet50'), imagenet.read_map({str(m)!r}), {SAMPLES_250!r}, "
        f"{str(tmp_path / 'p')!r}, workers=1, progress=False)\n"
        "except HarnessError as e:\n"
        "    print('ERROR', e); sys.exit(3)\n")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    r = subprocess.run([sys.executable, "-c", script], cwd=root, capture_output=True, text=True, timeout=300)
    assert r.returncode == 3, r.stdout + r.stderr
    assert "file size limit" in r.stdout and "map.npy.partial" in r.stdout and "could not be preprocessed" not in r.stdout


def test_read_only_output_folder_is_reported_as_such(tmp_path, monkeypatch):
    """Tests run as root, where chmod does not stop writes: the file system's EROFS is simulated."""
    import errno
    spec = get_model("efficientnet-lite0")
    m = _map(tmp_path, _first(2))
    real = os.open

    def ro(path, flags, *a, **k):
        if str(path).startswith(str(tmp_path / "p")) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            raise OSError(errno.EROFS, "Read-only file system", path)
        return real(path, flags, *a, **k)

    monkeypatch.setattr(os, "open", ro)
    with pytest.raises(preprocessing.StorageError) as e:
        preprocessing.preprocess(spec, m, SAMPLES_250, str(tmp_path / "p"), progress=False)
    assert "the file system is read-only" in str(e.value) and str(tmp_path / "p") in str(e.value)


def test_compaction_failure_leaves_nothing_and_leftovers_are_removed(tmp_path, monkeypatch):
    spec = get_model("efficientnet-lite0")
    names = _first(3)
    m = _map(tmp_path, names + ["missing.JPEG"])
    base = str(tmp_path / "p")
    npy, _ = preprocessing.array_paths(base, spec, "fp32_nchw", m)

    real = preprocessing.pwrite_all

    def fail(fd, data, offset, path):
        if path.endswith(".compact"):
            raise preprocessing.storage_error(OSError(28, "No space left on device"), path)
        real(fd, data, offset, path)

    monkeypatch.setattr(array_store, "pwrite_all", fail)
    with pytest.raises(preprocessing.StorageError, match=r"\.partial\.compact: writing failed: the disk is full"):
        preprocessing.preprocess(spec, m, SAMPLES_250, base, allow_missing=True, workers=1, progress=False)
    assert not os.path.exists(npy + ".partial.compact") and not os.path.exists(npy)
    monkeypatch.undo()
    open(npy + ".partial.compact", "wb").close()                       # as a killed run would leave it
    preprocessing.preprocess(spec, m, SAMPLES_250, base, allow_missing=True, workers=1, progress=False)
    assert not os.path.exists(npy + ".partial.compact") and len(np.load(npy)) == 3
    open(npy + ".partial.compact", "wb").close()
    assert preprocessing.preprocess(spec, m, SAMPLES_250, base, allow_missing=True, progress=False).done_now == 0
    assert not os.path.exists(npy + ".partial.compact")


def test_a_damaged_array_is_found_on_load_and_preprocessed_again(tmp_path, capsys):
    spec = get_model("efficientnet-lite0")
    m = _map(tmp_path, _first(6))
    base = str(tmp_path / "p")
    preprocessing.preprocess(spec, m, SAMPLES_250, base, progress=False)
    npy, manifest_path = preprocessing.array_paths(base, spec, "fp32_nchw", m)
    st = os.stat(npy)
    arr = np.load(npy, mmap_mode="r+")
    arr[4, 0, :8] = 0                                                   # part of row 4 zeroed
    arr.flush()
    del arr
    os.utime(npy, ns=(st.st_atime_ns, st.st_mtime_ns))                  # even with its stamp unchanged
    with pytest.raises(HarnessError) as e:
        preprocessing.load_preprocessed(spec, m, base)
    assert "1 of 6 rows checked differ" in str(e.value) and "rows 4" in str(e.value)
    assert "make preprocess_data" in str(e.value)
    result = preprocessing.preprocess(spec, m, SAMPLES_250, base, progress=True)
    assert result.done_now == 6 and "Preprocessing it again" in capsys.readouterr().out
    preprocessing.load_preprocessed(spec, m, base, verify=True)
    # An edited manifest (CRCs no longer matching its checksum) is refused too.
    manifest = json.load(open(manifest_path))
    manifest["row_crc32"][0] ^= 1
    json.dump(manifest, open(manifest_path, "w"))
    with pytest.raises(HarnessError, match="row CRCs do not match its checksum"):
        preprocessing.load_preprocessed(spec, m, base)


def test_a_changed_file_is_verified_in_full(tmp_path, capsys):
    spec = get_model("efficientnet-lite0")
    m = _map(tmp_path, _first(3))
    base = str(tmp_path / "p")
    preprocessing.preprocess(spec, m, SAMPLES_250, base, progress=False)
    npy, _ = preprocessing.array_paths(base, spec, "fp32_nchw", m)
    shutil.copy(npy, npy + ".copy")
    os.replace(npy + ".copy", npy)                                      # same bytes, another inode and mtime
    preprocessing.load_preprocessed(spec, m, base)
    assert "checking the CRC-32 of all 3 rows (the file changed since it was written)" in capsys.readouterr().out


def test_preprocess_data_restamps_a_copied_array_after_verifying_it(tmp_path, capsys):
    spec = get_model("efficientnet-lite0")
    m = _map(tmp_path, _first(3))
    base = str(tmp_path / "p")
    preprocessing.preprocess(spec, m, SAMPLES_250, base, progress=False)
    npy, _ = preprocessing.array_paths(base, spec, "fp32_nchw", m)
    shutil.copy(npy, npy + ".copy")
    os.replace(npy + ".copy", npy)
    assert preprocessing.preprocess(spec, m, SAMPLES_250, base, progress=True).done_now == 0
    assert "stamp updated" in capsys.readouterr().out
    preprocessing.load_preprocessed(spec, m, base)
    assert "checking the CRC-32 of all" not in capsys.readouterr().out          # sampled again


@pytest.mark.parametrize("code,cause", [(13, "permission denied"), (30, "the file system is read-only"),
                                        (28, "the disk is full")])
def test_storage_errors_name_the_cause_and_path(tmp_path, monkeypatch, code, cause):
    spec = get_model("efficientnet-lite0")
    m = _map(tmp_path, _first(2))
    real = os.makedirs

    def fail(path, *a, **k):
        if str(path).startswith(str(tmp_path / "p")):
            raise OSError(code, os.strerror(code), path)
        return real(path, *a, **k)

    monkeypatch.setattr(os, "makedirs", fail)
    with pytest.raises(preprocessing.StorageError) as e:
        preprocessing.preprocess(spec, m, SAMPLES_250, str(tmp_path / "p"), progress=False)
    assert cause in str(e.value) and str(tmp_path / "p") in str(e.value) and "decoded" not in str(e.value)


def test_preprocess_refuses_missing_images_unless_allowed(tmp_path):
    from resnet50.models import get_model
    names = sorted(os.listdir(VAL_1300))[:3]
    m = tmp_path / "map.txt"
    m.write_text("".join(f"{n} 1\n" for n in names) + "ILSVRC2012_val_99999999.JPEG 3\n")
    spec = get_model("efficientnet-lite0")
    with pytest.raises(HarnessError, match=r"1 of 4 images .* missing .*ILSVRC2012_val_99999999.JPEG"):
        preprocessing.preprocess(spec, imagenet.read_map(str(m)), VAL_1300, str(tmp_path / "p"), progress=False)
    npy = preprocessing.preprocess(spec, imagenet.read_map(str(m)), VAL_1300, str(tmp_path / "p"), allow_missing=True,
                              progress=False).paths["fp32_nchw"]
    data = preprocessing.load_preprocessed(spec, imagenet.read_map(str(m)), str(tmp_path / "p"))
    assert data.array.shape == (3, 3, 224, 224) and data.path == npy
    assert data.manifest["skipped"] == {"ILSVRC2012_val_99999999.JPEG": "missing"}
