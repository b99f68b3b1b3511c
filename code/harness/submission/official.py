"""MLCommons' official submission checker, run from a local checkout of mlcommons/inference, and its verdict sorted.

The checker is `tools/submission/submission_checker` (a package since v6.0; `submission_checker.py` before) of a
checkout of mlcommons/inference at --inference_repo (default build/inference). It needs no network: any local copy
works, a `git clone`, a `git worktree`, or an unpacked `git archive` of a commit made on another machine, as long as
tools/submission/ is complete. `make clone_inference` makes one where there is internet; PyYAML, which the checker
imports, comes with `make venv`. Its full output goes to <results_dir>.records/official_checker.log (outside the submission root).

Its ERROR lines are sorted into:
  short run    what a dry run of short runs on a data subset must show: duration under 600 s, performance sample
               count, query count or samples per query under the rules, an accuracy run that does not cover the
               whole dataset, early stopping without enough queries, and compliance performance comparisons of
               runs too short to be stable;
  not ready    placeholders (TODO) left in systems/<system>.json;
  follow-on    lines that only repeat the above ("Some ... checks failed for", "NoResults", the SUMMARY line);
  other        everything else: a real problem the project's own check must also catch; also a failure the checker
               logs only as a warning (accuracy not met), and a "checks failed for <path>" with no error above it
               that explains it.
A dry-run tree "passes except for the short-run errors" when the checker's only errors are short run and follow-on.
"""
from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Optional

from harness.submission.integrity import records_dir

SHORT_RUN = "short run"
NOT_READY = "not ready"
FOLLOW_ON = "follow-on"
OTHER = "other"

_PATTERNS = (
    (SHORT_RUN, re.compile(r"performance_sample_count, found \d+, needs to be >= \d+")),
    (SHORT_RUN, re.compile(r"Test duration less than \d+s in user config")),
    (SHORT_RUN, re.compile(r"Required minimum Query Count not met by user config")),
    (SHORT_RUN, re.compile(r"Required minimum samples per query not met by user config")),
    (SHORT_RUN, re.compile(r"accur?cy run does not cover all dataset")),
    (SHORT_RUN, re.compile(r"Not enough samples were processed for early stopping")),
    (SHORT_RUN, re.compile(r"Early stopping condition was not met")),
    (SHORT_RUN, re.compile(r"Compliance test performance check in .* failed")),
    (NOT_READY, re.compile(r"has invalid status \(todo", re.IGNORECASE)),
    (NOT_READY, re.compile(r"field .* is (missing|empty).*todo", re.IGNORECASE)),
    (FOLLOW_ON, re.compile(r"Some .* [Cc]hecks? failed for")),
    (FOLLOW_ON, re.compile(r"^NoResults ")),
    (FOLLOW_ON, re.compile(r"SUMMARY: submission has errors")),
    (FOLLOW_ON, re.compile(r" contains errors:$")),
)
_ERROR_LINE = re.compile(r"^\[[^\]]*\bERROR\] (.*)$")
_WARNING_LINE = re.compile(r"^\[[^\]]*\bWARNING\] (.*)$")
# Failures the checker logs as warnings before its "Some ... checks failed" error line.
_FAILING_WARNINGS = (re.compile(r"accuracy not met"),)
_FAILED_FOR = re.compile(r"Some .* [Cc]hecks? failed for:? (\S+)")


@dataclass
class Verdict:
    returncode: Optional[int]                  # None: the checker did not run
    note: str                                  # why it did not run, or where its log is
    errors: dict[str, list[str]] = field(default_factory=dict)   # kind -> messages, in order
    summary_ok: bool = False                   # it printed its own success line

    @property
    def passed(self) -> bool:
        return self.returncode == 0

    def count(self, kind: str) -> int:
        return len(self.errors.get(kind, []))

    @property
    def only_short_run(self) -> bool:
        """Its only errors are those a dry run of short runs must show (and lines that repeat them)."""
        return self.returncode is not None and self.count(OTHER) == 0 and self.count(NOT_READY) == 0


def classify_line(message: str) -> str:
    for kind, pattern in _PATTERNS:
        if pattern.search(message):
            return kind
    return OTHER


def classify(output: str) -> dict[str, list[str]]:
    """The checker's ERROR lines (log prefix removed), by kind. A failing check whose reason the checker logs only
    as a warning (accuracy not met) is "other"; so is a "checks failed for <path>" line that no short-run or
    not-ready error on that path explains."""
    out: dict[str, list[str]] = {}
    follow_on: list[str] = []
    for line in output.splitlines():
        m = _ERROR_LINE.match(line.strip())
        if m:
            kind = classify_line(m.group(1))
            out.setdefault(kind, []).append(m.group(1))
            if kind == FOLLOW_ON:
                follow_on.append(m.group(1))
            continue
        m = _WARNING_LINE.match(line.strip())
        if m and any(p.search(m.group(1)) for p in _FAILING_WARNINGS):
            out.setdefault(OTHER, []).append(f"(logged as a warning) {m.group(1)}")
    explained = out.get(SHORT_RUN, []) + out.get(NOT_READY, []) + out.get(OTHER, [])
    for message in follow_on:
        m = _FAILED_FOR.search(message)
        if m and not any(m.group(1).rstrip("/.") in e for e in explained):
            out.setdefault(OTHER, []).append(f"{message} (no reason given above it)")
    return out


def checker_command(repo: str) -> Optional[tuple[list[str], str]]:
    """(command, working directory) of the checker in a checkout, or None when there is none."""
    tools = os.path.join(repo, "tools", "submission")
    if os.path.isfile(os.path.join(tools, "submission_checker", "main.py")):
        return [sys.executable, "-m", "submission_checker.main"], tools
    if os.path.isfile(os.path.join(tools, "submission_checker.py")):
        return [sys.executable, "submission_checker.py"], tools
    return None


def checkout_version(repo: str) -> Optional[str]:
    try:
        with open(os.path.join(repo, "loadgen", "VERSION.txt")) as f:
            return f.read().strip()
    except OSError:
        return None


def run_official(results_dir: str, repo: str, round_name: str) -> Verdict:
    found = checker_command(repo)
    if found is None:
        return Verdict(None, f"not run: no checkout of mlcommons/inference at {repo} (no tools/submission/"
                             "submission_checker); `make clone_inference` makes one where there is internet, or "
                             "pass --inference_repo=<any local checkout or unpacked archive> (code/README.md)")
    if importlib.util.find_spec("yaml") is None:
        return Verdict(None, "not run: MLCommons' checker imports PyYAML, which is not installed in this Python "
                             "(`make venv` installs the pinned one)")
    command, cwd = found
    os.makedirs(records_dir(results_dir), exist_ok=True)
    csv = os.path.join(records_dir(results_dir), "official_summary.csv")   # outside the submission root
    command = command + ["--input", os.path.abspath(results_dir), "--version", round_name, "--csv", csv]
    print(f"official checker: cd {cwd} && {' '.join(command)}")
    proc = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    text = proc.stdout + proc.stderr
    log = os.path.join(records_dir(results_dir), "official_checker.log")
    with open(log, "w") as f:
        f.write(text)
    verdict = Verdict(proc.returncode, f"full output in {log}", classify(text))
    verdict.summary_ok = "SUMMARY: submission looks OK" in text
    if proc.returncode not in (0, 1) and not verdict.errors:
        tail = "\n".join(text.strip().splitlines()[-10:])
        verdict.errors[OTHER] = [f"the checker stopped with exit status {proc.returncode}: {tail}"]
    return verdict


def describe(verdict: Verdict, repo: str) -> list[str]:
    """Lines for check_submission: the official verdict, sorted, beside the project's."""
    if verdict.returncode is None:
        return [f"official checker: {verdict.note}"]
    version = checkout_version(repo)
    head = (f"official checker: {'PASS' if verdict.passed else 'FAIL'} (exit status {verdict.returncode}; "
            f"checkout {repo}{f', LoadGen {version}' if version else ''}); {verdict.note}")
    lines = [head]
    for kind in (OTHER, NOT_READY, SHORT_RUN):
        messages = verdict.errors.get(kind, [])
        if not messages:
            continue
        label = {OTHER: "other errors (real problems)", NOT_READY: "not ready (placeholders)",
                 SHORT_RUN: "short-run errors (what a dry run of short runs must show)"}[kind]
        lines.append(f"  {label}: {len(messages)}")
        for message in list(dict.fromkeys(messages))[:12]:
            lines.append(f"    {message}")
    if not verdict.passed:
        if verdict.only_short_run:
            lines.append("  => only short-run errors: this dry-run tree passes the official checker otherwise")
        else:
            lines.append(f"  => {verdict.count(OTHER)} other and {verdict.count(NOT_READY)} not-ready error(s) "
                         "besides the short-run ones")
    return lines
