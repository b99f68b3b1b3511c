"""Images that decode but cannot be used, and one that looks damaged but is not (code/resnet50/imagenet.py):
too small for the crop, absurd aspect ratios and sizes above the pixel limit are refused naming their size before any
huge resize; a JPEG with bytes after its end-of-image marker is accepted (OpenCV and Pillow decode it the same).
Images are made with OpenCV and Pillow in tmp_path."""
import os

import cv2
import numpy as np
import pytest
from PIL import Image

from conftest import SAMPLES_250
from resnet50 import imagenet

RECIPES = ("mlperf_resnet50", "ofa_autosinian", "efficientnet_lite")


def _png(tmp_path, w, h, name="img.png"):
    path = str(tmp_path / name)
    cv2.imwrite(path, np.full((h, w, 3), 128, np.uint8))
    return path


@pytest.mark.parametrize("recipe", ["efficientnet_lite"])
def test_a_1x1_image_is_too_small_for_the_crop_with_its_size(tmp_path, recipe):
    with pytest.raises(ValueError, match=r"^1x1 pixels: too small for the recipe's 224x224 center crop"):
        imagenet.preprocess_file(_png(tmp_path, 1, 1), recipe)


@pytest.mark.parametrize("recipe", RECIPES)
def test_a_1x20000_image_is_refused_with_its_size_not_as_undecodable(tmp_path, recipe):
    with pytest.raises(ValueError, match=r"^20000x1 pixels: ") as e:
        imagenet.preprocess_file(_png(tmp_path, 20000, 1), recipe)
    assert "aspect ratio of 20000:1" in str(e.value) or "too small" in str(e.value)


@pytest.mark.parametrize("recipe", RECIPES)
def test_an_image_above_the_pixel_limit_is_refused_from_its_header(tmp_path, recipe, monkeypatch):
    """The limit is lowered so that a small PNG is above it: refused before decoding (the header's size)."""
    monkeypatch.setattr(imagenet, "MAX_PIXELS", 300 * 300)
    path = _png(tmp_path, 400, 300)
    with pytest.raises(ValueError, match=r"^400x300 pixels \(0 megapixels\) is above the limit"):
        imagenet.preprocess_file(path, recipe)


def test_the_pixel_limit_is_checked_before_decoding(tmp_path, monkeypatch):
    """A header claiming 20000x20000 (400 megapixels, beyond what Pillow opens): refused, nothing is decoded."""
    path = str(tmp_path / "big.png")
    Image.new("L", (20000, 20000)).save(path, optimize=True)
    assert os.path.getsize(path) < 1_000_000
    monkeypatch.setattr(imagenet, "_geometry_opencv", lambda *a: pytest.fail("resized a refused image"))
    monkeypatch.setattr(cv2, "imdecode", lambda *a: pytest.fail("decoded a refused image"))
    for recipe in RECIPES:
        with pytest.raises(ValueError, match=r"above the limit of 100 megapixels .*400000000 pixels"):
            imagenet.preprocess_file(path, recipe)


@pytest.mark.parametrize("recipe", RECIPES)
def test_a_jpeg_with_bytes_after_its_end_marker_is_accepted(tmp_path, recipe):
    src = os.path.join(SAMPLES_250, sorted(os.listdir(SAMPLES_250))[0])
    path = str(tmp_path / "trailer.JPEG")
    with open(src, "rb") as f, open(path, "wb") as g:
        g.write(f.read() + b"trailing bytes of some camera's own" * 8)
    np.testing.assert_array_equal(imagenet.preprocess_file(path, recipe), imagenet.preprocess_file(src, recipe))


def test_a_truncated_jpeg_is_still_refused(tmp_path):
    src = os.path.join(SAMPLES_250, sorted(os.listdir(SAMPLES_250))[0])
    data = open(src, "rb").read()
    path = str(tmp_path / "cut.JPEG")
    open(path, "wb").write(data[:len(data) // 2])
    for recipe in RECIPES:
        with pytest.raises(ValueError, match="truncated or corrupt JPEG|corrupt JPEG data"):
            imagenet.preprocess_file(path, recipe)
