"""The SUT (code/harness/loadgen/sut.py): the work queue, batching and worker threads without LoadGen; then at rate: LoadGen's
query coalescing in Server, the Python fast path and the native core."""
import json
import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from conftest import ROOT, VAL_MAP_1300, run_main
from harness.loadgen import sut as sut_module
from harness.backends.base import Runner
from harness.core.errors import HarnessError
from harness.loadgen.sut import QSL, SUT, WorkQueue
from harness.loadgen.logs import parse_detail

SYSTEM = "CPU"
NATIVE_BUILT = sut_module.native_module() is not None
needs_native = pytest.mark.skipif(not NATIVE_BUILT, reason="loadgen_native is not built (make venv NATIVE=0)")
SUT_KINDS = [pytest.param("python"), pytest.param("native", marks=needs_native)]


def _run(prep_dir, log_dir, *extra):
    args = ("--action=run_harness", f"--system_name={SYSTEM}", "--model=efficientnet-lite0", "--backend=null",
            f"--map_path={VAL_MAP_1300}", f"--preprocessed_data_dir={prep_dir}", f"--log_dir={log_dir}", *extra)
    result = run_main(*args)
    assert result.returncode == 0, result.stderr[-3000:]
    (stamp,) = os.listdir(log_dir)
    return os.path.join(log_dir, stamp)


def _scenario(run_root, scenario):
    folder = os.path.join(run_root, SYSTEM, "resnet50", scenario)
    with open(os.path.join(folder, "summary.json")) as f:
        summary = json.load(f)
    with open(os.path.join(folder, "mlperf_log_detail.txt")) as f:
        detail, errors = parse_detail(f)
    return summary, detail, errors


@pytest.mark.slow
@pytest.mark.parametrize("kind", SUT_KINDS)
def test_null_server_at_rate_is_valid_with_coalescing(prep_dir, tmp_path, kind):
    """Coalescing is on by default in Server (configs/resnet50/Server/config.json), and LoadGen received it."""
    root = _run(prep_dir, tmp_path / "logs", "--scenarios=Server", "--min_duration=2000", "--min_query_count=100",
                "--server_target_qps=5000", "--batch_size=64", "--server_batch_timeout_us=1000", f"--sut={kind}")
    summary, detail, errors = _scenario(root, "Server")
    assert summary["sut"] == kind
    assert detail["requested_server_coalesce_queries"] is True
    assert summary["server_coalesce_queries"] is True
    assert summary["settings"]["server_coalesce_queries"] is True
    assert summary["result_validity"] == "VALID", (summary, errors)
    assert detail["result_scheduled_samples_per_sec"] > 2500
    assert not errors


@pytest.mark.slow
def test_coalescing_can_be_turned_off(prep_dir, tmp_path):
    root = _run(prep_dir, tmp_path / "logs", "--scenarios=Server", "--min_duration=300", "--min_query_count=100",
                "--server_target_qps=2000", "--server_coalesce_queries=false")
    summary, detail, _ = _scenario(root, "Server")
    assert detail["requested_server_coalesce_queries"] is False
    assert summary["server_coalesce_queries"] is False


@pytest.mark.slow
@needs_native
def test_native_every_scenario_runs(prep_dir, tmp_path):
    scenarios = ("Offline", "Server", "SingleStream", "MultiStream")
    root = _run(prep_dir, tmp_path / "logs", "--sut=native", "--scenarios=" + ",".join(scenarios),
                "--min_duration=1000", "--min_query_count=100", "--offline_expected_qps=3000000",
                "--server_target_qps=2000", "--single_stream_expected_latency_ns=4000",
                "--multi_stream_expected_latency_ns=8000")
    for scenario in scenarios:
        summary, _, errors = _scenario(root, scenario)
        assert summary["sut"] == "native"
        # Validity at rate is the coalescing test's (Server); 1 s latency runs on a shared 2-core machine can miss
        # LoadGen's query-count estimates, whatever the SUT.
        assert summary["result_validity"] == "VALID" or scenario != "Offline", (scenario, summary, errors)
        assert sum(w["samples"] for w in summary["sut_workers"]) > 0
        with open(os.path.join(root, SYSTEM, "resnet50", scenario, "sut_timing.json")) as f:
            timing = json.load(f)   # binned in C++ as harness/loadgen/timing.py bins: every sample counted once
        assert timing["samples"] == sum(w["samples"] for w in summary["sut_workers"])
        assert sum(timing["timeline"]["samples"]) == timing["samples"]


@pytest.mark.slow
def test_both_suts_write_identical_accuracy_logs(prep_dir):
    """AccuracyOnly over 2 x val-1300 (more samples than the performance sample count: several load sets) through
    each SUT: every response is its own sample's label, and the logs are identical (scripts/check_sut_accuracy.py;
    docs/performance.md has the 50,000-sample runs)."""
    suts = "native,python" if NATIVE_BUILT else "python"
    out = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "check_sut_accuracy.py"), "--samples=2600",
                          "--repeat=1", f"--suts={suts}", f"--preprocessed_data_dir={prep_dir}"],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "identical accuracy logs" in out.stdout


CHILD = """
import sys
sys.path.insert(0, {code!r})
import numpy as np
from harness.backends.base import Runner
from harness.core.errors import HarnessError
from harness.loadgen.run import run_loadgen
from harness.loadgen.sut import QSL, make_sut

class Broken(Runner):
    takes_rows = True
    def infer(self, rows):
        {body}

runner = Broken()
qsl = QSL(np.zeros((64, 1), np.float32), 64, [runner])
sut = make_sut("native", qsl, [runner], 8, 0)
cfg = {{"system_id": "CPU", "config_block": "CPU", "config_ver": "test", "offline_expected_qps": 1000,
        "min_query_count": 64, "min_duration": 10}}
try:
    run_loadgen("Offline", "PerformanceOnly", cfg, qsl, sut, {out!r})
except HarnessError as e:
    print("HarnessError:", e)
"""


@pytest.mark.slow
@needs_native
@pytest.mark.parametrize("body,needle", [
    ("raise ValueError('engine exploded')", "engine exploded"),
    ("return np.zeros(len(rows) + 1, np.int64)", "returned 9 labels for 8 samples"),
])
def test_native_backend_errors_end_the_run_with_the_message(tmp_path, body, needle):
    script = CHILD.format(code=os.path.join(ROOT, "code"), body=body, out=str(tmp_path / "out"))
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "HarnessError: Offline: the backend failed during the run" in out.stdout and needle in out.stdout


def test_native_sut_asked_for_but_not_built(monkeypatch):
    monkeypatch.setattr(sut_module, "native_status", lambda: (None, "the loadgen_native module is not built"))
    qsl = sut_module.QSL(np.zeros((4, 1), np.float32), 4)
    with pytest.raises(HarnessError, match="loadgen_native module is not built.*make venv"):
        sut_module.make_sut("native", qsl, [], 1, 0)
    with pytest.raises(HarnessError, match="expected one of auto, native, python"):
        sut_module.make_sut("fast", qsl, [], 1, 0)
    assert sut_module.make_sut("auto", qsl, [sut_module.Runner()], 1, 0).kind == "python"


@needs_native
def test_a_stale_native_build_is_refused(monkeypatch, tmp_path):
    changed = tmp_path / "loadgen_native.cc"
    changed.write_text("// another version of the source\n")
    monkeypatch.setattr(sut_module, "NATIVE_SOURCE", str(changed))
    assert sut_module.native_module() is None
    qsl = sut_module.QSL(np.zeros((4, 1), np.float32), 4)
    with pytest.raises(HarnessError, match="stale build.*make venv"):
        sut_module.make_sut("native", qsl, [], 1, 0)
    assert sut_module.make_sut("auto", qsl, [sut_module.Runner()], 1, 0).kind == "python"


# ------------------------------------------------------------------------------------------------------------
# Units, without LoadGen
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
