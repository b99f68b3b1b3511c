"""The `--action`s of code/main.py: the action table only.

Each action is "module:function" under harness/, imported when it runs, so reading this table (flags.py builds
--action's choices from it) loads nothing. The function takes (args, argv) and returns an exit code or None.
Adding an action is one line here.
"""
from __future__ import annotations

import argparse
import importlib

from .errors import HarnessError

ACTIONS = {
    "download_model": "prepare:download_model",
    "preprocess_data": "prepare:preprocess_data",
    "calibrate": "prepare:calibrate",
    "generate_engines": "prepare:generate_engines",
    "run_harness": "run:run_harness",
    "run": "run:run",
    "run_audit_harness": "submission.audit:run_audit_harness",
    "update_results": "submission.stage:update_results",
    "truncate_results": "submission.truncate:truncate_results",
    "summarize_results": "submission.summarize:summarize_results",
    "check_submission": "submission.check:check_submission",
    "tune": "tune:tune",
    # Reports and auditor's tools (harness/report.py, harness/tools.py).
    "report": "report:report",
    "generate_conf_files": "tools:generate_conf_files",
    "info": "tools:info",
}
ACTION_NAMES = tuple(ACTIONS)


def dispatch(args: argparse.Namespace, argv: list[str]) -> int:
    if args.action is None:
        raise HarnessError("--action is required: one of " + ", ".join(ACTIONS) + ".")
    module, function = ACTIONS[args.action].split(":")
    return getattr(importlib.import_module(f"harness.{module}"), function)(args, argv) or 0
