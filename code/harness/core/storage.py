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
- `read_json(path, missing=..., invalid=..., expect=...)`: the one JSON reader; a missing, unreadable or malformed
  file is a HarnessError naming the file unless the caller gives the value it stands for.
- `file_digest(path, algorithm="md5", cached=False)`: the one digest helper; `cached=True` (md5 only) re-reads the
  file in full only when its size, mtime or inode changed since the last full read (build/cache/digests/, or
  $MLPERF_DIGEST_CACHE). `short_digest` is its first characters.
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
from typing import Any, Iterator, Optional

from harness.core import env
from harness.core.paths import DIGEST_CACHE_DIR
from harness.core.errors import HarnessError

LOCK_NAME = ".lock"
LOCK_TIMEOUT_ENV = env.LOCK_TIMEOUT.name
DEFAULT_LOCK_TIMEOUT = env.LOCK_TIMEOUT.default
DIGEST_CACHE_ENV = env.DIGEST_CACHE.name


def file_digest(path: str, algorithm: str = "md5", cached: bool = False) -> str:
    """The one digest helper: hex digest of a file's bytes, read in chunks (models, arrays and logs can be large).
    `cached=True` (md5): read in full only when the file changed since the last full read (`_cached_md5`)."""
    if cached:
        if algorithm != "md5":
            raise ValueError("the digest cache holds md5 digests only")
        return _cached_md5(path)
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


_IN_THE_WAY = {
    errno.EISDIR: "the path is a folder where a file was expected",
    errno.ENOTDIR: "a part of the path is a file where a folder was expected",
    errno.EEXIST: "the path exists and is in the way",
    errno.ENOENT: "a folder on the path does not exist (or cannot be created there)",
}


def storage_error(e: OSError, path: str, doing: str = "writing") -> StorageError:
    code = errno.errorcode.get(e.errno, e.errno)
    if e.errno in _IN_THE_WAY:
        return StorageError(f"{path}: {doing} failed: {_IN_THE_WAY[e.errno]} ({code}). Fix the path (remove or "
                            "rename what is in the way, or pass another folder), then run the same command again.")
    cause = _CAUSES.get(e.errno, e.strerror or str(e))
    return StorageError(f"{path}: {doing} failed: {cause} ({code}). Free space or "
                        "fix the folder's permissions (or pass another folder), then run the same command again: "
                        "finished work is kept and resumed.")


@contextlib.contextmanager
def storage_errors(path: Optional[str] = None, doing: str = "writing") -> Iterator[None]:
    """OS errors of the block's file work become a StorageError naming the file (the error's own, else `path`);
    a closed stdout (BrokenPipeError) is left to code/main.py."""
    try:
        yield
    except BrokenPipeError:
        raise
    except OSError as e:
        raise storage_error(e, e.filename or path or "a file", doing) from None


def is_storage_errno(e: BaseException) -> bool:
    return isinstance(e, OSError) and e.errno in _CAUSES


# ---------------------------------------------------------------------------------------------------------------
# Locks
def lock_timeout() -> float:
    return env.get(env.LOCK_TIMEOUT)


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


_RAISE = object()


def read_json(path: str, missing: Any = _RAISE, invalid: Any = _RAISE, expect: Optional[type] = None) -> Any:
    """The one JSON reader. A missing file gives `missing` when the caller passes it, else a HarnessError naming the
    file; an unreadable file, malformed JSON or (with `expect`, e.g. dict) a value of another type gives `invalid`
    when passed (caches and records that are rebuilt, checks that report the problem themselves), else a HarnessError
    naming the file and what is wrong."""
    try:
        with open(path) as f:
            data = json.load(f)
    except FileNotFoundError:
        if missing is not _RAISE:
            return missing
        raise HarnessError(f"{path} does not exist.") from None
    except (OSError, ValueError) as e:
        if invalid is not _RAISE:
            return invalid
        what = f"is not valid JSON ({e})" if isinstance(e, ValueError) else f"cannot be read ({e.strerror or e})"
        raise HarnessError(f"{path} {what}.") from None
    if expect is not None and not isinstance(data, expect):
        if invalid is not _RAISE:
            return invalid
        raise HarnessError(f"{path} holds a JSON {type(data).__name__}, expected a JSON "
                           f"{'object' if expect is dict else expect.__name__}.")
    return data


# ---------------------------------------------------------------------------------------------------------------
# Digests
def file_stamp(path: str) -> dict:
    """A file's identity: size, mtime, inode and ctime. The ctime changes with every write, rename and os.utime
    and cannot be set back, so a file changed in place with its mtime restored still gets another stamp."""
    st = os.stat(path)
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "inode": st.st_ino, "ctime_ns": st.st_ctime_ns}


def _cache_dir() -> str:
    return env.get(env.DIGEST_CACHE) or DIGEST_CACHE_DIR


def _cached_md5(path: str) -> str:
    """md5 of a file, re-read in full only when its stamp (size, mtime, inode, ctime) changed since the last full
    read."""
    path = os.path.abspath(path)
    stamp = file_stamp(path)
    entry = os.path.join(_cache_dir(), hashlib.sha1(path.encode()).hexdigest() + ".json")
    cached = read_json(entry, missing=None, invalid=None, expect=dict)
    if isinstance(cached, dict) and cached.get("path") == path and cached.get("stamp") == stamp:
        return cached["md5"]
    digest = file_digest(path)
    if file_stamp(path) == stamp:             # not changed while it was read
        with contextlib.suppress(OSError, HarnessError):
            os.makedirs(_cache_dir(), exist_ok=True)
            write_json_atomic(entry, {"path": path, "stamp": stamp, "md5": digest})
    return digest


def short_digest(path: str, n: int = 8) -> str:
    return file_digest(path, cached=True)[:n]
