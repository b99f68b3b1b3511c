"""The preprocessed-array store: one contiguous .npy array per format, its manifest, and the worker pool that
fills it from the ImageNet recipes (resnet50/imagenet.py).

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
from harness.formats import check_format, format_dtype, format_shape, to_format
from .imagenet import RECIPES, ImageMap, preprocess_file
from .models import ModelSpec

MANIFEST_VERSION = 2
COMMIT_SECONDS = 2.0      # how often finished rows are fsynced and recorded in the done-map


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
