"""The worker pool that fills the preprocessed arrays (resnet50/array_store.py) from the ImageNet recipes
(resnet50/imagenet.py), and its progress bar in images/s.

One process per core, each decoding whole images into local buffers and writing its rows straight into the partial
arrays with pwrite (no tensors pickled back to the parent, no page faults of a shared memory map). Every pwrite is
checked (a short write is continued, a failed one is a StorageError naming the file and the cause: disk full,
read-only, permission, never "bad image"); each worker reads every row back right after writing it and compares it
byte for byte, and returns the row's CRC-32 for the done-map and the manifest.
"""
from __future__ import annotations

import os
import signal
import sys
import time
from typing import Optional

import numpy as np

from harness.core.storage import StorageError, pwrite_all, storage_error
from harness.graph.formats import format_dtype, format_shape, to_format
from resnet50.array_store import npy_data_offset
from resnet50.imagenet import preprocess_file
from resnet50.manifest import row_crc32


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
# Workers
_W: dict = {}


def worker_init(partials: dict, recipe: str, scale: float, chw: tuple) -> None:
    # Forked workers inherit the parent's Python signal handlers (code/main.py turns SIGTERM into an exception):
    # Pool.terminate() must end a worker at once, and Ctrl-C is the parent's to handle.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _W.clear()
    _W.update(recipe=recipe, scale=scale, targets={})
    for fmt, path in partials.items():
        buf = np.empty(format_shape(fmt, chw), format_dtype(fmt))
        _W["targets"][fmt] = (os.open(path, os.O_RDWR), npy_data_offset(path), buf, path)
    _W["fp32"] = _W["targets"]["fp32_nchw"][2] if "fp32_nchw" in partials else np.empty(chw, np.float32)


def worker(jobs: list[tuple[int, str]]) -> list[tuple[int, Optional[dict], Optional[str]]]:
    """(index, {format: CRC-32} or None, error or None) for each (index, image path) of `jobs`."""
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
        out.append((index, _write_rows(targets, index, path), None))
    return out


def _write_rows(targets: dict, index: int, path: str) -> dict:
    """Row `index` of every target written, read back and compared; its CRC-32 per format."""
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
    return crcs
