"""code/main.py with a closed stdout (issue 19): `--action=info | head -1` ends quietly, never with a traceback."""
import os
import subprocess
import sys

from conftest import MAIN, ROOT


def test_info_into_a_closed_pipe_exits_quietly():
    """The pipe's read end is closed before the process starts, so its first write fails with EPIPE for certain
    (what `| head -1` does once head has its line)."""
    r, w = os.pipe()
    os.close(r)
    try:
        result = subprocess.run([sys.executable, MAIN, "--action=info"], stdout=w, stderr=subprocess.PIPE,
                                text=True, cwd=ROOT, timeout=300)
    finally:
        os.close(w)
    assert result.returncode == 141, result.stderr
    assert "Traceback" not in result.stderr and "BrokenPipeError" not in result.stderr, result.stderr
