"""The SUT and QSL (code/harness/sut.py): the work queue, batching and worker threads, without LoadGen."""
import threading
import time

import numpy as np

from harness.backends.base import Runner
from harness.sut import QSL, SUT, WorkQueue


def test_work_queue_splits_offline_chunks_into_batches():
    q = WorkQueue()
    q.put(list(range(10)), np.arange(10))
    sizes = []
    for _ in range(3):
        ids, idx = q.take(4)
        sizes.append(len(ids))
        assert list(ids) == idx.tolist()
    assert sizes == [4, 4, 2]


def test_work_queue_server_batching_waits_at_most_the_timeout():
    q = WorkQueue()
    q.put([1], np.array([1]))
    threading.Timer(0.01, lambda: q.put([2], np.array([2]))).start()
    start = time.monotonic()
    ids, idx = q.take(8, timeout_s=0.2)
    waited = time.monotonic() - start
    assert list(ids) == [1, 2] and 0.15 < waited < 1.0   # gathered the late sample, gave up at the timeout
    q.close()
    assert q.take(8) is None


class CountingRunner(Runner):
    takes_rows = True
    concurrency = 3

    def __init__(self):
        self.threads = set()

    def infer(self, rows):
        self.threads.add(threading.current_thread().name)
        return np.asarray(rows, dtype=np.int64)


class FakeLoadGen:
    """Just the two LoadGen calls the SUT's workers make."""

    def __init__(self):
        self.done = []

    @staticmethod
    def QuerySampleResponse(qid, ptr, size):
        return qid, ptr, size

    def QuerySamplesComplete(self, responses):
        self.done.extend(r[0] for r in responses)


def test_sut_runs_concurrency_workers_per_runner():
    runner, lg = CountingRunner(), FakeLoadGen()
    qsl = QSL(np.zeros((64, 1), np.float32), 64, [runner])
    qsl.load(range(64))
    sut = SUT(lg, qsl, [runner], batch_size=2, output_offset=0)
    assert len(sut._threads) == 3
    for t in sut._threads:
        t.start()
    for i in range(0, 64, 4):
        sut.issue_query(list(range(i, i + 4)), list(range(i, i + 4)))
    sut.stop()
    assert sorted(lg.done) == list(range(64)) and sum(st["samples"] for st in sut.stats) == 64 and not sut.errors
