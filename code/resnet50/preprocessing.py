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

Integrity (harness/core/storage.py): a run holds an exclusive lock on each format folder it writes (a second run waits,
then refuses; `--overwrite` never deletes what another run holds); every pwrite is checked (a short write is
continued, a failed one is a StorageError naming the file and the cause: disk full, read-only, permission, never
"bad image"); each worker reads every row back right after writing it and compares it byte for byte, and the rows
are recorded as done only after an fsync succeeded, so the done-map and the manifest hold the CRCs of what is in
the file. The manifest records the array file's stamp (size,
mtime, inode). Loading checks the header, the shape, the CRC list against the checksum and the CRC-32 of a sample
of rows (VERIFY_SAMPLE_ROWS) when the stamp is unchanged; every row when the file changed since it was written, or
with `--verify`. Leftovers of an interrupted compaction (`.partial.compact`) are removed by the next run.
"""
from __future__ import annotations

import hashlib
import os
import signal
import sys
import time
import zlib
from dataclasses import dataclass
from multiprocessing import get_context
from typing import Iterable, Optional, Sequence

import numpy as np

from harness.core.paths import PREPROCESSED_DATA_DIR
from harness.core.storage import (
    StorageError,
    file_stamp,
    folder_lock,
    folder_locks,
    fsync_dir,
    pwrite_all,
    read_json,
    storage_error,
    write_json_atomic,
)
from harness.core.errors import HarnessError
from harness.graph.formats import check_format, format_dtype, format_shape, to_format
from resnet50.imagenet import RECIPES, ImageMap, preprocess_file
from resnet50.models import ModelSpec

MANIFEST_VERSION = 3       # 3: the array file's stamp, CRCs read back from disk
COMMIT_SECONDS = 2.0      # how often finished rows are fsynced and recorded in the done-map
VERIFY_SAMPLE_ROWS = 64   # rows whose CRC-32 every load checks (all rows with --verify or when the file changed)
PARTIAL_SUFFIXES = (".partial", ".partial.done", ".partial.json", ".partial.compact")


# ----------------------------------------------------------------------------------------------------------------
# Preprocessed arrays: paths and manifests
def array_paths(base_dir: str, model: ModelSpec, fmt: str, image_map: ImageMap) -> tuple[str, str]:
    folder = os.path.join(base_dir, "imagenet", model.key, fmt)
    return os.path.join(folder, image_map.name + ".npy"), os.path.join(folder, image_map.name + ".manifest.json")


def default_preprocessed_dir() -> str:
    return PREPROCESSED_DATA_DIR


def _identity(model: ModelSpec, fmt: str, image_map: ImageMap) -> dict:
    """What an array is of: a manifest that differs in any of these describes a different array."""
    ident = {"version": MANIFEST_VERSION, "model": model.key, "format": fmt, "recipe": model.recipe,
             "recipe_params": RECIPES[model.recipe], "dtype": format_dtype(fmt).name,
             "sample_shape": list(format_shape(fmt, model.input_shape)), "source_map_md5": image_map.md5,
             "map_images": len(image_map.files)}
    if fmt != "fp32_nchw":
        ident["input_scale"] = model.input_scale
    return ident


_write_json_atomic = write_json_atomic


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


def is_up_to_date(model: ModelSpec, fmt: str, image_map: ImageMap, base_dir: str, allow_missing: bool = False,
                  verify: bool = False, say=print) -> bool:
    """The array and its manifest describe these inputs and pass verification (a sample of rows, every row with
    `verify`); a failed verification is said (it is then preprocessed again)."""
    npy, manifest_path = array_paths(base_dir, model, fmt, image_map)
    manifest = read_json(manifest_path, missing=None, invalid=None)
    if manifest is None or not os.path.exists(npy):
        return False
    if any(manifest.get(k) != v for k, v in _identity(model, fmt, image_map).items()):
        return False
    if manifest.get("skipped") and not allow_missing:
        return False        # made with --allow_missing: without it, try those images again (or fail naming them)
    if _npy_rows(npy) != manifest.get("shape", [None])[0]:
        return False
    try:
        changed = manifest.get("array_stamp") != file_stamp(npy)
        verify_array(npy, manifest_path, manifest, full=verify, progress=bool(say))
    except HarnessError as e:
        if say:
            say(f"[preprocess] {e} Preprocessing it again.")
        return False
    if changed:         # copied or moved, every row verified: record the new stamp (the caller holds the lock)
        _write_json_atomic(manifest_path, dict(manifest, array_stamp=file_stamp(npy)))
        if say:
            say(f"[preprocess] {npy}: every row verified after the file changed (copied or moved); stamp updated.")
    return True


# ----------------------------------------------------------------------------------------------------------------
# Verification
def _crc_rows(npy: str, rows: Sequence[int]) -> list[int]:
    array = np.load(npy, mmap_mode="r")
    return [row_crc32(array[i]) for i in rows]


def sample_rows(n: int, k: int = VERIFY_SAMPLE_ROWS) -> list[int]:
    """First, last, evenly spaced and random rows (k in all, at most n)."""
    if n <= k:
        return list(range(n))
    even = np.linspace(0, n - 1, k // 2).astype(np.int64)
    rand = np.random.default_rng().choice(n, k - len(even), replace=False)
    return sorted(set(even.tolist()) | set(rand.tolist()))


def verify_array(npy: str, manifest_path: str, manifest: dict, full: bool = False, progress: bool = False) -> int:
    """Check the array against its manifest: the CRC list against the checksum, then the CRC-32 of a sample of rows
    (every row when `full` or when the file's stamp differs from the one recorded). Returns the rows checked;
    raises HarnessError naming the rows that differ."""
    n = (manifest.get("shape") or [0])[0]
    crcs = manifest.get("row_crc32")
    if not isinstance(crcs, list) or len(crcs) != n or rows_checksum(crcs) != manifest.get("checksum"):
        raise HarnessError(f"{manifest_path}: its row CRCs do not match its checksum (edited or damaged); the array "
                           f"{npy} cannot be trusted.")
    try:
        changed = manifest.get("array_stamp") != file_stamp(npy)
    except OSError as e:
        raise storage_error(e, npy, "reading") from None
    rows = list(range(n)) if (full or changed) else sample_rows(n)
    if progress and (full or changed):
        why = "--verify" if full else "the file changed since it was written"
        print(f"[verify] {npy}: checking the CRC-32 of all {n} rows ({why}) ...", flush=True)
    bad = [i for i, c in zip(rows, _crc_rows(npy, rows)) if c != crcs[i]]
    if bad:
        raise HarnessError(f"{npy}: {len(bad)} of {len(rows)} rows checked differ from the CRC-32 recorded when "
                           f"they were written (rows {', '.join(map(str, bad[:8]))}{' ...' if len(bad) > 8 else ''}): "
                           "the file was damaged or changed after preprocessing.")
    return len(rows)


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
    # Forked workers inherit the parent's Python signal handlers (code/main.py turns SIGTERM into an exception):
    # Pool.terminate() must end a worker at once, and Ctrl-C is the parent's to handle.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _W.clear()
    _W.update(recipe=recipe, scale=scale, targets={})
    for fmt, path in partials.items():
        buf = np.empty(format_shape(fmt, chw), format_dtype(fmt))
        _W["targets"][fmt] = (os.open(path, os.O_RDWR), _npy_data_offset(path), buf, path)
    _W["fp32"] = _W["targets"]["fp32_nchw"][2] if "fp32_nchw" in partials else np.empty(chw, np.float32)


def _worker(jobs: list[tuple[int, str]]) -> list[tuple[int, Optional[dict], Optional[str]]]:
    recipe, scale, targets, fp32 = _W["recipe"], _W["scale"], _W["targets"], _W["fp32"]
    out = []
    for index, path in jobs:
        try:
            preprocess_file(path, recipe, fp32)
            for fmt, (fd, offset, buf, _) in targets.items():
                if fmt != "fp32_nchw":
                    to_format(fp32, fmt, scale, buf)
        except Exception as e:  # reported with the file's name, never skipped silently
            out.append((index, None, str(e) if isinstance(e, ValueError) else f"{type(e).__name__}: {e}"))
            continue
        crcs = {}
        for fmt, (fd, offset, buf, target) in targets.items():
            at = offset + index * buf.nbytes
            pwrite_all(fd, buf, at, target)      # StorageError: ends the run, never "bad image"
            try:
                back = os.pread(fd, buf.nbytes, at)
            except OSError as e:
                raise storage_error(e, target, "reading back") from None
            if back != buf.tobytes():
                raise StorageError(f"{target}: row {index} ({os.path.basename(path)}) read back differs from what "
                                   "was written: the storage lost data. Check the disk, then run again (rows "
                                   "already recorded are kept).")
            crcs[fmt] = row_crc32(buf)
        out.append((index, crcs, None))
    return out


def _open_partial(npy: str, ident: dict, shape: tuple, dtype: np.dtype) -> tuple[str, np.memmap]:
    """The partial array and its done-map (per row: -1, or the CRC-32 of the row on disk), resumed when they belong
    to the same inputs, else created afresh."""
    partial, done_path, state_path = npy + ".partial", npy + ".partial.done", npy + ".partial.json"
    n = shape[0]
    state = read_json(state_path, missing=None, invalid=None)
    resumable = (state == ident and _npy_rows(partial) == n and os.path.exists(done_path)
                 and os.path.getsize(done_path) == 8 * n)
    try:
        if not resumable:
            _remove(state_path, done_path, partial)
            os.makedirs(os.path.dirname(npy), exist_ok=True)
            np.lib.format.open_memmap(partial, mode="w+", dtype=dtype, shape=shape).flush()   # header + sparse file
            np.full(n, -1, np.int64).tofile(done_path)
            _write_json_atomic(state_path, ident)
        return partial, np.memmap(done_path, dtype=np.int64, mode="r+", shape=(n,))
    except OSError as e:
        raise storage_error(e, getattr(e, "filename", None) or partial) from None


def _remove(*paths: str) -> None:
    for p in paths:
        try:
            os.remove(p)
        except FileNotFoundError:
            pass
        except OSError as e:
            raise storage_error(e, p, "removing") from None


@dataclass
class PreprocessResult:
    paths: dict           # format -> array path
    skipped: dict         # file -> reason, images left out under --allow_missing
    done_now: int         # images this call processed (0: everything was up to date)


def preprocess(model: ModelSpec, image_map: ImageMap, data_dir: str, base_dir: str,
               formats: Iterable[str] = ("fp32_nchw",), allow_missing: bool = False, overwrite: bool = False,
               workers: Optional[int] = None, progress: bool = True, chunk: Optional[int] = None,
               verify: bool = False) -> PreprocessResult:
    """Preprocess every image of the map into one array per format, in one decoding pass on all cores.

    Idempotent (formats whose array and manifest are up to date and verify are left alone; `verify` checks every
    row of them), resumable (an interrupted run continues where it stopped), and exclusive (each format folder is
    locked while this runs). Returns the array paths, the images skipped (--allow_missing) and how many images this
    call processed.
    """
    formats = list(dict.fromkeys(check_format(f) for f in formats))
    folders = [os.path.dirname(array_paths(base_dir, model, fmt, image_map)[0]) for fmt in formats]
    with folder_locks(folders, f"preprocess {image_map.name}"):
        return _preprocess_locked(model, image_map, data_dir, base_dir, formats, allow_missing, overwrite, workers,
                                  progress, chunk, verify)


def _preprocess_locked(model, image_map, data_dir, base_dir, formats, allow_missing, overwrite, workers, progress,
                       chunk, verify) -> PreprocessResult:
    result = PreprocessResult({}, {}, 0)
    todo_formats = []
    for fmt in formats:
        npy, manifest_path = array_paths(base_dir, model, fmt, image_map)
        result.paths[fmt] = npy
        _remove(npy + ".partial.compact")      # an interrupted compaction's leftover: never reused
        if not overwrite and is_up_to_date(model, fmt, image_map, base_dir, allow_missing, verify):
            result.skipped = (read_json(manifest_path, missing=None, invalid=None) or {}).get("skipped", {})
            if progress:
                checked = "every row verified" if verify else "verified"
                print(f"[preprocess] {npy} is up to date ({len(image_map.files)} images, {checked}); nothing to do.")
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
        if overwrite:          # only ever what this run holds the lock of
            _remove(*(npy + s for s in PARTIAL_SUFFIXES))
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
        """fsync (a write-back error ends the run), then record the rows as done with their CRC-32s (the workers
        read every row back after writing it and compared it byte for byte)."""
        if not pending:
            return
        for fmt, fd in fds.items():
            try:
                os.fsync(fd)               # rows on disk before the done-map says so
            except OSError as e:
                raise storage_error(e, partials[fmt]) from None
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
        try:
            final = _compact(partials[fmt], keep, crcs) if bad else partials[fmt]
            fd = os.open(final, os.O_RDWR)
            try:
                os.fsync(fd)                   # the array is on disk before its name says it is complete
            finally:
                os.close(fd)
            _remove(manifest_path)             # an old manifest must never describe the new array
            os.replace(final, npy)
            fsync_dir(os.path.dirname(npy))
        except OSError as e:
            raise storage_error(e, getattr(e, "filename", None) or npy) from None
        manifest = dict(idents[fmt], shape=[len(keep), *format_shape(fmt, model.input_shape)],
                        source_map=image_map.path, data_dir=os.path.abspath(data_dir),
                        files=[image_map.files[i] for i in keep], skipped=skipped,
                        labels=None if image_map.labels is None else image_map.labels[keep].tolist(),
                        checksum=rows_checksum(crcs), row_crc32=crcs, array_stamp=file_stamp(npy),
                        created=time.strftime("%Y-%m-%dT%H:%M:%S"))
        _write_json_atomic(manifest_path, manifest)
        _remove(*(npy + s for s in PARTIAL_SUFFIXES))
    result.skipped = skipped
    if skipped:
        print(f"[preprocess] WARNING: {image_map.name}: skipped {len(skipped)} of {n} images (--allow_missing; "
              f"listed under `skipped` in the manifests), first: {', '.join(list(skipped)[:5])}.")
    if progress and result.done_now:
        print(f"[preprocess] {label}: {len(keep)} images -> "
              + ", ".join(array_paths(base_dir, model, f, image_map)[0] for f in todo_formats))
    return result


def _compact(partial: str, keep: np.ndarray, crcs: Sequence[int], rows_per_chunk: int = 64) -> str:
    """A copy of `partial` without the skipped rows, chunk by chunk (a 50,000-image array need not fit in memory),
    with checked writes; every copied row's CRC-32 is compared with the one recorded. The copy is
    `<partial>.compact` until it is complete; a failure removes it (and the next run would)."""
    src = np.load(partial, mmap_mode="r")
    out_path = partial + ".compact"
    shape = (len(keep), *src.shape[1:])
    row_bytes = int(np.prod(src.shape[1:])) * src.dtype.itemsize
    try:
        np.lib.format.open_memmap(out_path, mode="w+", dtype=src.dtype, shape=shape).flush()   # header only
        offset = _npy_data_offset(out_path)
        fd = os.open(out_path, os.O_RDWR)
        try:
            for s in range(0, len(keep), rows_per_chunk):
                block = np.ascontiguousarray(src[keep[s:s + rows_per_chunk]])
                for j, row in enumerate(block):
                    if row_crc32(row) != crcs[s + j]:
                        raise StorageError(f"{partial}: row {int(keep[s + j])} differs from the CRC-32 recorded "
                                           "when it was written; run with --overwrite.")
                pwrite_all(fd, block, offset + s * row_bytes, out_path)
            os.fsync(fd)
        finally:
            os.close(fd)
    except BaseException as e:
        src = None             # the memory map closed before the copy is removed
        try:
            os.remove(out_path)
        except OSError:
            pass
        if isinstance(e, OSError):
            raise storage_error(e, out_path) from None
        raise
    src = None
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


def load_preprocessed(model: ModelSpec, image_map: ImageMap, base_dir: str, fmt: str = "fp32_nchw",
                      verify: bool = False) -> PreprocessedSet:
    """The array of `image_map` in `fmt`, checked against its manifest and verified (a sample of rows; every row
    with `verify` or when the file changed since it was written), under a shared lock of its folder."""
    check_format(fmt)
    npy, _ = array_paths(base_dir, model, fmt, image_map)
    with folder_lock(os.path.dirname(npy), "load", shared=True):
        return _load_locked(model, image_map, base_dir, fmt, verify)


def _load_locked(model: ModelSpec, image_map: ImageMap, base_dir: str, fmt: str, verify: bool) -> PreprocessedSet:
    npy, manifest_path = array_paths(base_dir, model, fmt, image_map)
    if not (os.path.exists(npy) and os.path.exists(manifest_path)):
        partial = " (an interrupted run left a partial array: run the same command again to resume it)" \
            if os.path.exists(npy + ".partial") else ""
        raise HarnessError(f"No preprocessed data at {npy} for model {model.key}, format {fmt} and map "
                           f"{image_map.path}{partial}. Run `make preprocess_data RUN_ARGS=\"--model={model.key} "
                           f"--map_path={image_map.path} --formats={fmt} --data_dir=<images>\"` first.")
    manifest = read_json(manifest_path, missing=None, invalid=None)
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
    try:
        verify_array(npy, manifest_path, manifest, full=verify, progress=True)
    except StorageError:
        raise
    except HarnessError as e:
        raise HarnessError(f"{e} Run `make preprocess_data RUN_ARGS=\"--model={model.key} --map_path="
                           f"{image_map.path} --formats={fmt} --data_dir=<images>\"` (it preprocesses a damaged "
                           "array again).") from None
    labels = None if manifest.get("labels") is None else np.asarray(manifest["labels"], np.int32)
    return PreprocessedSet(npy, array, labels, manifest["files"], manifest)
