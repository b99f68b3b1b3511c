"""ImageNet: val/cal maps, the per-model preprocessing recipes, and the preprocessed arrays.

A preprocessed set is one contiguous .npy array (N, C, H, W) plus a manifest (JSON) beside it that records the
source map and its checksum, the file order, the recipe and its parameters, and the array's checksum:

    build/preprocessed_data/imagenet/<model>/<format>/<map name>.npy
    build/preprocessed_data/imagenet/<model>/<format>/<map name>.manifest.json
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from dataclasses import dataclass
from multiprocessing import get_context
from typing import Optional

import numpy as np

from harness import REPO_ROOT
from harness.errors import HarnessError
from .models import ModelSpec

FORMATS = ("fp32_nchw",)
MANIFEST_VERSION = 1


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
# Recipes. Each takes an RGB uint8 HxWx3 image and returns float32 CxHxW.
_IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
_IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)

RECIPES = {
    # MLCommons reference (vision/classification_and_detection, pre_process_vgg): shorter side to 256 with
    # INTER_AREA keeping the aspect ratio, centre crop 224, subtract the RGB means, no std.
    "mlperf_resnet50": dict(resize_shorter=256, interpolation="area", crop=224, mean=[123.68, 116.78, 103.94],
                            std=[1.0, 1.0, 1.0], scale=1.0, order="resize_then_crop"),
    # Alibaba v1.0 open submission: shorter side to 202 (bilinear), centre crop 176, /255, ImageNet mean/std.
    "ofa_autosinian": dict(resize_shorter=202, interpolation="linear", crop=176, mean=list(_IMAGENET_MEAN),
                           std=list(_IMAGENET_STD), scale=1 / 255.0, order="resize_then_crop"),
    # EfficientNet-Lite (TensorFlow eval): centre crop 224/(224+32) of the shorter side, bicubic resize to 224,
    # (x - 127) / 128.
    "efficientnet_lite": dict(crop_fraction=224 / 256, interpolation="cubic", crop=224, mean=[127.0] * 3,
                              std=[128.0] * 3, scale=1.0, order="crop_then_resize"),
}


def _cv2():
    import cv2
    cv2.setNumThreads(1)
    return cv2


def load_rgb(path: str) -> np.ndarray:
    """Decode as the reference does (OpenCV, BGR -> RGB); greyscale and CMYK JPEGs come out as 3-channel RGB."""
    cv2 = _cv2()
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        raise ValueError("not a readable image")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def apply_recipe(img: np.ndarray, recipe: str) -> np.ndarray:
    cv2 = _cv2()
    r = RECIPES[recipe]
    interp = {"area": cv2.INTER_AREA, "linear": cv2.INTER_LINEAR, "cubic": cv2.INTER_CUBIC}[r["interpolation"]]
    crop = r["crop"]
    h, w = img.shape[:2]
    if r["order"] == "resize_then_crop":
        short = r["resize_shorter"]
        # Same integer arithmetic as the reference's resize_with_aspectratio.
        if h > w:
            new_w, new_h = short, int(short * h / w)
        else:
            new_h, new_w = short, int(short * w / h)
        img = cv2.resize(img, (new_w, new_h), interpolation=interp)
        top, left = int((new_h - crop) / 2), int((new_w - crop) / 2)
        img = img[top:top + crop, left:left + crop]
    else:
        side = int(round(min(h, w) * r["crop_fraction"]))
        top, left = (h - side) // 2, (w - side) // 2
        img = img[top:top + side, left:left + side]
        img = cv2.resize(img, (crop, crop), interpolation=interp)
    out = img.astype(np.float32) * np.float32(r["scale"])
    out -= np.asarray(r["mean"], np.float32)
    out /= np.asarray(r["std"], np.float32)
    return np.ascontiguousarray(out.transpose(2, 0, 1))


def preprocess_file(path: str, recipe: str) -> np.ndarray:
    return apply_recipe(load_rgb(path), recipe)


# ----------------------------------------------------------------------------------------------------------------
# Preprocessed arrays
def array_paths(base_dir: str, model: ModelSpec, fmt: str, image_map: ImageMap) -> tuple[str, str]:
    folder = os.path.join(base_dir, "imagenet", model.key, fmt)
    return os.path.join(folder, image_map.name + ".npy"), os.path.join(folder, image_map.name + ".manifest.json")


def default_preprocessed_dir() -> str:
    return os.path.join(REPO_ROOT, "build", "preprocessed_data")


def _expected_manifest(model: ModelSpec, fmt: str, image_map: ImageMap, data_dir: str) -> dict:
    return {
        "version": MANIFEST_VERSION, "model": model.key, "format": fmt, "recipe": model.recipe,
        "recipe_params": RECIPES[model.recipe], "shape": [len(image_map.files), *model.input_shape],
        "dtype": "float32", "source_map": image_map.path, "source_map_md5": image_map.md5,
        "data_dir": os.path.abspath(data_dir),
    }


def _worker(args):
    index, path, recipe = args
    try:
        return index, preprocess_file(path, recipe), None
    except Exception as e:  # reported with the file's name, never skipped silently
        return index, None, f"{e}"


def preprocess(model: ModelSpec, image_map: ImageMap, data_dir: str, base_dir: str, fmt: str = "fp32_nchw",
               allow_missing: bool = False, overwrite: bool = False, workers: Optional[int] = None,
               progress: bool = True) -> str:
    """Preprocess every image of the map into one array; returns the array path. Idempotent."""
    if fmt not in FORMATS:
        raise HarnessError(f"Unknown preprocessed format {fmt!r}; known: {', '.join(FORMATS)}.")
    npy, manifest_path = array_paths(base_dir, model, fmt, image_map)
    expected = _expected_manifest(model, fmt, image_map, data_dir)
    if not overwrite and os.path.exists(npy) and os.path.exists(manifest_path):
        with open(manifest_path) as f:
            current = json.load(f)
        if all(current.get(k) == v for k, v in expected.items() if k != "data_dir"):
            if progress:
                print(f"[preprocess] {npy} is up to date ({len(image_map.files)} images); nothing to do.")
            return npy
    if not os.path.isdir(data_dir):
        raise HarnessError(f"Image folder {data_dir} does not exist; pass --data_dir or set MLPERF_SCRATCH_PATH.")
    paths = [os.path.join(data_dir, name) for name in image_map.files]
    missing_idx = [i for i, p in enumerate(paths) if not os.path.isfile(p)]
    missing = [paths[i] for i in missing_idx]
    if missing and not allow_missing:
        raise HarnessError(f"{len(missing)} of {len(paths)} images named in {image_map.path} are missing from "
                           f"{data_dir} (first: {', '.join(os.path.basename(m) for m in missing[:5])}). "
                           "Fix --data_dir/--map_path, or pass --allow_missing to skip them (recorded in the manifest).")
    os.makedirs(os.path.dirname(npy), exist_ok=True)
    tmp = npy + ".partial"
    out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(len(paths), *model.input_shape))
    bad: dict[int, str] = {i: "missing" for i in missing_idx}
    jobs = [(i, p, model.recipe) for i, p in enumerate(paths) if i not in bad]
    start = time.time()
    nproc = workers or os.cpu_count() or 1
    with get_context("fork").Pool(nproc) as pool:
        for done, (i, arr, err) in enumerate(pool.imap_unordered(_worker, jobs, chunksize=16), 1):
            if err is not None:
                bad[i] = err
            else:
                out[i] = arr
            if progress and (done % 200 == 0 or done == len(jobs)):
                rate = done / max(time.time() - start, 1e-9)
                sys.stdout.write(f"\r[preprocess] {done}/{len(jobs)} images, {rate:.0f} images/s")
                sys.stdout.flush()
    if progress:
        sys.stdout.write("\n")
    unreadable = {i: e for i, e in bad.items() if e != "missing"}
    if unreadable and not allow_missing:
        os.remove(tmp)
        first = ", ".join(f"{os.path.basename(paths[i])} ({e})" for i, e in sorted(unreadable.items())[:5])
        raise HarnessError(f"{len(unreadable)} images could not be decoded (first: {first}). Replace them, or pass "
                           "--allow_missing to skip them (recorded in the manifest).")
    out.flush()
    del out
    keep = [i for i in range(len(paths)) if i not in bad]
    if bad:  # rewrite without the skipped rows, so rows and labels stay aligned
        full = np.load(tmp, mmap_mode="r")
        np.save(tmp + ".compact.npy", np.ascontiguousarray(full[keep]))
        del full
        os.replace(tmp + ".compact.npy", tmp)
    manifest = dict(expected, shape=[len(keep), *model.input_shape], files=[image_map.files[i] for i in keep],
                    skipped={image_map.files[i]: e for i, e in sorted(bad.items())},
                    labels=None if image_map.labels is None else image_map.labels[keep].tolist(),
                    array_md5=_file_md5(tmp), created=time.strftime("%Y-%m-%dT%H:%M:%S"))
    os.replace(tmp, npy)
    with open(manifest_path + ".partial", "w") as f:
        json.dump(manifest, f)
    os.replace(manifest_path + ".partial", manifest_path)
    if bad:
        print(f"[preprocess] WARNING: skipped {len(bad)} images (listed under `skipped` in {manifest_path}).")
    return npy


def _file_md5(path: str) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass
class PreprocessedSet:
    path: str
    array: np.ndarray           # memory-mapped (N, C, H, W)
    labels: Optional[np.ndarray]
    files: list[str]
    manifest: dict


def load_preprocessed(model: ModelSpec, image_map: ImageMap, base_dir: str, fmt: str = "fp32_nchw") -> PreprocessedSet:
    npy, manifest_path = array_paths(base_dir, model, fmt, image_map)
    if not (os.path.exists(npy) and os.path.exists(manifest_path)):
        raise HarnessError(f"No preprocessed data at {npy} for model {model.key} and map {image_map.path}. "
                           f"Run `make preprocess_data RUN_ARGS=\"--model={model.key} --map_path={image_map.path} "
                           f"--data_dir=<images>\"` first.")
    with open(manifest_path) as f:
        manifest = json.load(f)
    for key, want in (("model", model.key), ("format", fmt), ("recipe", model.recipe),
                      ("source_map_md5", image_map.md5)):
        if manifest.get(key) != want:
            raise HarnessError(f"{manifest_path}: preprocessed with {key}={manifest.get(key)!r}, but this run needs "
                               f"{want!r}. Re-run preprocess_data (add --overwrite).")
    array = np.load(npy, mmap_mode="r")
    if list(array.shape[1:]) != list(model.input_shape):
        raise HarnessError(f"{npy}: samples are {tuple(array.shape[1:])}, model {model.key} takes {model.input_shape}.")
    labels = None if manifest.get("labels") is None else np.asarray(manifest["labels"], np.int32)
    return PreprocessedSet(npy, array, labels, manifest["files"], manifest)
