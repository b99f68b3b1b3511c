"""code/main.py's exit codes (documented in README.md and command_flags.md).

    0    success
    1    a check failed: check_submission found problems (project or official checker FAIL), or an audit test
         reported TEST FAIL; the report above says which
    2    an error (the message says what and what to do)
    3    a run finished but its accuracy is below the target (99% of the FP32 reference); its logs are kept
    130  interrupted by SIGINT (Ctrl-C); the run is marked INTERRUPTED
    143  interrupted by SIGTERM; the run is marked INTERRUPTED
"""
from __future__ import annotations

from typing import Any

from harness.core.errors import HarnessError

OK = 0
CHECK_FAILED = 1
ERROR = 2
ACCURACY_BELOW_TARGET = 3
SIGINT = 130
SIGTERM = 143


class AccuracyBelowTarget(HarnessError):
    exit_code = ACCURACY_BELOW_TARGET


def raise_if_accuracy_failed(results: dict[str, dict[str, Any]], run_root: str) -> None:
    """After the runs (their logs and summaries written): exit 3 when an accuracy run missed its target."""
    failed = {s: r["accuracy"] for s, r in results.items() if (r.get("accuracy") or {}).get("pass") is False}
    if not failed:
        return
    lines = [f"{s}: top-1 {a['top1']:.3f}% of {a['total']} samples is below the target {a['target_top1_99pct']}% "
             f"(99% of {a['model']}'s FP32 {a['fp32_reference_top1']}%)" for s, a in failed.items()]
    raise AccuracyBelowTarget("Accuracy below the target (exit code 3):\n  " + "\n  ".join(lines) +
                              f"\nThe logs are kept under {run_root}. Check the model (--model, --model_path: its "
                              "output offset and preprocessing), the engine's precision and calibration, and the "
                              "dataset map's labels.")
