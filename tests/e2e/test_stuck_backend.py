"""A backend stuck inside infer does not outlive max_duration (issue 19): the watchdog answers what is queued, and
when LoadGen still cannot finish (the stuck batch is never answered, its thread cannot be joined) the harness marks
the run INVALID / ENDED_AT_MAX_DURATION, writes summary.json and ends the process with exit 2.

The real LoadGen in a child process, over a stand-in runner whose infer sleeps forever; the child shortens the
watchdog (1 s) and its grace (0.5 s) so that the test takes seconds."""
import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT
from test_sut import SUT_KINDS

CHILD = """
import sys, threading
sys.path.insert(0, {code!r})
import numpy as np
from harness.backends.base import Runner
from harness.loadgen import limits
from harness.loadgen.run import run_loadgen
from harness.loadgen.sut import QSL, make_sut

limits.watchdog_s = lambda max_ms: 1.0
limits.STUCK_GRACE_S = 0.5

class Stuck(Runner):
    takes_rows = True
    def infer(self, rows):
        threading.Event().wait()      # never returns

runner = Stuck()
qsl = QSL(np.zeros((64, 1), np.float32), 64, [runner])
sut = make_sut({kind!r}, qsl, [runner], 8, 0)
cfg = {{"system_id": "CPU", "config_block": "CPU", "config_ver": "test", "offline_expected_qps": 1000,
        "min_query_count": 64, "min_duration": 10, "max_duration": 1000}}
run_loadgen("Offline", "PerformanceOnly", cfg, qsl, sut, {out!r})
print("run_loadgen returned")
"""


@pytest.mark.parametrize("kind", SUT_KINDS)
def test_a_backend_stuck_in_infer_ends_at_max_duration(tmp_path, kind):
    out = tmp_path / "out"
    script = CHILD.format(code=os.path.join(ROOT, "code"), kind=kind, out=str(out))
    env = dict(os.environ, MLPERF_SCRATCH_PATH=str(tmp_path))
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=tmp_path,
                            env=env)
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-3000:]
    assert "run_loadgen returned" not in result.stdout and "Traceback" not in result.stderr, result.stderr
    assert "ERROR: Offline: LoadGen had not finished 1000 ms (max_duration)" in result.stderr, result.stderr
    assert "the backend is stuck inside a batch" in result.stderr
    assert "backend is stuck" in (out / "ENDED_AT_MAX_DURATION").read_text()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["result_validity"] == "INVALID" and summary["ended_at_max_duration"] == 1000
    assert summary["backend_stuck"] is True and summary["scenario"] == "Offline"
