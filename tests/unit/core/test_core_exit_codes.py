"""harness/core/errors.py and exit_codes.py: the exit-code table and raise_if_accuracy_failed."""
import os

import pytest

from conftest import ROOT

from harness.core import exit_codes
from harness.core.errors import HarnessError


def _accuracy(top1, passed):
    return {"top1": top1, "total": 500, "target_top1_99pct": 75.6954, "model": "resnet50",
            "fp32_reference_top1": 76.46, "pass": passed}


def test_the_documented_codes():
    assert (exit_codes.OK, exit_codes.ERROR, exit_codes.ACCURACY_BELOW_TARGET) == (0, 2, 3)
    assert (exit_codes.SIGINT, exit_codes.SIGTERM) == (130, 143)


def test_accuracy_below_target_is_a_harness_error_with_exit_code_3():
    assert issubclass(exit_codes.AccuracyBelowTarget, HarnessError)
    assert exit_codes.AccuracyBelowTarget("x").exit_code == 3


def test_nothing_raised_when_every_accuracy_passed_or_none_was_measured():
    exit_codes.raise_if_accuracy_failed({}, "/logs")
    exit_codes.raise_if_accuracy_failed({"Offline": {"accuracy": _accuracy(76.0, True)},
                                         "Server": {"accuracy": None},
                                         "SingleStream": {}}, "/logs")


def test_a_failed_accuracy_names_scenario_figures_and_the_kept_logs():
    results = {"Offline": {"accuracy": _accuracy(70.1234, False)}, "Server": {"accuracy": _accuracy(76.0, True)}}
    with pytest.raises(exit_codes.AccuracyBelowTarget) as e:
        exit_codes.raise_if_accuracy_failed(results, "/some/run_root")
    text = str(e.value)
    assert text.startswith("Accuracy below the target (exit code 3):")
    assert "Offline: top-1 70.123% of 500 samples is below the target 75.6954% (99% of resnet50's FP32 76.46%)" in text
    assert "Server" not in text
    assert "The logs are kept under /some/run_root." in text
    assert e.value.exit_code == 3


def test_every_failed_scenario_gets_a_line():
    results = {"Offline": {"accuracy": _accuracy(1.0, False)}, "SingleStream": {"accuracy": _accuracy(2.0, False)}}
    with pytest.raises(HarnessError) as e:
        exit_codes.raise_if_accuracy_failed(results, "/r")
    assert "\n  Offline: top-1 1.000%" in str(e.value) and "\n  SingleStream: top-1 2.000%" in str(e.value)


def test_exit_code_1_of_checks_and_audits_is_documented():
    """check_submission and run_audit_harness return 1 on FAIL: the table of every place that lists codes says so."""
    assert exit_codes.CHECK_FAILED == 1 and "1    a check failed" in exit_codes.__doc__
    with open(os.path.join(ROOT, "README.md")) as f:
        assert "| 1 | a check failed" in f.read()
    with open(os.path.join(ROOT, "command_flags.md")) as f:
        assert "1 a check failed" in f.read()
