"""The "Reproduce" section of a staged scenario's README.md: every make target, in order, from the recorded commands.

Each run records the command that made it (summary.json "command": `code/main.py --action=X <flags>`). The section
replays the performance run's flags through every step: download_model, preprocess_data (with --data_dir, which the
run did not need), calibrate (INT8 only), generate_engines, then each staged run's own command (performance,
accuracy, compliance tests), and the check of the accuracy log with MLCommons' accuracy-imagenet.py, which needs
`--dtype int32` for this harness's logs (the default float32 reads our int32 labels as 0.000%).

Every printed command is shell-quoted (core/names.py make_command): a recorded flag such as
`--log_dir=$(touch pwned)` is shown as a literal that runs nothing when the block is pasted.
"""
from __future__ import annotations

import shlex
from typing import Any, Optional

from harness.core.names import make_command

DATA_DIR_PLACEHOLDER = "/path/to/ILSVRC2012_img_val"   # shell-safe: it is pasted as one word
ACCURACY_SCRIPT = "vision/classification_and_detection/tools/accuracy-imagenet.py"


def recorded_words(command: Optional[str]) -> list[str]:
    """A recorded command's words: shlex.join'd by run_harness (older records joined with spaces)."""
    try:
        return shlex.split(command or "")
    except ValueError:
        return (command or "").split()


def run_args(command: Optional[str]) -> Optional[list[str]]:
    """The flags of a recorded `code/main.py --action=X ...` command, without --action and --test_mode."""
    words = recorded_words(command)
    if len(words) < 2 or not words[0].endswith("main.py") or not words[1].startswith("--action="):
        return None
    return [w for w in words[2:] if not w.startswith("--test_mode=") and not w.startswith("--audit_test=")]


def _make(action: str, args: list[str]) -> str:
    return make_command(action, args)


def _replay(command: Optional[str]) -> str:
    words = recorded_words(command)
    if len(words) >= 2 and words[0].endswith("main.py") and words[1].startswith("--action="):
        return _make(words[1].split("=", 1)[1], words[2:])
    return f"# (not recorded) {' '.join(command.splitlines()) if command else ''}".rstrip()


def reproduce_lines(runs: dict[str, Any], code_dir: str) -> list[str]:
    """Markdown lines: a fenced block of shell commands. runs: kind -> runs.Run (performance first)."""
    perf = runs["performance"]
    summary = perf.summary or {}
    fp = perf.fingerprint or {}
    args = run_args(summary.get("command"))
    dataset = summary.get("dataset") or {}
    lines = ["## Reproduce", "",
             f"From the harness (`{code_dir}/` of this submission; code/README.md there explains each step):", "",
             "```sh", "make venv"]
    if args is None:
        lines += ["# the performance run recorded no command; see the table above"]
    else:
        model = next((w.split("=", 1)[1] for w in args if w.startswith("--model=")), fp.get("model"))
        data_args = [w for w in args if not w.startswith("--data_dir=")] + [f"--data_dir={DATA_DIR_PLACEHOLDER}"]
        lines += [_make("download_model", [f"--model={model}"]),
                  _make("preprocess_data", data_args)]
        if fp.get("precision") == "int8":
            lines.append(_make("calibrate", data_args))
        else:
            lines.append(f"# make calibrate: only INT8 engines need it (this one is {fp.get('precision')})")
        lines.append(_make("generate_engines", args))
    for kind, run in runs.items():
        lines.append(f"{_replay((run.summary or {}).get('command'))}   # {kind}")
    val_map = dataset.get("map") or "data_maps/imagenet/val_map.txt"
    lines += ["# the accuracy log, checked with MLCommons' script (a checkout of mlcommons/inference); this",
              "# harness logs int32 labels, so --dtype int32 (the default float32 gives 0.000%). After",
              "# make truncate_results the whole log is in accuracy_log_backup/ at the tree's root.",
              f"python3 <mlcommons/inference>/{ACCURACY_SCRIPT} --mlperf-accuracy-file "
              f"accuracy/mlperf_log_accuracy.json --imagenet-val-file {val_map} --dtype int32",
              "```", ""]
    return lines
