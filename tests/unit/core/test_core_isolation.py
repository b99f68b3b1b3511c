"""harness/core/isolation.py: a job in a fresh process, its result or its HarnessError back here."""
import os

import pytest

from harness.core.errors import HarnessError
from harness.core.isolation import run_isolated
from harness.core.options import parse_devices


def test_the_result_comes_back():
    assert run_isolated(os.path.basename, "/a/b/c.txt") == "c.txt"
    assert run_isolated(parse_devices, "0,1") == ["0", "1"]


def test_a_harness_error_in_the_child_comes_back_as_one(capfd):
    with pytest.raises(HarnessError, match=r"^--devices=0,0: a device is listed twice\.$"):
        run_isolated(parse_devices, "0,0")
    assert "ERROR: --devices=0,0: a device is listed twice." in capfd.readouterr().err


def test_a_child_that_dies_without_a_result_is_a_harness_error_naming_the_job():
    with pytest.raises(HarnessError, match=r"^The process running int ended with exit code 1 and no result"):
        run_isolated(int, "not a number")


def test_a_storage_fault_in_the_child_comes_back_naming_the_path(capfd):
    """issue 19: an OSError with a file name (here a folder where a file is expected: os.remove of '/') is a
    HarnessError with the path and the cause, no traceback in the child."""
    with pytest.raises(HarnessError, match=r"^/proc: accessing it failed: the path is a folder where a file was "
                                           r"expected \(EISDIR\)"):
        run_isolated(os.remove, "/proc")
    assert "Traceback" not in capfd.readouterr().err
