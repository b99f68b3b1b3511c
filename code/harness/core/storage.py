"""Artifacts that prove themselves: folder locks, checked and atomic writes, and file digests.

- `folder_lock(folder, step)`: an exclusive `fcntl.flock` on `<folder>/.lock` for as long as a step writes there
  (preprocessed data, calibration, engines, staging). The lock file names its holder (pid, host, command, start). A
  second run waits up to `lock_timeout()` seconds (MLPERF_LOCK_TIMEOUT, default 600), saying whom it waits for, then
  refuses with a HarnessError naming the holder. The kernel drops a flock when its holder dies, so a killed run
  never leaves a folder locked.
- `pwrite_all(fd, data, offset, path)`: os.pwrite until every byte is written (a short write is retried; a write
  that makes no progress fails); OS errors are re-raised as `StorageError` naming the file and the cause (disk full,
  permission, read-only file system), never blamed on the input.
- `write_json_atomic` / `replace_atomic`: written to `<path>.partial`, fsynced, renamed, the folder fsynced.
- `file_md5` (a full read) and `cached_md5` (a full read only when the file's size, mtime or inode changed since the
  last one: build/cache/digests/).
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import socket
import sys
import time
from typing import Iterator, Optional

from harness.core.paths import REPO_ROOT
from harness.core.errors import HarnessError

LOCK_NAME = ".lock"
LOCK_TIMEOUT_ENV = "MLPERF_LOCK_TIMEOUT"
DEFAULT_LOCK_TIMEOUT = 600.0
DIGEST_CACHE_ENV = "MLPERF_DIGEST_CACHE"


def file_digest(path: str, algorithm: str = "md5") -> str:
    """The one digest helper: hex digest of a file's bytes, read in chunks (models, arrays and logs can be large)."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


class StorageError(HarnessError):
    """Writing or reading an artifact failed for a reason of the storage (full, read-only, no permission), not of
    the data."""


_CAUSES = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is exceeded",
    errno.EFBIG: "the file is larger than this process may write (file size limit)",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EIO: "an I/O error of the device",
}


def storage_error(e: OSError, path: str, doing: str = "writing") -> StorageError:
    cause = _CAUSES.get(e.errno, e.strerror or str(e))
    return StorageError(f"{path}: {doing} failed: {cause} ({errno.errorcode.get(e.errno, e.errno)}). Free space or "
                        "fix the folder's permissions (or pass another folder), then run the same command again: "
                        "finished work is kept and resumed.")


def is_storage_errno(e: BaseException) -> bool:
    return isinstance(e, OSError) and e.errno in _CAUSES


# ---------------------------------------------------------------------------------------------------------------
# Locks
def lock_timeout() -> float:
    try:
        return float(os.environ.get(LOCK_TIMEOUT_ENV, DEFAULT_LOCK_TIMEOUT))
    except ValueError:
        raise HarnessError(f"${LOCK_TIMEOUT_ENV}={os.environ[LOCK_TIMEOUT_ENV]!r}: expected seconds.") from None


def _holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0).decode() or "{}")
    except (OSError, ValueError, UnicodeDecodeError):
        return "another run"
    if not info:
        return "another run"
    return (f"pid {info.get('pid')} on {info.get('host')} ({info.get('step')}, since {info.get('since')}: "
            f"{info.get('command')})")


@contextlib.contextmanager
def folder_lock(folder: str, step: str, timeout: Optional[float] = None, shared: bool = False,
                lock_file: Optional[str] = None) -> Iterator[str]:
    """Hold `<folder>/.lock` (or `lock_file`: e.g. beside a tree that must hold nothing else), exclusive or shared
    for readers, while the block runs; see the module docstring."""
    if shared and not os.path.isdir(folder):
        yield folder                # nothing there to read (the reader says so)
        return
    lock_path = lock_file or os.path.join(folder, LOCK_NAME)
    try:
        os.makedirs(os.path.dirname(os.path.abspath(lock_path)), exist_ok=True)
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as e:
        if shared and e.errno in (errno.EROFS, errno.EACCES):
            yield folder            # a read-only store cannot be written by anyone: nothing to guard
            return
        raise storage_error(e, lock_path, "creating the lock") from None
    mode = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
    try:
        timeout = lock_timeout() if timeout is None else timeout
        start, said = time.monotonic(), False
        while True:
            try:
                fcntl.flock(fd, mode | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                waited = time.monotonic() - start
                if waited >= timeout:
                    raise HarnessError(
                        f"{folder} is in use by {_holder(fd)}; gave up after {waited:.0f} s. Wait for that run to "
                        f"finish (or stop it), then run this command again (${LOCK_TIMEOUT_ENV} sets the wait)."
                    ) from None
                if not said:
                    print(f"[lock] {folder} is in use by {_holder(fd)}; waiting up to {timeout:.0f} s ...",
                          file=sys.stderr, flush=True)
                    said = True
                time.sleep(min(0.2, max(timeout - waited, 0.01)))
        if not shared:
            info = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "step": step,
                               "since": time.strftime("%Y-%m-%dT%H:%M:%S"), "command": " ".join(sys.argv)[:500]})
            try:
                os.ftruncate(fd, 0)
                os.pwrite(fd, info.encode(), 0)
            except OSError:
                pass               # the lock holds without its note
        yield folder
    finally:
        if not shared:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
        os.close(fd)           # releases the flock


@contextlib.contextmanager
def folder_locks(folders, step: str, timeout: Optional[float] = None) -> Iterator[None]:
    """Several folder locks, always taken in sorted order (two runs never wait for each other in a cycle)."""
    with contextlib.ExitStack() as stack:
        for folder in sorted(set(os.path.abspath(f) for f in folders)):
            stack.enter_context(folder_lock(folder, step, timeout))
        yield


# ---------------------------------------------------------------------------------------------------------------
# Checked writes
def pwrite_all(fd: int, data, offset: int, path: str) -> None:
    """Write every byte of `data` at `offset`: short writes continue where they stopped; no progress is an error."""
    view = memoryview(data).cast("B")
    done = 0
    while done < len(view):
        try:
            n = os.pwrite(fd, view[done:], offset + done)
        except OSError as e:
            raise storage_error(e, path) from None
        if n <= 0:
            raise StorageError(f"{path}: writing {len(view) - done} bytes at offset {offset + done} made no "
                               "progress (disk full?).")
        done += n


def fsync_path(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(folder: str) -> None:
    with contextlib.suppress(OSError):
        fsync_path(folder)


def write_bytes_atomic(path: str, data: bytes) -> None:
    tmp = path + ".partial"
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise storage_error(e, path) from None
    fsync_dir(os.path.dirname(os.path.abspath(path)))


def write_json_atomic(path: str, data, indent: Optional[int] = None) -> None:
    write_bytes_atomic(path, json.dumps(data, indent=indent, sort_keys=indent is not None).encode())


def read_json(path: str):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


# ---------------------------------------------------------------------------------------------------------------
# Digests
def file_md5(path: str) -> str:
    return file_digest(path, "md5")


def file_stamp(path: str) -> dict:
    st = os.stat(path)
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "inode": st.st_ino}


def _cache_dir() -> str:
    return os.environ.get(DIGEST_CACHE_ENV) or os.path.join(REPO_ROOT, "build", "cache", "digests")


def cached_md5(path: str) -> str:
    """md5 of a file, re-read in full only when its size, mtime or inode changed since the last full read."""
    path = os.path.abspath(path)
    stamp = file_stamp(path)
    entry = os.path.join(_cache_dir(), hashlib.sha1(path.encode()).hexdigest() + ".json")
    cached = read_json(entry)
    if isinstance(cached, dict) and cached.get("path") == path and cached.get("stamp") == stamp:
        return cached["md5"]
    digest = file_md5(path)
    if file_stamp(path) == stamp:             # not changed while it was read
        with contextlib.suppress(OSError, HarnessError):
            os.makedirs(_cache_dir(), exist_ok=True)
            write_json_atomic(entry, {"path": path, "stamp": stamp, "md5": digest})
    return digest


def short_digest(path: str, n: int = 8) -> str:
    return cached_md5(path)[:n]
