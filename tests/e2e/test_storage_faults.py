"""Storage faults during a run are errors naming the path and the cause, never tracebacks or half results (issue 19):
a full disk under the log folder (RLIMIT_FSIZE in a child process, SIGXFSZ ignored: the kernel's EFBIG stands in for
ENOSPC), a read-only log folder (tests run as root, where chmod stops nothing: the write is monkeypatched to raise
EROFS), a user.conf path that is a folder. The real LoadGen over a stand-in runner that answers at once."""
import errno
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT
from test_sut import SUT_KINDS
from harness.backends.base import Runner
from harness.core.errors import HarnessError
from harness.loadgen import run as run_module
from harness.loadgen.sut import QSL, make_sut

CFG = {"system_id": "CPU", "config_block": "CPU", "config_ver": "test", "offline_expected_qps": 1000,
       "min_query_count": 64, "min_duration": 10}

CHILD = """
import resource, signal, sys
sys.path.insert(0, {code!r})
import numpy as np
from harness.backends.base import Runner
from harness.core.errors import HarnessError
from harness.loadgen.run import run_loadgen
from harness.loadgen.sut import QSL, make_sut

class Quick(Runner):
    takes_rows = True
    def infer(self, rows):
        return np.zeros(len(rows), np.int64)

runner = Quick()
qsl = QSL(np.zeros((64, 1), np.float32), 64, [runner])
sut = make_sut({kind!r}, qsl, [runner], 8, 0)
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (8192, 8192))   # user.conf and the summary fit, the detail log does not
try:
    run_loadgen("Offline", "PerformanceOnly", {cfg!r}, qsl, sut, {out!r})
    print("no error")
except HarnessError as e:
    print("HarnessError:", e)
"""


class Quick(Runner):
    takes_rows = True

    def infer(self, rows):
        return np.zeros(len(rows), np.int64)


def _sut():
    runner = Quick()
    qsl = QSL(np.zeros((64, 1), np.float32), 64, [runner])
    return qsl, make_sut("python", qsl, [runner], 8, 0)


@pytest.mark.parametrize("kind", SUT_KINDS)
def test_full_disk_under_the_log_folder_fails_the_run_clearly(tmp_path, kind):
    out = tmp_path / "out"
    script = CHILD.format(code=os.path.join(ROOT, "code"), kind=kind, cfg=CFG, out=str(out))
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr
    assert f"HarnessError: Offline: LoadGen's logs in {out} are incomplete: mlperf_log_detail.txt is cut short " \
           "(8192 bytes" in result.stdout, result.stdout
    assert "a file size limit" in result.stdout and "This run is not a result" in result.stdout
    assert not (out / "summary.json").exists()


def test_user_conf_path_that_is_a_folder_is_named(tmp_path, monkeypatch):
    conf_dir = tmp_path / "measurements"
    (conf_dir / "user.conf").mkdir(parents=True)
    monkeypatch.setattr(run_module, "measurements_dir", lambda system, scenario: str(conf_dir))
    qsl, sut = _sut()
    with pytest.raises(HarnessError, match=r"measurements/user.conf: writing failed: the path is a folder where a "
                                           r"file was expected \(EISDIR\)\. Fix the path"):
        run_module.run_loadgen("Offline", "PerformanceOnly", CFG, qsl, sut, str(tmp_path / "out"))


def test_read_only_log_folder_is_named(tmp_path, monkeypatch):
    """Root ignores chmod: os.makedirs of the log folder is made to raise EROFS, as a read-only mount does."""
    monkeypatch.setattr(run_module, "measurements_dir", lambda system, scenario: str(tmp_path / "conf"))
    real = os.makedirs
    out = str(tmp_path / "logs" / "out")

    def makedirs(path, *a, **k):
        if os.fspath(path) == out:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), path)
        return real(path, *a, **k)
    monkeypatch.setattr(run_module.os, "makedirs", makedirs)
    qsl, sut = _sut()
    with pytest.raises(HarnessError, match=f"{out}: writing failed: the file system is read-only \\(EROFS\\)"):
        run_module.run_loadgen("Offline", "PerformanceOnly", CFG, qsl, sut, out)


def test_log_dir_that_cannot_be_created_is_named(tmp_path):
    """A --log_dir under /proc cannot be created, even by root."""
    from conftest import run_main
    result = run_main("--action=run_harness", "--system_name=CPU", "--backend=null", "--model=efficientnet-lite0",
                      "--scenarios=Offline", "--log_dir=/proc/no-such-log-dir", timeout=300)
    assert result.returncode == 2, result.stderr
    assert "ERROR: /proc/no-such-log-dir" in result.stderr and "creating the run's log folder (--log_dir) failed" \
        in result.stderr and "Traceback" not in result.stderr, result.stderr
