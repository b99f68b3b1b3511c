"""The QSL and the SUT around LoadGen.

- The QSL keeps the preprocessed set memory-mapped and, on LoadSamplesToRam, copies the requested samples into one
  contiguous array (rows in sorted sample order); `row_of[sample index]` finds a sample's row.
- IssueQuery only enqueues (LoadGen calls it on its own thread, so anything slow there delays the Server schedule).
- A fixed pool of long-lived workers (one per runner, or `runner.concurrency` for a GPU runner with several CUDA
  streams) takes batches from the queue, runs them and calls QuerySamplesComplete. There is never a thread per
  query: LoadGen crashes when samples complete from short-lived threads. In Server the workers batch dynamically:
  after the first sample they wait at most `batch_timeout_s` for the batch to fill.
- Responses carry the top-1 label (after the model's output offset) as int32; the label array of a batch stays
  alive until QuerySamplesComplete returns, which is when LoadGen has copied what it logs.
- Each worker records, per batch, the IssueQuery-to-completion latency of its pieces and the completion time
  (harness/loadgen/timing.py: a fixed histogram and a timeline, O(1) per IssueQuery piece and per batch).
- abort() (an interrupted run, harness/core/interrupt.py): every batch from then on is answered at once (label -1).

Two SUTs with the same interface (`make_sut` picks one; the config key `sut` / flag --sut: auto, native, python):
- `NativeSUT`: the queue, batching, responses, completion and timing in C++ (native/loadgen_native.cc, built by
  `make venv` into the `loadgen_native` module together with LoadGen itself); Python runs once per batch (the
  runner's `infer`, with the GIL taken once). Its LoadGen is the module's own copy, so the whole run (settings, QSL,
  StartTest) goes through `sut.lg`.
- `SUT`: pure Python on the PyPI `mlperf_loadgen`, the fallback when the module is not built. IssueQuery puts
  LoadGen's two lists on a queue (O(1)); the worker converts a batch's indices with numpy once and builds its
  QuerySampleResponse objects (about 1-2 us each: the Python path's per-sample floor, see docs/performance.md).
"""
from __future__ import annotations

import itertools
import json
import os
import queue
import sys
import threading
import time
from typing import Optional, Sequence

import numpy as np

from harness.core.paths import REPO_ROOT
from harness.core.storage import file_digest
from harness.loadgen import timing as sut_timing
from harness.backends.base import Runner
from harness.core.errors import HarnessError
from harness.loadgen.lib import _lg


class QSL:
    def __init__(self, array: np.ndarray, performance_sample_count: int, runners: Sequence[Runner] = ()):
        if len(array) == 0:   # LoadGen (and both SUTs) crash on an empty sample library
            raise HarnessError(f"The preprocessed array {getattr(array, 'filename', None) or ''} holds 0 samples: "
                               "there is nothing to run. Preprocess the images of the map (check --data_dir and "
                               "--map_path; --allow_missing skips images that are not there), then run again.")
        self.array = array
        self.total = len(array)
        self.performance_sample_count = min(performance_sample_count, self.total)
        self.runners = list(runners)
        self.loaded: Optional[np.ndarray] = None
        self.row_of = np.full(self.total, -1, dtype=np.int64)
        self.handle = None

    def load(self, indices: Sequence[int]) -> None:
        order = np.unique(np.asarray(indices, dtype=np.int64))
        self.loaded = np.ascontiguousarray(self.array[order])
        self.row_of[:] = -1
        self.row_of[order] = np.arange(len(order))
        for runner in self.runners:
            runner.load_samples(self.loaded)

    def unload(self, indices: Sequence[int]) -> None:
        self.loaded = None
        for runner in self.runners:
            runner.load_samples(None)

    def construct(self, lg) -> int:
        self.handle = lg.ConstructQSL(self.total, self.performance_sample_count, self.load, self.unload)
        return self.handle


class WorkQueue:
    """Chunks of (query ids, sample indices), as LoadGen passed them (lists; no per-sample work on its thread);
    `take` returns up to n samples (slices of those lists), splitting chunks as needed.

    A C-implemented queue.SimpleQueue underneath: `put` is one C call on LoadGen's issue thread and wakes a blocked
    worker without a Python-level Condition (whose notify/wait pair, with the GIL handoffs around it, took a
    quarter of the Python SUT's samples in Server; docs/performance.md). A chunk larger than a batch goes back to
    the queue as (ids, indices, offset, issue time), so Offline's one query of millions of samples is never copied
    and every worker shares it.
    """
    _CLOSED = None

    def __init__(self):
        self._q = queue.SimpleQueue()

    def put(self, ids: list, indices) -> None:
        self._q.put((ids, indices, 0, time.perf_counter()))   # the issue time: harness/loadgen/timing.py

    def close(self) -> None:
        self._q.put(self._CLOSED)

    def _split(self, item, n: int, issued: Optional[list]):
        """Up to n samples of a queued item; the rest goes back to the queue (an offset, not a copy)."""
        ids, idx, start, t_issue = item
        end = start + n
        if end < len(ids):
            self._q.put((ids, idx, end, t_issue))
            if issued is not None:
                issued.append((t_issue, n))
            return ids[start:end], idx[start:end]
        if issued is not None:
            issued.append((t_issue, len(ids) - start))
        return (ids[start:] if start else ids), (idx[start:] if start else idx)

    def take(self, n: int, timeout_s: float = 0.0, issued: Optional[list] = None):
        """Up to n samples; what is already queued joins the batch, and with a timeout the batch waits at most that
        long for more. issued, when given, gets (IssueQuery time, samples) of each piece taken."""
        item = self._q.get()
        if item is self._CLOSED:
            self._q.put(item)   # for the other workers
            return None
        ids, idx = self._split(item, n, issued)
        if len(ids) >= n:
            return ids, idx
        parts = [(ids, idx)]
        count = len(ids)
        deadline = time.monotonic() + timeout_s
        while count < n:
            try:
                item = self._q.get_nowait() if timeout_s <= 0 else self._q.get(
                    timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if item is self._CLOSED:
                self._q.put(item)
                break
            more_ids, more_idx = self._split(item, n - count, issued)
            parts.append((more_ids, more_idx))
            count += len(more_ids)
        if len(parts) == 1:
            return ids, idx
        chain = itertools.chain.from_iterable
        return list(chain(p[0] for p in parts)), list(chain(p[1] for p in parts))


def worker_slots(runners: Sequence[Runner]) -> list:
    """One worker per runner, or `runner.concurrency` workers for a runner with several CUDA streams (both SUTs)."""
    return [r for r in runners for _ in range(max(1, int(r.concurrency)))]


class _Aborted(Exception):
    pass


class SUT:
    def __init__(self, lg, qsl: QSL, runners: Sequence[Runner], batch_size: int, output_offset: int,
                 batch_timeout_s: float = 0.0):
        self.lg = lg
        self.qsl = qsl
        self.runners = list(runners)
        self.batch_size = max(1, int(batch_size))
        self.batch_timeout_s = batch_timeout_s
        self.output_offset = np.int32(output_offset)
        self.queue = WorkQueue()
        self.errors: list[BaseException] = []
        self.aborted = False   # abort(): answer everything at once, without inference (harness/core/interrupt.py)
        slots = worker_slots(self.runners)
        self.stats = [{"batches": 0, "samples": 0, "infer_s": 0.0, "complete_s": 0.0} for _ in slots]
        t0 = time.perf_counter()
        # Latency histogram and timeline per worker; MLPERF_SUT_TIMING=0 turns the record off.
        self.timing = [sut_timing.WorkerTiming(t0) for _ in slots] if sut_timing.enabled() else []
        self._threads = [threading.Thread(target=self._work,
                                          args=(r, self.stats[i], self.timing[i] if self.timing else None),
                                          name=f"sut-worker-{i}", daemon=True)
                         for i, r in enumerate(slots)]
        self.handle = None

    kind = "python"

    # LoadGen callbacks ------------------------------------------------------------------------------------
    def issue_query(self, ids: list, indices: list) -> None:
        """FastSUT IssueQuery: only enqueue LoadGen's lists (O(1) Python work; numpy conversion is per batch)."""
        self.queue.put(ids, indices)

    def flush_queries(self) -> None:
        pass

    def abort(self) -> None:
        """The run is being interrupted: from now on every batch is answered at once (label -1), no inference."""
        self.aborted = True

    # Workers ----------------------------------------------------------------------------------------------
    def _work(self, runner: Runner, stats: dict, timing: Optional[sut_timing.WorkerTiming]) -> None:
        lg, qsl, offset = self.lg, self.qsl, self.output_offset
        response = lg.QuerySampleResponse
        clock = time.perf_counter
        issued: Optional[list] = [] if timing is not None else None
        while True:
            if issued:
                issued.clear()
            item = self.queue.take(self.batch_size if not self.aborted else 1 << 16, self.batch_timeout_s, issued)
            if item is None:
                return
            ids, indices = item
            t0 = clock()
            try:
                if self.aborted:
                    raise _Aborted
                rows = qsl.row_of[np.asarray(indices, dtype=np.int64)]
                top1 = runner.infer(rows) if runner.takes_rows else runner.infer(qsl.loaded[rows])
                labels = np.array(top1, dtype=np.int32)   # our own copy: a runner may reuse its output buffer
                if offset:
                    labels += offset
            except _Aborted:
                labels = np.full(len(ids), -1, dtype=np.int32)
            except BaseException as e:  # keep LoadGen from hanging: answer, then report after the run
                self.errors.append(e)
                labels = np.full(len(ids), -1, dtype=np.int32)
            t1 = clock()
            base = labels.ctypes.data
            responses = list(map(response, ids, range(base, base + 4 * len(ids), 4), itertools.repeat(4)))
            lg.QuerySamplesComplete(responses)
            t2 = clock()
            stats["batches"] += 1
            stats["samples"] += len(ids)
            stats["infer_s"] += t1 - t0
            stats["complete_s"] += t2 - t1
            if timing is not None:
                timing.record(t2, len(ids), issued)

    def completed(self) -> int:
        """Samples completed so far (read by the progress line from another thread; no lock needed)."""
        return sum(st["samples"] for st in self.stats)

    def start(self) -> int:
        for t in self._threads:
            t.start()
        self.handle = self.lg.ConstructFastSUT(self.issue_query, self.flush_queries)
        return self.handle

    def stop(self) -> None:
        self.queue.close()
        for t in self._threads:
            t.join()
        for r in self.runners:
            r.close()

    def destroy(self) -> None:
        if self.handle is not None:
            self.lg.DestroyFastSUT(self.handle)
            self.handle = None


def batch_callback(qsl: QSL, runner: Runner):
    """The per-batch Python of the native SUT: sample indices -> the runner's top-1 (raw, before the offset)."""
    row_of = qsl.row_of
    if runner.takes_rows:
        return lambda indices: runner.infer(row_of[indices])
    return lambda indices: runner.infer(qsl.loaded[row_of[indices]])


class NativeSUT:
    """The C++ SUT core of `loadgen_native` (see the module docstring); the same interface as SUT."""
    kind = "native"

    def __init__(self, lg, qsl: QSL, runners: Sequence[Runner], batch_size: int, output_offset: int,
                 batch_timeout_s: float = 0.0):
        self.lg = lg
        self.qsl = qsl
        self.runners = list(runners)
        self.batch_size = max(1, int(batch_size))
        self.batch_timeout_s = batch_timeout_s
        slots = worker_slots(self.runners)
        self._timing_on = sut_timing.enabled()
        self._t0 = time.perf_counter()
        bins = dict(timing_bins_per_decade=sut_timing.BINS_PER_DECADE, timing_low_exp10=sut_timing.LOW_EXP,
                    timing_bins=sut_timing.N_BINS, timing_step_s=sut_timing.TIMELINE_STEP_S) if self._timing_on else {}
        self._core = lg.NativeSUT([batch_callback(qsl, r) for r in slots], self.batch_size, float(batch_timeout_s),
                                  int(output_offset), **bins)
        self._slots = len(slots)
        self.handle = None
        self._stopped = False

    @property
    def errors(self) -> list:
        return [RuntimeError(e) for e in self._core.errors()]

    @property
    def stats(self) -> list:
        return self._core.stats()

    @property
    def timing(self) -> list:
        """The workers' records as harness/loadgen/timing.py WorkerTiming objects (after stop())."""
        if not self._timing_on:
            return []
        out = []
        for i in range(self._slots):
            hist, timeline = self._core.timing(i)
            t = sut_timing.WorkerTiming(self._t0)
            t.hist[:len(hist)] = list(hist)
            t.timeline = list(timeline)
            out.append(t)
        return out

    def completed(self) -> int:
        return self._core.completed()

    def abort(self) -> None:
        self._core.abort()

    def start(self) -> int:
        self._core.start()
        self.handle = self._core.handle
        return self.handle

    def stop(self) -> None:
        if not self._stopped:
            self._stopped = True
            self._core.stop()
            for r in self.runners:
                r.close()

    def destroy(self) -> None:
        self.handle = None   # the core is owned by this object (freed with it), not by LoadGen


SUT_KINDS = ("auto", "native", "python")


NATIVE_SOURCE = os.path.join(REPO_ROOT, "native", "loadgen_native.cc")


SELFTEST_RECORD = "loadgen_native.selftest.json"   # native/build.py writes it next to the module it built
REBUILD = "Run `make venv` (or `python native/build.py`) to rebuild and self-test it"


def native_selftest(origin: str) -> tuple[bool, str]:
    """(True, "") when native/build.py's self-test record next to the module at `origin` says the module passed with
    this very file, source and numpy; else (False, why). Read before the module is ever imported: a module that
    crashed its self-test is never loaded."""
    path = os.path.join(os.path.dirname(origin), SELFTEST_RECORD)
    try:
        with open(path) as f:
            record = json.load(f)
    except FileNotFoundError:
        return False, (f"the installed loadgen_native ({origin}) has no self-test record ({path}): it was built "
                       "without native/build.py's self-test or its build was cut short")
    except (OSError, ValueError) as e:
        return False, f"the self-test record {path} of loadgen_native is unreadable ({e})"
    if not record.get("passed"):
        return False, (f"the installed loadgen_native ({origin}) FAILED its self-test when it was built "
                       f"({record.get('error', 'no reason recorded')}; Python {record.get('python')}, numpy "
                       f"{record.get('numpy')}, pybind11 {record.get('pybind11')}; output in {path})")
    if record.get("module_sha256") != file_digest(origin, "sha256"):
        return False, f"the installed loadgen_native ({origin}) is not the file its self-test record ({path}) is of"
    if record.get("numpy") != np.__version__:
        return False, (f"the installed loadgen_native ({origin}) was self-tested with numpy {record.get('numpy')}, "
                       f"this Python has numpy {np.__version__}")
    return True, ""


def native_status() -> tuple[Optional[object], str]:
    """(`loadgen_native`, "") when it is built from this checkout's native/loadgen_native.cc and passed its
    self-test (native/build.py) with this numpy, else (None, why)."""
    import importlib.util
    spec = importlib.util.find_spec("loadgen_native")
    if spec is None or not spec.origin:
        return None, "the loadgen_native module is not built"
    ok, why = native_selftest(spec.origin)
    if not ok:
        return None, why
    try:
        import loadgen_native
    except ImportError as e:
        return None, f"the loadgen_native module ({spec.origin}) does not import ({e})"
    if os.path.exists(NATIVE_SOURCE):
        built = getattr(loadgen_native, "__source_sha256__", "unknown")
        if built != file_digest(NATIVE_SOURCE, "sha256"):
            return None, (f"the installed loadgen_native ({loadgen_native.__file__}) was built from another "
                          f"version of {NATIVE_SOURCE} (stale build)")
    return loadgen_native, ""


def native_module():
    """`loadgen_native` when it is built from this checkout's source (`make venv`), else None."""
    return native_status()[0]


def make_sut(kind: str, qsl: QSL, runners: Sequence[Runner], batch_size: int, output_offset: int,
             batch_timeout_s: float = 0.0):
    """The SUT of `kind` (config key `sut`): native (the C++ core; an error when not built), python, or auto
    (native when built, else python)."""
    kind = kind or "auto"
    if kind not in SUT_KINDS:
        raise HarnessError(f"sut={kind!r}: expected one of {', '.join(SUT_KINDS)} (flag --sut, config key `sut`).")
    native, why = native_status() if kind in ("auto", "native") else (None, "")
    if kind == "native" and native is None:
        raise HarnessError(f"--sut=native: {why}. {REBUILD} (it builds it from the LoadGen sdist; needs a C++17 "
                           "compiler), or use --sut=python.")
    if kind == "auto" and native is None and why != "the loadgen_native module is not built":
        print(f"WARNING: {why}; using the Python SUT. {REBUILD}.", file=sys.stderr)
    if native is not None:
        return NativeSUT(native, qsl, runners, batch_size, output_offset, batch_timeout_s)
    return SUT(_lg(), qsl, runners, batch_size, output_offset, batch_timeout_s)
