"""What a preprocessed array is of, and how it is checked: its paths, its manifest's identity, the CRC-32 of every
row and their digest, and the verification that every load and every up-to-date check runs.

A preprocessed set is one contiguous .npy array per format plus a manifest (JSON) beside it that records the source
map and its checksum, the file order, the recipe and its parameters, the input scale of the int8 formats, the images
skipped under --allow_missing, the array file's stamp (size, mtime, inode, ctime), the array's checksum, the
image folder it was made from (`data_dir`, absolute, and `data_digest` over the name, size and mtime of every image
the map names: another folder or changed images rebuild the array) and the labels' digest (`labels_md5`, checked
on every load, so edited labels are refused):

    build/preprocessed_data/imagenet/<model>/<format>/<map name>.npy
    build/preprocessed_data/imagenet/<model>/<format>/<map name>.manifest.json

The manifest's `checksum` digests the rows' CRC-32s (`row_crc32`), which the workers compute as they write each row
(resnet50/preprocess_pool.py), so it costs no extra pass over the array. Loading checks the header, the shape, the
CRC list against the checksum, the labels against their digest, and the CRC-32 of a sample of rows
(VERIFY_SAMPLE_ROWS) when the stamp is unchanged; every row when the file changed since it was written, or with
`--verify`. The stamp holds the ctime, which every write (and os.utime) sets and nothing sets back: a byte changed in
place with the mtime restored changes the stamp, and the next load or preprocess_data checks every row and finds it
(docs/performance.md: the cost of either check).
"""
from __future__ import annotations

import hashlib
import os
import zlib
from typing import Optional, Sequence

import numpy as np

from harness.core.errors import HarnessError
from harness.core.paths import PREPROCESSED_DATA_DIR
from harness.core.storage import file_stamp, read_json, storage_error, write_json_atomic
from harness.graph.formats import format_dtype, format_shape
from resnet50.imagenet import RECIPES, ImageMap
from resnet50.models import ModelSpec

MANIFEST_VERSION = 4       # 3: the array file's stamp, CRCs read back from disk; 4: data_digest, labels_md5
VERIFY_SAMPLE_ROWS = 64   # rows whose CRC-32 every load checks (all rows with --verify or when the file changed)


# ----------------------------------------------------------------------------------------------------------------
# Paths and identity
def array_paths(base_dir: str, model: ModelSpec, fmt: str, image_map: ImageMap) -> tuple[str, str]:
    folder = os.path.join(base_dir, "imagenet", model.key, fmt)
    return os.path.join(folder, image_map.name + ".npy"), os.path.join(folder, image_map.name + ".manifest.json")


def default_preprocessed_dir() -> str:
    return PREPROCESSED_DATA_DIR


def identity(model: ModelSpec, fmt: str, image_map: ImageMap) -> dict:
    """What an array is of: a manifest that differs in any of these describes a different array."""
    ident = {"version": MANIFEST_VERSION, "model": model.key, "format": fmt, "recipe": model.recipe,
             "recipe_params": RECIPES[model.recipe], "dtype": format_dtype(fmt).name,
             "sample_shape": list(format_shape(fmt, model.input_shape)), "source_map_md5": image_map.md5,
             "map_images": len(image_map.files)}
    if fmt != "fp32_nchw":
        ident["input_scale"] = model.input_scale
    return ident


def source_identity(image_map: ImageMap, data_dir: str) -> dict:
    """What the images of an array were read from: the folder (absolute) and a digest over the (name, size, mtime)
    of every image the map names (one stat each; a missing image counts as such)."""
    h = hashlib.md5()
    for name in image_map.files:
        try:
            st = os.stat(os.path.join(data_dir, name))
            h.update(f"{name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        except OSError:
            h.update(f"{name}\0missing\n".encode())
    return {"data_dir": os.path.abspath(data_dir), "data_digest": "stat-md5:" + h.hexdigest()}


def labels_digest(labels) -> Optional[str]:
    """The digest of a manifest's labels (None for an array without labels)."""
    if labels is None:
        return None
    return "md5:" + hashlib.md5(np.asarray(labels, dtype="<i4").tobytes()).hexdigest()


def labels_match_map(manifest: dict, image_map: ImageMap) -> bool:
    """The manifest's labels are the map's labels of its files (a map without labels: none recorded)."""
    labels = manifest.get("labels")
    if image_map.labels is None:
        return labels is None
    by_file = dict(zip(image_map.files, image_map.labels.tolist()))
    return isinstance(labels, list) and labels == [by_file.get(f) for f in manifest.get("files") or []]


def npy_rows(path: str) -> Optional[int]:
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
                  verify: bool = False, say=print, data_dir: Optional[str] = None) -> bool:
    """The array and its manifest describe these inputs (with `data_dir`: read from that folder, its images
    unchanged) and pass verification (a sample of rows, every row with `verify` or when the file changed); a failed
    verification or another image folder is said (it is then preprocessed again)."""
    npy, manifest_path = array_paths(base_dir, model, fmt, image_map)
    manifest = read_json(manifest_path, missing=None, invalid=None)
    if manifest is None or not os.path.exists(npy):
        return False
    if any(manifest.get(k) != v for k, v in identity(model, fmt, image_map).items()):
        return False
    if manifest.get("skipped") and not allow_missing:
        return False        # made with --allow_missing: without it, try those images again (or fail naming them)
    if npy_rows(npy) != manifest.get("shape", [None])[0]:
        return False
    if not labels_match_map(manifest, image_map):
        if say:
            say(f"[preprocess] {manifest_path}: its labels differ from those of {image_map.path}: preprocessing it "
                "again.")
        return False
    if data_dir is not None and not _same_source(manifest, image_map, data_dir, npy, say):
        return False
    try:
        changed = manifest.get("array_stamp") != file_stamp(npy)
        verify_array(npy, manifest_path, manifest, full=verify, progress=bool(say))
    except HarnessError as e:
        if say:
            say(f"[preprocess] {e} Preprocessing it again.")
        return False
    if changed:         # copied or moved, every row verified: record the new stamp (the caller holds the lock)
        write_json_atomic(manifest_path, dict(manifest, array_stamp=file_stamp(npy)))
        if say:
            say(f"[preprocess] {npy}: every row verified after the file changed (copied or moved); stamp updated.")
    return True


def _same_source(manifest: dict, image_map: ImageMap, data_dir: str, npy: str, say) -> bool:
    source = source_identity(image_map, data_dir)
    if manifest.get("data_dir") != source["data_dir"]:
        if say:
            say(f"[preprocess] {npy} was made from the images in {manifest.get('data_dir')}, not {source['data_dir']} "
                "(--data_dir): preprocessing it again.")
        return False
    if manifest.get("data_digest") != source["data_digest"]:
        if say:
            say(f"[preprocess] {npy}: images in {source['data_dir']} named by {image_map.path} changed (size or "
                "mtime) since it was made: preprocessing it again.")
        return False
    return True


# ----------------------------------------------------------------------------------------------------------------
# Checksums: a CRC-32 of every row; the manifest keeps them and their digest, which changes when any row does.
def row_crc32(row: np.ndarray) -> int:
    return zlib.crc32(np.ascontiguousarray(row))


def rows_checksum(crcs: Sequence[int]) -> str:
    return "crc32rows-md5:" + hashlib.md5(np.asarray(crcs, dtype="<u4").tobytes()).hexdigest()


def array_checksum(array: np.ndarray) -> str:
    """The manifest's `checksum` recomputed from an array (to verify one)."""
    return rows_checksum([row_crc32(row) for row in array])


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
    labels = manifest.get("labels")
    if labels_digest(labels) != manifest.get("labels_md5") or (labels is not None and len(labels) != n):
        raise HarnessError(f"{manifest_path}: its labels do not match the digest recorded when it was written "
                           "(labels_md5; edited or damaged): accuracy against them would be meaningless.")
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
