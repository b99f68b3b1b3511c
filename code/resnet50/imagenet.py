"""ImageNet: val/cal maps, the per-model preprocessing recipes, the input formats, and the preprocessed arrays.

A preprocessed set is one contiguous .npy array per format plus a manifest (JSON) beside it that records the source
map and its checksum, the file order, the recipe and its parameters, the input scale of the int8 formats, the images
skipped under --allow_missing, and the array's checksum:

    build/preprocessed_data/imagenet/<model>/<format>/<map name>.npy
    build/preprocessed_data/imagenet/<model>/<format>/<map name>.manifest.json

Formats (one sample each; C, H, W from the model registry):

    fp32_nchw    float32 (C, H, W)            the recipe's output; calibration and FP32 engines read it
    int8_linear  int8    (C, H, W)            round(x / input_scale) clipped to [-128, 127] (ONNX QuantizeLinear)
    int8_nhwc    int8    (H, W, C)            the same values, channels last
    int8_chw4    int8    (ceil(C/4), H, W, 4) TensorRT's vectorised kCHW4: channels padded with zeros to 4

The work runs on all cores (one process per core, each decoding whole images and writing its rows straight into
the arrays), with a progress bar in images/s. A run is resumable and never leaves a half-written array looking
complete: the arrays are written as `<name>.npy.partial`, `<name>.npy.partial.done` holds per row -1 or the CRC-32
of the row on disk (committed every 2 s, only after an fsync of the array), and `<name>.npy.partial.json` records
what the partial array is of. Only a finished array is fsynced and renamed to `<name>.npy`, after which its manifest
is renamed into place; the manifest's `checksum` digests the rows' CRC-32s (`row_crc32`).
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
import time
import zlib
from dataclasses import dataclass
from multiprocessing import get_context
from typing import Iterable, Optional, Sequence

import numpy as np

from harness import REPO_ROOT
from harness.errors import HarnessError
from harness.tensorrt_plan import quantize_int8, to_chw4   # the int8 sample conversion the TensorRT runner uses too
from .models import ModelSpec

FORMATS = ("fp32_nchw", "int8_linear", "int8_nhwc", "int8_chw4")
MANIFEST_VERSION = 2
COMMIT_SECONDS = 2.0      # how often finished rows are fsynced and recorded in the done-map


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
    """Read `<file> <label>` lines (MLPerf val_map.txt) or bare file names (cal lists)."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise HarnessError(f"Image map {path} does not exist.") from None
    files, labels = [], []
    for lineno, line in enumerate(raw.decode().splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) > 2 or (len(parts) == 2 and not parts[1].lstrip("-").isdigit()):
            raise HarnessError(f"{path}:{lineno}: expected `<file> <label>` or `<file>`, got {line!r}.")
        files.append(parts[0])
        labels.append(int(parts[1]) if len(parts) == 2 else None)
    if not files:
        raise HarnessError(f"Image map {path} names no images.")
    has = [lab is not None for lab in labels]
    if need_labels and not all(has):
        raise HarnessError(f"{path}: line {has.index(False) + 1} has no label; a validation map needs "
                           "`<file> <label>` on every line.")
    arr = np.asarray(labels, dtype=np.int32) if all(has) else None
    if arr is not None and (arr.min() < 0 or arr.max() > 999):
        raise HarnessError(f"{path}: labels must be 0..999 (sorted-synset order), found {arr.min()}..{arr.max()}.")
    return ImageMap(path=os.path.abspath(path), files=files, labels=arr, md5=hashlib.md5(raw).hexdigest())


def default_data_dir() -> str:
    scratch = os.environ.get("MLPERF_SCRATCH_PATH")
    if scratch:
        return os.path.join(scratch, "data", "imagenet")
    return os.path.join(REPO_ROOT, "build", "data", "imagenet")


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


def _check_jpeg_complete(head: bytes, tail: bytes) -> None:
    """OpenCV decodes a truncated JPEG into a partly grey image with only a warning; refuse it instead."""
    if head == b"\xff\xd8" and not tail.rstrip(b"\x00\r\n ").endswith(b"\xff\xd9"):
        raise ValueError("truncated or corrupt JPEG (no end-of-image marker)")


def _decode_opencv(path: str) -> np.ndarray:
    """BGR uint8 (H, W, 3), as the reference's cv2.imread(path) gives: greyscale and CMYK JPEGs come out as 3-channel
    BGR, EXIF orientation applied (cv2.imdecode on the file's bytes does the same as cv2.imread)."""
    cv2 = _cv2()
    data = np.fromfile(path, dtype=np.uint8)
    if data.size == 0:
        raise ValueError("empty file")
    _check_jpeg_complete(data[:2].tobytes(), data[-64:].tobytes())
    img = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if img is None:
        raise ValueError("not a readable image")
    return img


def _open_pil(path: str):
    """PIL image converted to RGB (greyscale, CMYK, palette, ...), as the torchvision reference does; PIL raises on a
    truncated file."""
    from PIL import Image, UnidentifiedImageError
    try:
        with Image.open(path) as im:
            return im.convert("RGB")
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
        return _normalise(_geometry_pil(_open_pil(path), r), False, r, out)
    # Resize and crop in BGR, swap channels while normalising: the same pixels as converting to RGB first (every
    # OpenCV interpolation works on each channel alone), one full-image pass fewer.
    return _normalise(_geometry_opencv(_decode_opencv(path), r), True, r, out)


def apply_recipe(img: np.ndarray, recipe: str) -> np.ndarray:
    """A recipe applied to an RGB uint8 (H, W, 3) image already decoded (tests, tools)."""
    r = RECIPES[recipe]
    out = np.empty((3, r["crop"], r["crop"]), np.float32)
    if r["decoder"] == "pil":
        from PIL import Image
        return _normalise(_geometry_pil(Image.fromarray(np.ascontiguousarray(img)), r), False, r, out)
    return _normalise(_geometry_opencv(np.ascontiguousarray(img), r), False, r, out)


# ----------------------------------------------------------------------------------------------------------------
# Formats
def check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise HarnessError(f"Unknown preprocessed format {fmt!r}; known: {', '.join(FORMATS)}.")
    return fmt


def parse_formats(text: str) -> list[str]:
    out = [check_format(w.strip()) for w in text.split(",") if w.strip()]
    if not out:
        raise HarnessError(f"--formats is empty; expected a comma list of {', '.join(FORMATS)}.")
    return list(dict.fromkeys(out))


def format_shape(fmt: str, chw: Sequence[int]) -> tuple[int, ...]:
    c, h, w = chw
    return {"fp32_nchw": (c, h, w), "int8_linear": (c, h, w), "int8_nhwc": (h, w, c),
            "int8_chw4": ((c + 3) // 4, h, w, 4)}[check_format(fmt)]


def format_dtype(fmt: str) -> np.dtype:
    return np.dtype(np.float32 if check_format(fmt) == "fp32_nchw" else np.int8)


def quantize(x: np.ndarray, scale: Optional[float]) -> np.ndarray:
    """ONNX QuantizeLinear with zero point 0: round half to even of x / scale, saturated to int8."""
    if scale is None:
        raise HarnessError("The int8 formats need the model's input_scale; the model registry fixes none for this "
                           "model (use fp32_nchw).")
    return quantize_int8(x, scale)


def to_format(chw: np.ndarray, fmt: str, scale: float, out: Optional[np.ndarray] = None) -> np.ndarray:
    """One fp32 (C, H, W) sample in `fmt`, written into `out` when given."""
    shape = format_shape(fmt, chw.shape)
    if out is None:
        out = np.empty(shape, format_dtype(fmt))
    if fmt == "fp32_nchw":
        if out is not chw:
            out[...] = chw
        return out
    q = quantize(chw, scale)
    if fmt == "int8_linear":
        out[...] = q
    elif fmt == "int8_nhwc":
        out[...] = q.transpose(1, 2, 0)
    else:  # int8_chw4: [C/4][H][W][4]
        out[...] = to_chw4(q[None])[0]
    return out


# ----------------------------------------------------------------------------------------------------------------
# Preprocessed arrays: paths and manifests
def array_paths(base_dir: str, model: ModelSpec, fmt: str, image_map: ImageMap) -> tuple[str, str]:
    folder = os.path.join(base_dir, "imagenet", model.key, fmt)
    return os.path.join(folder, image_map.name + ".npy"), os.path.join(folder, image_map.name + ".manifest.json")


def default_preprocessed_dir() -> str:
    return os.path.join(REPO_ROOT, "build", "preprocessed_data")


def _identity(model: ModelSpec, fmt: str, image_map: ImageMap) -> dict:
    """What an array is of: a manifest that differs in any of these describes a different array."""
    ident = {"version": MANIFEST_VERSION, "model": model.key, "format": fmt, "recipe": model.recipe,
             "recipe_params": RECIPES[model.recipe], "dtype": format_dtype(fmt).name,
             "sample_shape": list(format_shape(fmt, model.input_shape)), "source_map_md5": image_map.md5,
             "map_images": len(image_map.files)}
    if fmt != "fp32_nchw":
        ident["input_scale"] = model.input_scale
    return ident


def _read_json(path: str) -> Optional[dict]:
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _write_json_atomic(path: str, data: dict) -> None:
    tmp = path + ".partial"
    with open(tmp, "w") as f:
        json.dump(data, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _npy_rows(path: str) -> Optional[int]:
    """Rows of a complete .npy file (header parsed, file size checked), or None when it is not one."""
    try:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
                np.lib.format.read_array_header_2_0
            shape, _, dtype = read_header(f)
            offset = f.tell()
        expected = offset + int(np.prod(shape)) * dtype.itemsize
        return shape[0] if os.path.getsize(path) == expected else None
    except (OSError, ValueError):
        return None


def is_up_to_date(model: ModelSpec, fmt: str, image_map: ImageMap, base_dir: str, allow_missing: bool = False) -> bool:
    npy, manifest_path = array_paths(base_dir, model, fmt, image_map)
    manifest = _read_json(manifest_path)
    if manifest is None or not os.path.exists(npy):
        return False
    if any(manifest.get(k) != v for k, v in _identity(model, fmt, image_map).items()):
        return False
    if manifest.get("skipped") and not allow_missing:
        return False        # made with --allow_missing: without it, try those images again (or fail naming them)
    return _npy_rows(npy) == manifest.get("shape", [None])[0]


# ----------------------------------------------------------------------------------------------------------------
# Progress
class Progress:
    """`[preprocess] <label> [#####-----] done/total  pct  N images/s  ETA`; redrawn in place on a terminal."""

    def __init__(self, label: str, total: int, already: int, enabled: bool = True, stream=None):
        self.label, self.total, self.already, self.enabled = label, total, already, enabled
        self.stream = stream or sys.stdout
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.start = time.monotonic()
        self.last_draw = 0.0
        self.last_pct = -1
        self.done = already
        self.drawn = None

    def rate(self) -> float:
        return (self.done - self.already) / max(time.monotonic() - self.start, 1e-9)

    def update(self, done: int, force: bool = False) -> None:
        self.done = done
        if not self.enabled:
            return
        now = time.monotonic()
        pct = int(100 * done / max(self.total, 1))
        if not force and (now - self.last_draw < (0.25 if self.tty else 5.0)) and pct // 10 == self.last_pct // 10:
            return
        self.last_draw, self.last_pct, self.drawn = now, pct, done
        rate = self.rate()
        eta = f"ETA {(self.total - done) / rate:4.0f}s" if rate > 0 else ""
        bar = "#" * (pct * 30 // 100)
        line = f"[preprocess] {self.label} [{bar:<30}] {done}/{self.total} {pct:3d}% {rate:6.0f} images/s {eta}"
        self.stream.write(("\r" + line) if self.tty else (line + "\n"))
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            if self.drawn != self.done:
                self.update(self.done, force=True)
            if self.tty:
                self.stream.write("\n")
            self.stream.flush()


def available_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


# ----------------------------------------------------------------------------------------------------------------
# Checksums: a CRC-32 of every row (computed by the workers as they write it, so it costs no extra pass over the
# array); the manifest keeps them and their digest, which changes when any row does.
def row_crc32(row: np.ndarray) -> int:
    return zlib.crc32(np.ascontiguousarray(row))


def rows_checksum(crcs: Sequence[int]) -> str:
    return "crc32rows-md5:" + hashlib.md5(np.asarray(crcs, dtype="<u4").tobytes()).hexdigest()


def array_checksum(array: np.ndarray) -> str:
    """The manifest's `checksum` recomputed from an array (to verify one)."""
    return rows_checksum([row_crc32(row) for row in array])


# ----------------------------------------------------------------------------------------------------------------
# Workers: each converts its images into local buffers and writes the rows into the partial arrays with pwrite
# (no tensors pickled back to the parent, no page faults of a shared memory map).
_W: dict = {}


def _npy_data_offset(path: str) -> int:
    with open(path, "rb") as f:
        version = np.lib.format.read_magic(f)
        (np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0)(f)
        return f.tell()


def _worker_init(partials: dict, recipe: str, scale: float, chw: tuple) -> None:
    _W.clear()
    _W.update(recipe=recipe, scale=scale, targets={})
    for fmt, path in partials.items():
        buf = np.empty(format_shape(fmt, chw), format_dtype(fmt))
        _W["targets"][fmt] = (os.open(path, os.O_RDWR), _npy_data_offset(path), buf)
    _W["fp32"] = _W["targets"]["fp32_nchw"][2] if "fp32_nchw" in partials else np.empty(chw, np.float32)


def _worker(jobs: list[tuple[int, str]]) -> list[tuple[int, Optional[dict], Optional[str]]]:
    recipe, scale, targets, fp32 = _W["recipe"], _W["scale"], _W["targets"], _W["fp32"]
    out = []
    for index, path in jobs:
        try:
            preprocess_file(path, recipe, fp32)
            crcs = {}
            for fmt, (fd, offset, buf) in targets.items():
                if fmt != "fp32_nchw":
                    to_format(fp32, fmt, scale, buf)
                os.pwrite(fd, buf, offset + index * buf.nbytes)
                crcs[fmt] = row_crc32(buf)
            out.append((index, crcs, None))
        except Exception as e:  # reported with the file's name, never skipped silently
            out.append((index, None, str(e) if isinstance(e, ValueError) else f"{type(e).__name__}: {e}"))
    return out


def _open_partial(npy: str, ident: dict, shape: tuple, dtype: np.dtype) -> tuple[str, np.memmap]:
    """The partial array and its done-map (per row: -1, or the CRC-32 of the row on disk), resumed when they belong
    to the same inputs, else created afresh."""
    partial, done_path, state_path = npy + ".partial", npy + ".partial.done", npy + ".partial.json"
    n = shape[0]
    state = _read_json(state_path)
    resumable = (state == ident and _npy_rows(partial) == n and os.path.exists(done_path)
                 and os.path.getsize(done_path) == 8 * n)
    if not resumable:
        for p in (state_path, done_path, partial):
            if os.path.exists(p):
                os.remove(p)
        os.makedirs(os.path.dirname(npy), exist_ok=True)
        np.lib.format.open_memmap(partial, mode="w+", dtype=dtype, shape=shape).flush()   # header + sparse file
        np.full(n, -1, np.int64).tofile(done_path)
        _write_json_atomic(state_path, ident)
    return partial, np.memmap(done_path, dtype=np.int64, mode="r+", shape=(n,))


@dataclass
class PreprocessResult:
    paths: dict           # format -> array path
    skipped: dict         # file -> reason, images left out under --allow_missing
    done_now: int         # images this call processed (0: everything was up to date)


def preprocess(model: ModelSpec, image_map: ImageMap, data_dir: str, base_dir: str,
               formats: Iterable[str] = ("fp32_nchw",), allow_missing: bool = False, overwrite: bool = False,
               workers: Optional[int] = None, progress: bool = True, chunk: Optional[int] = None) -> PreprocessResult:
    """Preprocess every image of the map into one array per format, in one decoding pass on all cores.

    Idempotent (formats whose array and manifest are up to date are left alone), resumable (an interrupted run
    continues where it stopped). Returns the array paths, the images skipped (--allow_missing) and how many images
    this call processed.
    """
    formats = list(dict.fromkeys(check_format(f) for f in formats))
    result = PreprocessResult({}, {}, 0)
    todo_formats = []
    for fmt in formats:
        npy, manifest_path = array_paths(base_dir, model, fmt, image_map)
        result.paths[fmt] = npy
        if not overwrite and is_up_to_date(model, fmt, image_map, base_dir, allow_missing):
            result.skipped = (_read_json(manifest_path) or {}).get("skipped", {})
            if progress:
                print(f"[preprocess] {npy} is up to date ({len(image_map.files)} images); nothing to do.")
        else:
            todo_formats.append(fmt)
    if not todo_formats:
        return result

    if not os.path.isdir(data_dir):
        raise HarnessError(f"Image folder {data_dir} does not exist; pass --data_dir or set MLPERF_SCRATCH_PATH.")
    paths = [os.path.join(data_dir, name) for name in image_map.files]
    missing_idx = [i for i, p in enumerate(paths) if not os.path.isfile(p)]
    if missing_idx and not allow_missing:
        names = ", ".join(image_map.files[i] for i in missing_idx[:5])
        raise HarnessError(f"{len(missing_idx)} of {len(paths)} images named in {image_map.path} are missing from "
                           f"{data_dir} (first: {names}). Fix --data_dir/--map_path/--calib_data_map, or pass "
                           "--allow_missing to skip them (recorded in the manifest and the run summary).")

    n = len(paths)
    partials, done_maps, idents = {}, {}, {}
    for fmt in todo_formats:
        npy, _ = array_paths(base_dir, model, fmt, image_map)
        if overwrite:
            for p in (npy + ".partial", npy + ".partial.done", npy + ".partial.json"):
                if os.path.exists(p):
                    os.remove(p)
        idents[fmt] = _identity(model, fmt, image_map)
        partials[fmt], done_maps[fmt] = _open_partial(npy, idents[fmt], (n, *format_shape(fmt, model.input_shape)),
                                                      format_dtype(fmt))
    done = np.logical_and.reduce([m >= 0 for m in done_maps.values()])
    bad: dict[int, str] = {i: "missing" for i in missing_idx}
    todo = [i for i in range(n) if not done[i] and i not in bad]
    already = int(done.sum())
    label = f"{image_map.name} ({'+'.join(todo_formats)})"
    if already and progress:
        print(f"[preprocess] {label}: resuming, {already} of {n} images already done.")

    nproc = max(1, min(workers or available_cores(), len(todo) or 1))
    size = chunk or max(1, min(32, len(todo) // (nproc * 8) or 1))
    jobs = [[(i, paths[i]) for i in todo[s:s + size]] for s in range(0, len(todo), size)]
    fds = {fmt: os.open(p, os.O_RDWR) for fmt, p in partials.items()}
    bar = Progress(label, n, already + len(missing_idx), progress)
    pending: list[tuple[int, dict]] = []
    count = already + len(missing_idx)
    last_commit = time.monotonic()

    def commit():
        if not pending:
            return
        for fd in fds.values():
            os.fsync(fd)               # rows on disk before the done-map says so
        rows = np.asarray([i for i, _ in pending], np.int64)
        for fmt, m in done_maps.items():
            m[rows] = [crcs[fmt] for _, crcs in pending]
            m.flush()
        pending.clear()

    try:
        if jobs:
            with get_context("fork").Pool(nproc, _worker_init, (partials, model.recipe, model.input_scale,
                                                               tuple(model.input_shape))) as pool:
                for results in pool.imap_unordered(_worker, jobs):
                    for i, crcs, err in results:
                        if err is None:
                            pending.append((i, crcs))
                        else:
                            bad[i] = err
                    count += len(results)
                    result.done_now += len(results)
                    bar.update(count)
                    if time.monotonic() - last_commit >= COMMIT_SECONDS:
                        commit()
                        last_commit = time.monotonic()
        commit()
    finally:
        try:
            commit()
        finally:
            for fd in fds.values():
                os.close(fd)
            bar.close()

    unreadable = {i: e for i, e in bad.items() if e != "missing"}
    if unreadable and not allow_missing:
        first = "; ".join(f"{paths[i]} ({e})" for i, e in sorted(unreadable.items())[:5])
        raise HarnessError(f"{len(unreadable)} of {n} images could not be decoded (first: {first}). Replace them "
                           "and run again (the rest is kept and resumed), or pass --allow_missing to skip them "
                           "(recorded in the manifest and the run summary).")
    keep = np.asarray([i for i in range(n) if i not in bad], dtype=np.int64)
    skipped = {image_map.files[i]: e for i, e in sorted(bad.items())}
    for fmt in todo_formats:
        npy, manifest_path = array_paths(base_dir, model, fmt, image_map)
        crcs = [int(c) for c in done_maps[fmt][keep]]
        del done_maps[fmt]
        if min(crcs, default=0) < 0:   # every kept row must have been written and recorded
            raise HarnessError(f"{npy}.partial: {sum(c < 0 for c in crcs)} rows were never written; run again.")
        final = _compact(partials[fmt], keep) if bad else partials[fmt]
        fd = os.open(final, os.O_RDWR)
        os.fsync(fd)                       # the array is on disk before its name says it is complete
        os.close(fd)
        manifest = dict(idents[fmt], shape=[len(keep), *format_shape(fmt, model.input_shape)],
                        source_map=image_map.path, data_dir=os.path.abspath(data_dir),
                        files=[image_map.files[i] for i in keep], skipped=skipped,
                        labels=None if image_map.labels is None else image_map.labels[keep].tolist(),
                        checksum=rows_checksum(crcs), row_crc32=crcs, created=time.strftime("%Y-%m-%dT%H:%M:%S"))
        if os.path.exists(manifest_path):
            os.remove(manifest_path)       # an old manifest must never describe the new array
        os.replace(final, npy)
        _write_json_atomic(manifest_path, manifest)
        for p in (npy + ".partial", npy + ".partial.done", npy + ".partial.json"):
            if os.path.exists(p):
                os.remove(p)
    result.skipped = skipped
    if skipped:
        print(f"[preprocess] WARNING: {image_map.name}: skipped {len(skipped)} of {n} images (--allow_missing; "
              f"listed under `skipped` in the manifests), first: {', '.join(list(skipped)[:5])}.")
    if progress and result.done_now:
        print(f"[preprocess] {label}: {len(keep)} images -> "
              + ", ".join(array_paths(base_dir, model, f, image_map)[0] for f in todo_formats))
    return result


def _compact(partial: str, keep: np.ndarray, rows_per_chunk: int = 1024) -> str:
    """A copy of `partial` without the skipped rows (chunk by chunk: a 50,000-image array need not fit in memory)."""
    src = np.load(partial, mmap_mode="r")
    out_path = partial + ".compact"
    dst = np.lib.format.open_memmap(out_path, mode="w+", dtype=src.dtype, shape=(len(keep), *src.shape[1:]))
    for s in range(0, len(keep), rows_per_chunk):
        dst[s:s + rows_per_chunk] = src[keep[s:s + rows_per_chunk]]
    dst.flush()
    del dst, src
    os.replace(out_path, partial)
    return partial


# ----------------------------------------------------------------------------------------------------------------
# Loading
@dataclass
class PreprocessedSet:
    path: str
    array: np.ndarray           # memory-mapped (N, *sample shape of the format)
    labels: Optional[np.ndarray]
    files: list[str]
    manifest: dict

    @property
    def skipped(self) -> dict:
        return self.manifest.get("skipped") or {}


def load_preprocessed(model: ModelSpec, image_map: ImageMap, base_dir: str, fmt: str = "fp32_nchw") -> PreprocessedSet:
    check_format(fmt)
    npy, manifest_path = array_paths(base_dir, model, fmt, image_map)
    if not (os.path.exists(npy) and os.path.exists(manifest_path)):
        partial = " (an interrupted run left a partial array: run the same command again to resume it)" \
            if os.path.exists(npy + ".partial") else ""
        raise HarnessError(f"No preprocessed data at {npy} for model {model.key}, format {fmt} and map "
                           f"{image_map.path}{partial}. Run `make preprocess_data RUN_ARGS=\"--model={model.key} "
                           f"--map_path={image_map.path} --formats={fmt} --data_dir=<images>\"` first.")
    manifest = _read_json(manifest_path)
    if manifest is None:
        raise HarnessError(f"{manifest_path} is not readable JSON; re-run preprocess_data with --overwrite.")
    for key, want in _identity(model, fmt, image_map).items():
        if key == "map_images":
            continue
        if manifest.get(key) != want:
            raise HarnessError(f"{manifest_path}: the array was preprocessed with {key}={manifest.get(key)!r}, but "
                               f"this run needs {want!r} (model {model.key}, format {fmt}). Re-run preprocess_data "
                               "for this model and format (add --overwrite).")
    array = np.load(npy, mmap_mode="r")
    want_shape = [len(manifest.get("files", [])), *format_shape(fmt, model.input_shape)]
    if list(array.shape) != want_shape or list(array.shape) != list(manifest.get("shape", [])):
        raise HarnessError(f"{npy}: array shape {tuple(array.shape)} does not match its manifest "
                           f"({manifest.get('shape')}, {len(manifest.get('files', []))} files) and model {model.key} "
                           f"in format {fmt} ({want_shape}). Re-run preprocess_data with --overwrite.")
    labels = None if manifest.get("labels") is None else np.asarray(manifest["labels"], np.int32)
    return PreprocessedSet(npy, array, labels, manifest["files"], manifest)
