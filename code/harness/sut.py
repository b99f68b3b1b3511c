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
  (harness/sut_timing.py: a fixed histogram and a timeline, O(1) per IssueQuery piece and per batch).
"""
from __future__ import annotations

import itertools
import threading
import time
from collections import deque
from typing import Optional, Sequence

import numpy as np

from . import sut_timing
from .backends.base import Runner


class QSL:
    def __init__(self, array: np.ndarray, performance_sample_count: int, runners: Sequence[Runner] = ()):
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
    """Chunks of (query ids, sample indices); `take` returns up to n samples, splitting chunks as needed."""

    def __init__(self):
        self._cond = threading.Condition()
        self._chunks: deque = deque()
        self._closed = False

    def put(self, ids: list, indices: np.ndarray) -> None:
        t = time.perf_counter()
        with self._cond:
            # [ids, indices, how many of this chunk were taken, when it was issued (sut_timing)]
            self._chunks.append([ids, indices, 0, t])
            self._cond.notify()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def _pop(self, n: int, issued: Optional[list]):
        chunk = self._chunks[0]
        ids, idx, start, t_issue = chunk
        end = start + n
        if end >= len(ids):
            self._chunks.popleft()
            if issued is not None:
                issued.append((t_issue, len(ids) - start))
            return (ids[start:] if start else ids), (idx[start:] if start else idx)
        if issued is not None:
            issued.append((t_issue, n))
        chunk[2] = end   # an offset, not a copy of the rest: Offline's one query can hold millions of samples
        return ids[start:end], idx[start:end]

    def take(self, n: int, timeout_s: float = 0.0, issued: Optional[list] = None):
        """issued, when given, gets (IssueQuery time, samples) of each piece taken."""
        with self._cond:
            while not self._chunks:
                if self._closed:
                    return None
                self._cond.wait()
            ids, idx = self._pop(n, issued)
            if self._chunks:
                self._cond.notify()   # more work is left: wake another worker (Offline puts one huge chunk)
            if len(ids) >= n or timeout_s <= 0:
                return ids, idx
            ids, parts = list(ids), [idx]
            deadline = time.monotonic() + timeout_s
            while len(ids) < n:
                if self._chunks:
                    more_ids, more_idx = self._pop(n - len(ids), issued)
                    ids.extend(more_ids)
                    parts.append(more_idx)
                    continue
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._closed:
                    break
                self._cond.wait(remaining)
            return ids, (parts[0] if len(parts) == 1 else np.concatenate(parts))


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
        self.aborted = False   # abort(): answer everything at once, without inference (harness/interrupt.py)
        # One worker per runner, or `runner.concurrency` workers for a runner with several CUDA streams.
        slots = [r for r in self.runners for _ in range(max(1, int(r.concurrency)))]
        self.stats = [{"batches": 0, "samples": 0, "infer_s": 0.0, "complete_s": 0.0} for _ in slots]
        t0 = time.perf_counter()
        # Latency histogram and timeline per worker; MLPERF_SUT_TIMING=0 turns the record off.
        self.timing = [sut_timing.WorkerTiming(t0) for _ in slots] if sut_timing.enabled() else []
        self._threads = [threading.Thread(target=self._work,
                                          args=(r, self.stats[i], self.timing[i] if self.timing else None),
                                          name=f"sut-worker-{i}", daemon=True)
                         for i, r in enumerate(slots)]
        self.handle = None

    # LoadGen callbacks ------------------------------------------------------------------------------------
    def issue_query(self, ids: list, indices: list) -> None:
        """FastSUT IssueQuery: only enqueue."""
        self.queue.put(ids, np.asarray(indices, dtype=np.int64))

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
                rows = qsl.row_of[indices]
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
