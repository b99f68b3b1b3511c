"""Preprocessing: one decoding pass over an image map into one contiguous .npy array per format, on all cores.

The pieces, each in its own module of code/resnet50/:

    manifest.py         the array's paths and manifest (what it is of), row CRC-32s and their digest, verification
    array_store.py      partial arrays and done-maps, compaction, installing a finished array, loading one
    preprocess_pool.py  the worker pool (decode, convert, pwrite, read back) and the progress bar
    preprocessing.py    this module: preprocess(), which runs them in order under the folders' locks

    build/preprocessed_data/imagenet/<model>/<format>/<map name>.npy
    build/preprocessed_data/imagenet/<model>/<format>/<map name>.manifest.json

Formats (one sample each; C, H, W from the model registry):

    fp32_nchw    float32 (C, H, W)            the recipe's output; calibration and FP32 engines read it
    int8_linear  int8    (C, H, W)            round(x / input_scale) clipped to [-128, 127] (ONNX QuantizeLinear)
    int8_nhwc    int8    (H, W, C)            the same values, channels last
    int8_chw4    int8    (ceil(C/4), H, W, 4) TensorRT's vectorised kCHW4: channels padded with zeros to 4

The work runs on all cores (one process per core), with a progress bar in images/s. A run is resumable and never
leaves a half-written array looking complete (resnet50/array_store.py): finished rows are committed to the
done-map every COMMIT_SECONDS, only after an fsync of the array, so the done-map and the manifest hold the CRCs of
what is in the file.

Integrity (harness/core/storage.py): a run holds an exclusive lock on each format folder it writes (a second run
waits, then refuses; `--overwrite` never deletes what another run holds); storage failures are StorageErrors naming
the file and the cause, never "bad image".

The names other modules use (load_preprocessed, array_paths, default_preprocessed_dir, available_cores, ...) are
importable from here as before.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from multiprocessing import get_context
from typing import Iterable, Optional

import numpy as np

from harness.core.errors import HarnessError
from harness.core.storage import (
    StorageError,
    file_stamp,
    folder_locks,
    pwrite_all,
    read_json,
    storage_error,
    write_json_atomic,
)
from harness.graph.formats import check_format, format_dtype, format_shape
from resnet50.array_store import (
    PARTIAL_SUFFIXES,
    PreprocessedSet,
    install_array,
    load_preprocessed,
    open_partial,
    remove_files,
)
from resnet50.imagenet import ImageMap
from resnet50.manifest import (
    MANIFEST_VERSION,
    VERIFY_SAMPLE_ROWS,
    array_checksum,
    array_paths,
    default_preprocessed_dir,
    identity,
    is_up_to_date,
    labels_digest,
    row_crc32,
    rows_checksum,
    sample_rows,
    source_identity,
    verify_array,
)
from resnet50.models import ModelSpec
from resnet50.preprocess_pool import Progress, available_cores, worker, worker_init

# Importable from here as before the split (the actions, the loadgen layer, scripts and tests use them).
__all__ = ["COMMIT_SECONDS", "MANIFEST_VERSION", "PARTIAL_SUFFIXES", "VERIFY_SAMPLE_ROWS", "PreprocessResult",
           "PreprocessedSet", "Progress", "StorageError", "array_checksum", "array_paths", "available_cores",
           "default_preprocessed_dir", "is_up_to_date", "load_preprocessed", "preprocess", "pwrite_all",
           "row_crc32", "rows_checksum", "sample_rows", "storage_error", "verify_array"]

COMMIT_SECONDS = 2.0      # how often finished rows are fsynced and recorded in the done-map


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


@dataclass
class _Run:
    """One preprocessing run of the formats not up to date: its inputs and the partial arrays it fills."""
    model: ModelSpec
    image_map: ImageMap
    data_dir: str
    base_dir: str
    formats: list            # the formats to (re)make
    paths: list              # image paths, in map order
    missing: list            # indices of the images not on disk (--allow_missing)
    partials: dict           # format -> partial array path
    done_maps: dict          # format -> done-map (per row -1 or the CRC-32 on disk)
    idents: dict             # format -> manifest identity

    @property
    def label(self) -> str:
        return f"{self.image_map.name} ({'+'.join(self.formats)})"


def _preprocess_locked(model, image_map, data_dir, base_dir, formats, allow_missing, overwrite, workers, progress,
                       chunk, verify) -> PreprocessResult:
    result = PreprocessResult({}, {}, 0)
    todo_formats = _formats_to_make(model, image_map, base_dir, data_dir, formats, allow_missing, overwrite, verify,
                                    progress, result)
    if not todo_formats:
        return result
    paths, missing = _image_paths(image_map, data_dir, allow_missing)
    run = _open_run(model, image_map, data_dir, base_dir, todo_formats, paths, missing, overwrite)
    done = np.logical_and.reduce([m >= 0 for m in run.done_maps.values()])
    bad: dict[int, str] = {i: "missing" for i in missing}
    todo = [i for i in range(len(paths)) if not done[i] and i not in bad]
    already = int(done.sum())
    if already and progress:
        print(f"[preprocess] {run.label}: resuming, {already} of {len(paths)} images already done.")
    result.done_now += _fill(run, todo, bad, already, workers, chunk, progress)
    _refuse_unreadable(bad, paths, allow_missing)
    keep = np.asarray([i for i in range(len(paths)) if i not in bad], dtype=np.int64)
    skipped = {image_map.files[i]: e for i, e in sorted(bad.items())}
    for fmt in todo_formats:
        _finish_format(run, fmt, keep, skipped, drop_rows=bool(bad))
    result.skipped = skipped
    if skipped:
        print(f"[preprocess] WARNING: {image_map.name}: skipped {len(skipped)} of {len(paths)} images "
              "(--allow_missing; "
              f"listed under `skipped` in the manifests), first: {', '.join(list(skipped)[:5])}.")
    if progress and result.done_now:
        print(f"[preprocess] {run.label}: {len(keep)} images -> "
              + ", ".join(array_paths(base_dir, model, f, image_map)[0] for f in todo_formats))
    return result


def _formats_to_make(model, image_map, base_dir, data_dir, formats, allow_missing, overwrite, verify, progress,
                     result: PreprocessResult) -> list:
    """The formats whose array is missing, stale or fails verification (all with `overwrite`); the array paths of
    every format go into `result`, and the skipped images of one up to date."""
    todo_formats = []
    for fmt in formats:
        npy, manifest_path = array_paths(base_dir, model, fmt, image_map)
        result.paths[fmt] = npy
        remove_files(npy + ".partial.compact")      # an interrupted compaction's leftover: never reused
        if not overwrite and is_up_to_date(model, fmt, image_map, base_dir, allow_missing, verify,
                                           data_dir=data_dir):
            result.skipped = (read_json(manifest_path, missing=None, invalid=None) or {}).get("skipped", {})
            if progress:
                checked = "every row verified" if verify else "verified"
                print(f"[preprocess] {npy} is up to date ({len(image_map.files)} images, {checked}); nothing to do.")
        else:
            todo_formats.append(fmt)
    return todo_formats


def _image_paths(image_map: ImageMap, data_dir: str, allow_missing: bool) -> tuple[list, list]:
    """The map's image paths under `data_dir` and the indices of those missing (refused without allow_missing)."""
    if not os.path.isdir(data_dir):
        raise HarnessError(f"Image folder {data_dir} does not exist; pass --data_dir or set MLPERF_SCRATCH_PATH.")
    paths = [os.path.join(data_dir, name) for name in image_map.files]
    missing_idx = [i for i, p in enumerate(paths) if not os.path.isfile(p)]
    if missing_idx and not allow_missing:
        names = ", ".join(image_map.files[i] for i in missing_idx[:5])
        raise HarnessError(f"{len(missing_idx)} of {len(paths)} images named in {image_map.path} are missing from "
                           f"{data_dir} (first: {names}). Fix --data_dir/--map_path/--calib_data_map, or pass "
                           "--allow_missing to skip them (recorded in the manifest and the run summary).")
    return paths, missing_idx


def _open_run(model, image_map, data_dir, base_dir, todo_formats, paths, missing, overwrite) -> _Run:
    """The partial arrays and done-maps of every format to make: resumed, or afresh (always with `overwrite`)."""
    n = len(paths)
    partials, done_maps, idents = {}, {}, {}
    for fmt in todo_formats:
        npy, _ = array_paths(base_dir, model, fmt, image_map)
        if overwrite:          # only ever what this run holds the lock of
            remove_files(*(npy + s for s in PARTIAL_SUFFIXES))
        idents[fmt] = identity(model, fmt, image_map)
        partials[fmt], done_maps[fmt] = open_partial(npy, idents[fmt], (n, *format_shape(fmt, model.input_shape)),
                                                     format_dtype(fmt))
    return _Run(model, image_map, data_dir, base_dir, todo_formats, paths, missing, partials, done_maps, idents)


class _Commits:
    """Rows the workers finished, recorded as done in the done-maps only after an fsync of the arrays."""

    def __init__(self, run: _Run):
        self.run = run
        self.fds = {fmt: os.open(p, os.O_RDWR) for fmt, p in run.partials.items()}
        self.pending: list[tuple[int, dict]] = []
        self.last = time.monotonic()

    def commit(self) -> None:
        """fsync (a write-back error ends the run), then record the rows as done with their CRC-32s (the workers
        read every row back after writing it and compared it byte for byte)."""
        if not self.pending:
            return
        for fmt, fd in self.fds.items():
            try:
                os.fsync(fd)               # rows on disk before the done-map says so
            except OSError as e:
                raise storage_error(e, self.run.partials[fmt]) from None
        rows = np.asarray([i for i, _ in self.pending], np.int64)
        for fmt, m in self.run.done_maps.items():
            m[rows] = [crcs[fmt] for _, crcs in self.pending]
            m.flush()
        self.pending.clear()

    def commit_when_due(self) -> None:
        if time.monotonic() - self.last >= COMMIT_SECONDS:
            self.commit()
            self.last = time.monotonic()

    def close(self) -> None:
        for fd in self.fds.values():
            os.close(fd)


def _fill(run: _Run, todo: list, bad: dict, already: int, workers, chunk, progress) -> int:
    """Rows `todo` preprocessed by the worker pool into the partial arrays and committed; images that could not be
    decoded go into `bad`. Returns how many images this call processed."""
    n = len(run.paths)
    nproc = max(1, min(workers or available_cores(), len(todo) or 1))
    size = chunk or max(1, min(32, len(todo) // (nproc * 8) or 1))
    jobs = [[(i, run.paths[i]) for i in todo[s:s + size]] for s in range(0, len(todo), size)]
    commits = _Commits(run)
    bar = Progress(run.label, n, already + len(run.missing), progress)
    count, done_now = already + len(run.missing), 0
    try:
        if jobs:
            with get_context("fork").Pool(nproc, worker_init, (run.partials, run.model.recipe, run.model.input_scale,
                                                              tuple(run.model.input_shape))) as pool:
                for results in pool.imap_unordered(worker, jobs):
                    for i, crcs, err in results:
                        if err is None:
                            commits.pending.append((i, crcs))
                        else:
                            bad[i] = err
                    count += len(results)
                    done_now += len(results)
                    bar.update(count)
                    commits.commit_when_due()
        commits.commit()
    finally:
        try:
            commits.commit()
        finally:
            commits.close()
            bar.close()
    return done_now


def _refuse_unreadable(bad: dict, paths: list, allow_missing: bool) -> None:
    unreadable = {i: e for i, e in bad.items() if e != "missing"}
    if unreadable and not allow_missing:
        first = "; ".join(f"{paths[i]} ({e})" for i, e in sorted(unreadable.items())[:5])
        raise HarnessError(f"{len(unreadable)} of {len(paths)} images could not be preprocessed (first: {first}). Replace "
                           "them and run again (the rest is kept and resumed), or pass --allow_missing to skip them "
                           "(recorded in the manifest and the run summary).")


def _finish_format(run: _Run, fmt: str, keep: np.ndarray, skipped: dict, drop_rows: bool) -> None:
    """The finished array of `fmt` installed under its name (without the skipped rows), then its manifest."""
    model, image_map = run.model, run.image_map
    npy, manifest_path = array_paths(run.base_dir, model, fmt, image_map)
    crcs = [int(c) for c in run.done_maps[fmt][keep]]
    del run.done_maps[fmt]
    if min(crcs, default=0) < 0:   # every kept row must have been written and recorded
        raise HarnessError(f"{npy}.partial: {sum(c < 0 for c in crcs)} rows were never written; run again.")
    source = source_identity(image_map, run.data_dir)     # before the array is installed (what it was read from)
    install_array(run.partials[fmt], npy, manifest_path, keep, crcs, drop_rows)
    labels = None if image_map.labels is None else image_map.labels[keep].tolist()
    manifest = dict(run.idents[fmt], shape=[len(keep), *format_shape(fmt, model.input_shape)],
                    source_map=image_map.path, **source,
                    files=[image_map.files[i] for i in keep], skipped=skipped,
                    labels=labels, labels_md5=labels_digest(labels),
                    checksum=rows_checksum(crcs), row_crc32=crcs, array_stamp=file_stamp(npy),
                    created=time.strftime("%Y-%m-%dT%H:%M:%S"))
    write_json_atomic(manifest_path, manifest)
    remove_files(*(npy + s for s in PARTIAL_SUFFIXES))
