"""ImageNet facts: the val/cal maps and the per-model preprocessing recipes (image file -> float32 CHW).

The sample formats live in harness/graph/formats.py; preprocessing into arrays in resnet50/preprocessing.py, with the
manifests in resnet50/manifest.py, the array store in resnet50/array_store.py and the worker pool in
resnet50/preprocess_pool.py.
"""
from __future__ import annotations

import hashlib
import os
import sys
import tempfile
from dataclasses import dataclass
from typing import Optional

import numpy as np

from harness.core import env
from harness.core.paths import DATA_DIR, REPO_ROOT
from harness.core.errors import HarnessError

# ----------------------------------------------------------------------------------------------------------------
# Maps
@dataclass(frozen=True)
class ImageMap:
    path: str
    files: list[str]
    labels: Optional[np.ndarray]   # int32 0..999, or None for a list without labels (calibration lists)
    md5: str

    @property
    def name(self) -> str:
        return os.path.splitext(os.path.basename(self.path))[0]


def read_map(path: str, need_labels: bool = True) -> ImageMap:
    """Read `<file> <label>` lines (MLPerf val_map.txt) or bare file names (cal lists).

    UTF-8, with or without a byte-order mark; every other problem is a one-line error naming the file and line:
    another encoding, a label that is not ASCII digits (`²`, `٣`), a file listed twice (the same label: a duplicate
    that would count twice in accuracy; another label: a conflict)."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise HarnessError(f"Image map {path} does not exist.") from None
    except OSError as e:
        raise HarnessError(f"Image map {path} cannot be read ({e.strerror}).") from None
    text_bytes = raw[3:] if raw.startswith(b"\xef\xbb\xbf") else raw
    files, labels = [], []
    first_line: dict[str, tuple[int, Optional[int]]] = {}
    for lineno, line_bytes in enumerate(text_bytes.split(b"\n"), 1):
        try:
            line = line_bytes.decode("utf-8")
        except UnicodeDecodeError as e:
            raise HarnessError(f"{path}:{lineno}: not UTF-8 (byte 0x{line_bytes[e.start]:02x} at column "
                               f"{e.start + 1}); save the map as UTF-8.") from None
        if "\ufeff" in line:
            raise HarnessError(f"{path}:{lineno}: a byte-order mark (U+FEFF) inside the file; remove it.")
        parts = line.split()
        if not parts:
            continue
        if len(parts) > 2:
            raise HarnessError(f"{path}:{lineno}: expected `<file> <label>` or `<file>`, got {line.strip()!r}.")
        label = None
        if len(parts) == 2:
            if not (parts[1].isascii() and parts[1].isdigit()):
                raise HarnessError(f"{path}:{lineno}: the label {parts[1]!r} is not a number 0..999 in ASCII digits "
                                   f"(expected `<file> <label>`).")
            label = int(parts[1])
            if label > 999:
                raise HarnessError(f"{path}:{lineno}: label {label} is out of range: labels are 0..999 "
                                   "(sorted-synset order).")
        name = parts[0]
        if name in first_line:
            before, old = first_line[name]
            what = "listed again" if old == label else f"listed again with label {label} (line {before}: {old})"
            raise HarnessError(f"{path}:{lineno}: {name} is {what}; first at line {before}. Every image must be "
                               "listed once (a duplicate would count twice in accuracy).")
        first_line[name] = (lineno, label)
        files.append(name)
        labels.append(label)
    if not files:
        raise HarnessError(f"Image map {path} names no images.")
    has = [lab is not None for lab in labels]
    if need_labels and not all(has):
        missing = files[has.index(False)]
        raise HarnessError(f"{path}:{first_line[missing][0]}: {missing} has no label; a validation map needs "
                           "`<file> <label>` on every line.")
    if any(has) and not all(has):
        missing = files[has.index(False)]
        raise HarnessError(f"{path}:{first_line[missing][0]}: {missing} has no label, but other lines have one; "
                           "give every line a label or none.")
    arr = np.asarray(labels, dtype=np.int32) if all(has) else None
    return ImageMap(path=os.path.abspath(path), files=files, labels=arr, md5=hashlib.md5(raw).hexdigest())


def default_data_dir() -> str:
    scratch = env.get(env.SCRATCH_PATH)
    if scratch:
        return os.path.join(scratch, "data", "imagenet")
    return DATA_DIR


def default_map_path(kind: str = "val") -> str:
    return os.path.join(REPO_ROOT, "data_maps", "imagenet", f"{kind}_map.txt")


# ----------------------------------------------------------------------------------------------------------------
# Recipes. Each turns an image file into float32 (C, H, W), RGB.
_IMAGENET_MEAN = [0.485, 0.456, 0.406]
_IMAGENET_STD = [0.229, 0.224, 0.225]

RECIPES = {
    # MLCommons reference (vision/classification_and_detection, pre_process_vgg): OpenCV decode, BGR -> RGB, shorter
    # side to 256 with INTER_AREA keeping the aspect ratio (int() of the longer side), centre crop 224 (int() of the
    # offsets), float32, subtract the RGB means, no std.
    "mlperf_resnet50": dict(decoder="opencv", order="resize_then_crop", resize_shorter=256, interpolation="area",
                            crop=224, offsets="floor", divide_by=1.0, mean=[123.68, 116.78, 103.94],
                            std=[1.0, 1.0, 1.0]),
    # Alibaba v1.0 open submission (torchvision transforms on PIL images): PIL decode and convert("RGB"), Resize(202)
    # with PIL bilinear (int() of the longer side), CenterCrop(176) with round() of the offsets, ToTensor (/255),
    # Normalize with the ImageNet mean/std.
    "ofa_autosinian": dict(decoder="pil", order="resize_then_crop", resize_shorter=202, interpolation="bilinear",
                           crop=176, offsets="round", divide_by=255.0, mean=_IMAGENET_MEAN, std=_IMAGENET_STD),
    # EfficientNet-Lite (the TensorFlow eval preprocessing its weights were trained with): centre crop of
    # int(224 / (224 + 32) * shorter side) at offsets ((side_diff + 1) // 2), bicubic resize to 224 (OpenCV's
    # bicubic; TensorFlow's kernel differs slightly), (x - 127) / 128.
    "efficientnet_lite": dict(decoder="opencv", order="crop_then_resize", crop_fraction=224 / (224 + 32),
                              interpolation="cubic", crop=224, divide_by=1.0, mean=[127.0] * 3, std=[128.0] * 3),
}


_CV2 = None


def _cv2():
    global _CV2
    if _CV2 is None:
        import cv2
        cv2.setNumThreads(1)     # one image per process; the parallelism is across processes
        _CV2 = cv2
    return _CV2


def _check_jpeg_complete(data: np.ndarray) -> None:
    """OpenCV decodes a truncated JPEG into a partly grey image with only a warning; refuse it instead. Bytes after
    the end-of-image marker (an appended trailer) are no damage: OpenCV and Pillow decode the same image, and a
    truncation before a marker is still caught by libjpeg's "Premature end" message (_with_libjpeg_messages)."""
    if data[:2].tobytes() != b"\xff\xd8" or data[-64:].tobytes().rstrip(b"\x00\r\n ").endswith(b"\xff\xd9"):
        return
    if not np.any((data[2:-1] == 0xFF) & (data[3:] == 0xD9)):
        raise ValueError("truncated or corrupt JPEG (no end-of-image marker)")


MAX_PIXELS = 100_000_000      # ImageNet's largest validation image is far below; a 372-byte PNG can claim billions
MAX_ASPECT = 100              # ImageNet's widest is about 10:1; 1x20000 would resize to 256x5120000


def check_image_size(width: int, height: int, r: dict) -> None:
    """Refuse, with the size, images above the pixel limit, of an absurd aspect ratio, or too small for the crop."""
    size = f"{width}x{height} pixels"
    if width * height > MAX_PIXELS:
        raise ValueError(f"{size} ({width * height / 1e6:.0f} megapixels) is above the limit of "
                         f"{MAX_PIXELS // 1_000_000} megapixels for an ImageNet-style image; replace the file")
    short, long_ = min(width, height), max(width, height)
    if short < 1 or (r["order"] == "crop_then_resize" and int(r["crop_fraction"] * short) < 1):
        raise ValueError(f"{size}: too small for the recipe's {r['crop']}x{r['crop']} center crop (it decodes, but "
                         "holds no crop); replace the file")
    if long_ > MAX_ASPECT * short:
        raise ValueError(f"{size}: an aspect ratio of {long_ / short:.0f}:1, beyond {MAX_ASPECT}:1 (resizing its "
                         f"shorter side to the recipe's size would need a huge image); replace the file")


def _header_size(path: str) -> Optional[tuple[int, int]]:
    """(width, height) from the file's header without decoding it (Pillow), or None where Pillow cannot tell."""
    from PIL import Image
    try:
        with Image.open(path) as im:
            return im.size
    except Image.DecompressionBombError as e:      # Pillow refuses to even open it: far above MAX_PIXELS
        raise ValueError(f"above the limit of {MAX_PIXELS // 1_000_000} megapixels for an ImageNet-style image "
                         f"(Pillow: {e}); replace the file") from None
    except Exception:   # noqa: BLE001 - not Pillow's format: OpenCV decodes it and the size is checked after
        return None


# libjpeg reports recoverable damage ("Corrupt JPEG data: N extraneous bytes before marker 0xd9", "Premature end of
# JPEG file", bad Huffman codes) only as a message on stderr and goes on decoding: OpenCV cannot catch it
# (opencv/opencv-python#610) and Pillow's decoder silences it. So each OpenCV decode runs with file descriptor 2
# pointed at a per-process scratch file, and any libjpeg message it left there makes the image an error. Decoding
# runs one image at a time per process (the worker pool), so nothing else writes to stderr meanwhile; other text
# caught (OpenCV's own log lines) is passed on to the real stderr.
_JPEG_WORDS = ("jpeg", "corrupt", "huffman", "marker", "premature", "sos ")
_SCRATCH: dict = {}


def _with_libjpeg_messages(fn):
    """fn() with libjpeg's stderr messages caught: (result, [message lines])."""
    if _SCRATCH.get("pid") != os.getpid():          # a forked worker gets its own scratch file
        _SCRATCH.update(pid=os.getpid(), file=tempfile.TemporaryFile())
    fd = _SCRATCH["file"].fileno()
    sys.stderr.flush()
    saved = os.dup(2)
    os.dup2(fd, 2)
    try:
        result = fn()
    finally:
        os.dup2(saved, 2)
        os.close(saved)
    size = os.fstat(fd).st_size
    if not size:
        return result, []
    text = os.pread(fd, size, 0).decode(errors="replace")
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)         # fd 2 shared this offset: the next messages start at 0 again
    messages, other = [], []
    for line in text.splitlines():
        (messages if any(w in line.lower() for w in _JPEG_WORDS) else other).append(line)
    if other:
        sys.stderr.write("\n".join(other) + "\n")
    return result, messages


def _jpeg_damage(messages: list[str]) -> None:
    if messages:
        raise ValueError(f"corrupt JPEG data (libjpeg: {'; '.join(m.strip() for m in messages[:3])})")


def check_jpeg_data(data: np.ndarray) -> None:
    """Decode a JPEG's entropy-coded data at 1/8 scale (libjpeg still reads every coefficient) and raise ValueError
    on any libjpeg warning: the check for decoders that hide them (Pillow)."""
    if data[:2].tobytes() != b"\xff\xd8":
        return
    cv2 = _cv2()
    _check_jpeg_complete(data)
    img, messages = _with_libjpeg_messages(lambda: cv2.imdecode(data, cv2.IMREAD_REDUCED_GRAYSCALE_8))
    _jpeg_damage(messages)
    if img is None:
        raise ValueError("not a readable image")


def _decode_opencv(path: str, r: Optional[dict] = None) -> np.ndarray:
    """BGR uint8 (H, W, 3), as the reference's cv2.imread(path) gives: greyscale and CMYK JPEGs come out as 3-channel
    BGR, EXIF orientation applied (cv2.imdecode on the file's bytes does the same as cv2.imread). With a recipe,
    its size is checked from the header first (check_image_size)."""
    cv2 = _cv2()
    data = np.fromfile(path, dtype=np.uint8)
    if data.size == 0:
        raise ValueError("empty file")
    header = _header_size(path) if r is not None else None
    if header and header[0] * header[1] > MAX_PIXELS:
        check_image_size(*header, r)
    _check_jpeg_complete(data)
    img, messages = _with_libjpeg_messages(lambda: cv2.imdecode(data, cv2.IMREAD_COLOR))
    _jpeg_damage(messages)
    if img is None:
        raise ValueError("not a readable image")
    return img


def _open_pil(path: str, r: Optional[dict] = None):
    """PIL image converted to RGB (greyscale, CMYK, palette, ...), as the torchvision reference does; PIL raises on a
    truncated file, and a JPEG's data is checked for libjpeg's corruption warnings (which Pillow hides) first."""
    from PIL import Image, UnidentifiedImageError
    data = np.fromfile(path, dtype=np.uint8)
    if data.size == 0:
        raise ValueError("empty file")
    check_jpeg_data(data)
    try:
        with Image.open(path) as im:
            if r is not None:
                check_image_size(im.width, im.height, r)     # before decoding: the header's size
            return im.convert("RGB")
    except Image.DecompressionBombError as e:
        raise ValueError(f"above the limit of {MAX_PIXELS // 1_000_000} megapixels for an ImageNet-style image "
                         f"(Pillow: {e}); replace the file") from None
    except UnidentifiedImageError:
        raise ValueError("not a readable image") from None
    except OSError as e:
        raise ValueError(f"corrupt image ({e})") from None


def load_rgb(path: str, decoder: str = "opencv") -> np.ndarray:
    """RGB uint8 (H, W, 3) as the recipe's decoder gives it."""
    if decoder == "pil":
        return np.asarray(_open_pil(path))
    return _decode_opencv(path)[:, :, ::-1]


def _resized_size(h: int, w: int, short: int) -> tuple[int, int]:
    """(new_h, new_w) with the shorter side at `short` and int() of the longer one (reference and torchvision)."""
    if h > w:
        return int(short * h / w), short
    return short, int(short * w / h)


def _crop_offset(extent: int, crop: int, mode: str) -> int:
    return int(round((extent - crop) / 2.0)) if mode == "round" else int((extent - crop) / 2)


def _geometry_opencv(img: np.ndarray, r: dict) -> np.ndarray:
    cv2 = _cv2()
    interp = {"area": cv2.INTER_AREA, "linear": cv2.INTER_LINEAR, "cubic": cv2.INTER_CUBIC}[r["interpolation"]]
    crop = r["crop"]
    h, w = img.shape[:2]
    if r["order"] == "resize_then_crop":
        new_h, new_w = _resized_size(h, w, r["resize_shorter"])
        img = cv2.resize(img, (new_w, new_h), interpolation=interp)
        top, left = _crop_offset(new_h, crop, r["offsets"]), _crop_offset(new_w, crop, r["offsets"])
        return img[top:top + crop, left:left + crop]
    side = int(r["crop_fraction"] * min(h, w))
    top, left = (h - side + 1) // 2, (w - side + 1) // 2
    return cv2.resize(img[top:top + side, left:left + side], (crop, crop), interpolation=interp)


def _geometry_pil(im, r: dict) -> np.ndarray:
    from PIL import Image
    crop = r["crop"]
    new_h, new_w = _resized_size(im.height, im.width, r["resize_shorter"])
    filt = {"bilinear": Image.BILINEAR, "cubic": Image.BICUBIC, "area": Image.BOX}[r["interpolation"]]
    im = im.resize((new_w, new_h), filt)
    top, left = _crop_offset(new_h, crop, r["offsets"]), _crop_offset(new_w, crop, r["offsets"])
    return np.asarray(im.crop((left, top, left + crop, top + crop)))


def _normalise(img: np.ndarray, bgr: bool, r: dict, out: np.ndarray) -> np.ndarray:
    """out[c] = (img[..., c] / divide_by - mean[c]) / std[c] in float32, RGB channel order, CHW. Channel by channel
    straight into `out`; the same float32 operations in the same order as the references (so bit-identical)."""
    div = np.float32(r["divide_by"])
    for c in range(3):
        src = img[:, :, 2 - c] if bgr else img[:, :, c]
        dst = out[c]
        mean, std = np.float32(r["mean"][c]), np.float32(r["std"][c])
        if div != 1:
            np.divide(src, div, out=dst, dtype=np.float32)
            np.subtract(dst, mean, out=dst)
        else:
            np.subtract(src, mean, out=dst, dtype=np.float32)
        if std != 1:
            np.divide(dst, std, out=dst)
    return out


def preprocess_file(path: str, recipe: str, out: Optional[np.ndarray] = None) -> np.ndarray:
    """One image file through a recipe: float32 (3, crop, crop), written into `out` when given."""
    r = RECIPES[recipe]
    if out is None:
        out = np.empty((3, r["crop"], r["crop"]), np.float32)
    if r["decoder"] == "pil":
        return _normalise(_geometry_pil(_open_pil(path, r), r), False, r, out)
    # Resize and crop in BGR, swap channels while normalising: the same pixels as converting to RGB first (every
    # OpenCV interpolation works on each channel alone), one full-image pass fewer.
    img = _decode_opencv(path, r)
    check_image_size(img.shape[1], img.shape[0], r)
    return _normalise(_geometry_opencv(img, r), True, r, out)


def apply_recipe(img: np.ndarray, recipe: str) -> np.ndarray:
    """A recipe applied to an RGB uint8 (H, W, 3) image already decoded (tests, tools)."""
    r = RECIPES[recipe]
    out = np.empty((3, r["crop"], r["crop"]), np.float32)
    check_image_size(img.shape[1], img.shape[0], r)
    if r["decoder"] == "pil":
        from PIL import Image
        return _normalise(_geometry_pil(Image.fromarray(np.ascontiguousarray(img)), r), False, r, out)
    return _normalise(_geometry_opencv(np.ascontiguousarray(img), r), False, r, out)
