"""Image maps and the preprocessing recipes (code/resnet50/imagenet.py)."""
import os

import numpy as np
import pytest

from conftest import SAMPLES_250
from harness.core.errors import HarnessError
from resnet50 import imagenet


def test_read_map_errors(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text("a.JPEG 1\nb.JPEG one two\n")
    with pytest.raises(HarnessError, match="bad.txt:2"):
        imagenet.read_map(str(bad))
    nolabel = tmp_path / "cal.txt"
    nolabel.write_text("a.JPEG\n")
    assert imagenet.read_map(str(nolabel), need_labels=False).labels is None
    with pytest.raises(HarnessError, match="has no label"):
        imagenet.read_map(str(nolabel))
    with pytest.raises(HarnessError, match="does not exist"):
        imagenet.read_map(str(tmp_path / "missing.txt"))


def test_resnet50_recipe_by_hand():
    """A flat colour comes out as colour - mean on every pixel; the shorter side goes to 256, then a centre 224."""
    img = np.zeros((300, 400, 3), np.uint8)
    img[:] = (200, 100, 50)
    out = imagenet.apply_recipe(img, "mlperf_resnet50")
    assert out.shape == (3, 224, 224) and out.dtype == np.float32
    np.testing.assert_allclose(out[:, 0, 0], [200 - 123.68, 100 - 116.78, 50 - 103.94], atol=1e-4)
    # A left/right split: the crop of a 300x400 image resized to 256x341 keeps columns 58..281 of the resized one.
    img[:, :200] = 0
    out = imagenet.apply_recipe(img, "mlperf_resnet50")
    boundary = 341 / 2 - 58          # the split's position inside the crop, in resized pixels
    assert out[0, 100, int(boundary) - 3] == pytest.approx(-123.68, abs=1e-3)
    assert out[0, 100, int(boundary) + 3] == pytest.approx(200 - 123.68, abs=1e-3)


def test_resnet50_recipe_pinned_on_a_real_image():
    """Pinned values on a real full-size image (hand-checked once against the reference's arithmetic)."""
    path = os.path.join(SAMPLES_250, sorted(os.listdir(SAMPLES_250))[0])
    out = imagenet.preprocess_file(path, "mlperf_resnet50")
    assert out.shape == (3, 224, 224)
    rgb = imagenet.load_rgb(path)
    import cv2
    h, w = rgb.shape[:2]
    nh, nw = (256, int(256 * w / h)) if h <= w else (int(256 * h / w), 256)
    ref = cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_AREA)
    top, left = int((nh - 224) / 2), int((nw - 224) / 2)
    ref = ref[top:top + 224, left:left + 224].astype(np.float32) - np.array([123.68, 116.78, 103.94], np.float32)
    np.testing.assert_array_equal(out, ref.transpose(2, 0, 1))
