"""The `--action`s of code/main.py: the action table, the whole flag table, and dispatch.

Each action is a function (Command, argv) -> exit code or None, imported here by name, so a reader (or an IDE)
follows `--action=X` to its function. Adding an action is one import and one line of ACTIONS. Heavy third-party
libraries (onnxruntime, torch, tensorrt, matplotlib) are imported inside the functions that need them, so importing
this table stays cheap.
"""
from __future__ import annotations

from typing import Callable, Optional, Sequence

from harness.actions import calibrate as _calibrate
from harness.actions import download_model as _download_model
from harness.actions import generate_conf_files as _generate_conf_files
from harness.actions import generate_engines as _generate_engines
from harness.actions import info as _info
from harness.actions import preprocess_data as _preprocess_data
from harness.actions import report as _report
from harness.actions import run as _run
from harness.actions import run_harness as _run_harness
from harness.actions import tune as _tune
from harness.config import flags as run_flags
from harness.config.command import Command
from harness.core.errors import HarnessError
from harness.core.options import Flag
from harness.submission.audit import run_audit_harness
from harness.submission.check import check_submission
from harness.submission.stage import update_results
from harness.submission.summarize import summarize_results
from harness.submission.truncate import truncate_results

ACTIONS: dict[str, Callable[[Command, list[str]], Optional[int]]] = {
    "download_model": _download_model.download_model,
    "preprocess_data": _preprocess_data.preprocess_data,
    "calibrate": _calibrate.calibrate,
    "generate_engines": _generate_engines.generate_engines,
    "run_harness": _run_harness.run_harness,
    "run": _run.run,
    "run_audit_harness": run_audit_harness,
    "update_results": update_results,
    "truncate_results": truncate_results,
    "summarize_results": summarize_results,
    "check_submission": check_submission,
    "tune": _tune.tune,
    # Reports and auditor's tools
    "report": _report.report,
    "generate_conf_files": _generate_conf_files.generate_conf_files,
    "info": _info.info,
}
ACTION_NAMES = tuple(ACTIONS)
ACTION_FLAG = Flag("action", str, None, "What to do: " + ", ".join(ACTION_NAMES) + ".", choices=ACTION_NAMES)
# The one flag table: --action, the run flags and every backend's options (harness/config/flags.py).
FLAGS: tuple[Flag, ...] = (ACTION_FLAG,) + run_flags.FLAGS


def parse_args(argv: Sequence[str]) -> Command:
    """The command line as a frozen Command (harness/config/command.py), every flag checked."""
    return run_flags.parse_command(argv, FLAGS)


def markdown_table() -> str:
    """The flag table as command_flags.md shows it."""
    return run_flags.markdown_table(FLAGS)


def dispatch(args: Command, argv: list[str]) -> int:
    if args.action is None:
        raise HarnessError("--action is required: one of " + ", ".join(ACTIONS) + ".")
    return ACTIONS[args.action](args, argv) or 0
