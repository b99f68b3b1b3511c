"""The preprocessed-array store on disk: partial arrays and their done-maps while a run writes them, their
compaction and installation under the final name, and loading a finished array (resnet50/manifest.py holds what
an array is of and how it is checked).

A run is resumable and never leaves a half-written array looking complete: the arrays are written as
`<name>.npy.partial`, `<name>.npy.partial.done` holds per row -1 or the CRC-32 of the row on disk, and
`<name>.npy.partial.json` records what the partial array is of. Only a finished array is fsynced and renamed to
`<name>.npy`, after which its manifest is renamed into place. Leftovers of an interrupted compaction
(`.partial.compact`) are removed by the next run. Loading holds a shared lock of the format folder.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from harness.core.errors import HarnessError
from harness.core.names import make_command
from harness.core.storage import (
    StorageError,
    folder_lock,
    fsync_dir,
    pwrite_all,
    read_json,
    storage_error,
    write_json_atomic,
)
from harness.graph.formats import check_format, format_shape
from resnet50.imagenet import ImageMap
from resnet50.manifest import array_paths, identity, labels_match_map, npy_rows, row_crc32, verify_array
from resnet50.models import ModelSpec

PARTIAL_SUFFIXES = (".partial", ".partial.done", ".partial.json", ".partial.compact")


# ----------------------------------------------------------------------------------------------------------------
# Partial arrays
def npy_data_offset(path: str) -> int:
    with open(path, "rb") as f:
        version = np.lib.format.read_magic(f)
        (np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0)(f)
        return f.tell()


def open_partial(npy: str, ident: dict, shape: tuple, dtype: np.dtype) -> tuple[str, np.memmap]:
    """The partial array and its done-map (per row: -1, or the CRC-32 of the row on disk), resumed when they belong
    to the same inputs, else created afresh."""
    partial, done_path, state_path = npy + ".partial", npy + ".partial.done", npy + ".partial.json"
    n = shape[0]
    state = read_json(state_path, missing=None, invalid=None)
    resumable = (state == ident and npy_rows(partial) == n and os.path.exists(done_path)
                 and os.path.getsize(done_path) == 8 * n)
    try:
        if not resumable:
            remove_files(state_path, done_path, partial)
            os.makedirs(os.path.dirname(npy), exist_ok=True)
            np.lib.format.open_memmap(partial, mode="w+", dtype=dtype, shape=shape).flush()   # header + sparse file
            np.full(n, -1, np.int64).tofile(done_path)
            write_json_atomic(state_path, ident)
        return partial, np.memmap(done_path, dtype=np.int64, mode="r+", shape=(n,))
    except OSError as e:
        raise storage_error(e, getattr(e, "filename", None) or partial) from None


def remove_files(*paths: str) -> None:
    for p in paths:
        try:
            os.remove(p)
        except FileNotFoundError:
            pass
        except OSError as e:
            raise storage_error(e, p, "removing") from None


def compact(partial: str, keep: np.ndarray, crcs: Sequence[int], rows_per_chunk: int = 64) -> str:
    """A copy of `partial` without the skipped rows, chunk by chunk (a 50,000-image array need not fit in memory),
    with checked writes; every copied row's CRC-32 is compared with the one recorded. The copy is
    `<partial>.compact` until it is complete; a failure removes it (and the next run would)."""
    src = np.load(partial, mmap_mode="r")
    out_path = partial + ".compact"
    shape = (len(keep), *src.shape[1:])
    row_bytes = int(np.prod(src.shape[1:])) * src.dtype.itemsize
    try:
        np.lib.format.open_memmap(out_path, mode="w+", dtype=src.dtype, shape=shape).flush()   # header only
        offset = npy_data_offset(out_path)
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


def install_array(partial: str, npy: str, manifest_path: str, keep: np.ndarray, crcs: Sequence[int],
                  drop_rows: bool) -> None:
    """The finished partial array (compacted first when `drop_rows`) fsynced and renamed to `npy`; an old manifest
    beside it is removed first (it must never describe the new array). The caller then writes the new one."""
    try:
        final = compact(partial, keep, crcs) if drop_rows else partial
        fd = os.open(final, os.O_RDWR)
        try:
            os.fsync(fd)                   # the array is on disk before its name says it is complete
        finally:
            os.close(fd)
        remove_files(manifest_path)        # an old manifest must never describe the new array
        os.replace(final, npy)
        fsync_dir(os.path.dirname(npy))
    except OSError as e:
        raise storage_error(e, getattr(e, "filename", None) or npy) from None


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


def _remedy(model: ModelSpec, image_map: ImageMap, fmt: str) -> str:
    return make_command("preprocess_data", [f"--model={model.key}", f"--map_path={image_map.path}",
                                            f"--formats={fmt}", "--data_dir=/path/to/images"])


def _read_manifest(model: ModelSpec, image_map: ImageMap, fmt: str, npy: str, manifest_path: str) -> dict:
    """The manifest beside `npy`, refused when missing, unreadable or of other inputs."""
    if not (os.path.exists(npy) and os.path.exists(manifest_path)):
        partial = " (an interrupted run left a partial array: run the same command again to resume it)" \
            if os.path.exists(npy + ".partial") else ""
        raise HarnessError(f"No preprocessed data at {npy} for model {model.key}, format {fmt} and map "
                           f"{image_map.path}{partial}. Run `{_remedy(model, image_map, fmt)}` first.")
    manifest = read_json(manifest_path, missing=None, invalid=None)
    if manifest is None:
        raise HarnessError(f"{manifest_path} is not readable JSON; re-run preprocess_data with --overwrite.")
    for key, want in identity(model, fmt, image_map).items():
        if key == "map_images":
            continue
        if manifest.get(key) != want:
            raise HarnessError(f"{manifest_path}: the array was preprocessed with {key}={manifest.get(key)!r}, but "
                               f"this run needs {want!r} (model {model.key}, format {fmt}). Re-run preprocess_data "
                               "for this model and format (add --overwrite).")
    return manifest


def _load_locked(model: ModelSpec, image_map: ImageMap, base_dir: str, fmt: str, verify: bool) -> PreprocessedSet:
    npy, manifest_path = array_paths(base_dir, model, fmt, image_map)
    manifest = _read_manifest(model, image_map, fmt, npy, manifest_path)
    remake = (f"Run `make preprocess_data RUN_ARGS=\"--model={model.key} --map_path={image_map.path} --formats={fmt} "
              "--data_dir=<images> --overwrite\"` to make it again.")
    array = _open_array(npy, manifest, remake)
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
        raise HarnessError(f"{e} Run `{_remedy(model, image_map, fmt)}` (it preprocesses a damaged "
                           "array again).") from None
    labels = None if manifest.get("labels") is None else np.asarray(manifest["labels"], np.int32)
    if not labels_match_map(manifest, image_map):
        raise HarnessError(f"{manifest_path}: its labels differ from those of {image_map.path} for the same files "
                           f"(edited or damaged): accuracy against them would be meaningless. {remake}")
    return PreprocessedSet(npy, array, labels, manifest["files"], manifest)


def _open_array(npy: str, manifest: dict, remake: str) -> np.ndarray:
    """The array memory-mapped, or one HarnessError naming the file when it is not a complete .npy array (empty,
    truncated, garbage) of the manifest's dtype."""
    try:
        array = np.load(npy, mmap_mode="r")
    except OSError as e:
        if e.errno is not None:
            raise storage_error(e, npy, "reading") from None
        array = None
    except (ValueError, EOFError):
        array = None
    if array is None or npy_rows(npy) is None or array.dtype.name != manifest.get("dtype"):
        raise HarnessError(f"{npy} is not a complete .npy array of {manifest.get('dtype')} rows of shape "
                           f"{manifest.get('sample_shape')} (empty, truncated or damaged). {remake}")
    return array

