"""Every MLPERF_* environment variable the harness reads, in one table, read through one function.

Each `EnvVar` says its name, its kind (bool, seconds, path), its default and what it means. Modules never read
`os.environ` for these themselves: they call `get(VAR)`. An unset or empty variable means its default; a bool is
read by `core/options.parse_bool` (1/0, true/false, yes/no, on/off, any case); a value that does not parse is a
HarnessError naming the variable and what it expects. `markdown_table()` renders the table that command_flags.md
shows under "Environment variables" (tests/unit/config/test_flags.py checks that the file matches).

Variables the harness only sets for its child processes (tune/tuner.py) are not read here and are not listed.
"""
from __future__ import annotations

import argparse
import math
import os
from dataclasses import dataclass
from typing import Any, Mapping, Optional

from harness.core.errors import HarnessError
from harness.core.options import parse_bool

BOOL, SECONDS, PATH = "bool", "seconds", "path"
_EXPECTED = {BOOL: "true or false (1/0, yes/no, on/off)", SECONDS: "seconds", PATH: "a folder"}


@dataclass(frozen=True)
class EnvVar:
    name: str
    kind: str                       # BOOL, SECONDS or PATH
    default: Any                    # the value when unset or empty (None: see default_text)
    default_text: str               # the default as command_flags.md says it
    meaning: str


SCRATCH_PATH = EnvVar("MLPERF_SCRATCH_PATH", PATH, None, "unset (images: build/data/imagenet)",
                      "Folder of data, preprocessed data and models; the raw images are read from its "
                      "data/imagenet/ when --data_dir is not given (the container mounts it).")
LOCK_TIMEOUT = EnvVar("MLPERF_LOCK_TIMEOUT", SECONDS, 600.0, "600",
                      "How long a run waits for a folder another run holds (preprocessed data, calibration, "
                      "engines, staging) before it gives up.")
DIGEST_CACHE = EnvVar("MLPERF_DIGEST_CACHE", PATH, None, "build/cache/digests",
                      "Folder of the digest cache: a file is re-read in full only when its size, mtime or inode "
                      "changed.")
REPORT = EnvVar("MLPERF_REPORT", BOOL, True, "on",
                "The report page that run_harness / run_audit_harness / tune write when they end; off skips it (tune's "
                "probes).")
SUT_TIMING = EnvVar("MLPERF_SUT_TIMING", BOOL, True, "on",
                    "The SUT records a latency histogram and timeline per worker (sut_timing.json); off turns the "
                    "record off.")
HARNESS_PROGRESS = EnvVar("MLPERF_HARNESS_PROGRESS", BOOL, None, "on only when stdout is a terminal",
                          "The status line while LoadGen runs (elapsed / min_duration, samples completed, current "
                          "rate); on forces it when stdout is not a terminal (a plain line every 2 s), off turns it "
                          "off.")

VARIABLES = (SCRATCH_PATH, LOCK_TIMEOUT, DIGEST_CACHE, REPORT, SUT_TIMING, HARNESS_PROGRESS)


def get(var: EnvVar, environ: Optional[Mapping[str, str]] = None) -> Any:
    """The variable's value, typed: its default when unset or empty; a HarnessError naming it when it does not
    parse."""
    raw = (os.environ if environ is None else environ).get(var.name)
    if raw is None or not raw.strip():
        return var.default
    if var.kind == BOOL:
        try:
            return parse_bool(raw)
        except argparse.ArgumentTypeError:
            raise _bad(var, raw) from None
    if var.kind == SECONDS:
        try:
            seconds = float(raw)
        except ValueError:
            raise _bad(var, raw) from None
        if not math.isfinite(seconds) or seconds < 0:
            raise HarnessError(f"${var.name}={raw!r}: expected {_EXPECTED[var.kind]}, a finite number >= 0 (nan or "
                               "inf would wait forever; a negative wait means nothing). Unset it for the default "
                               f"({var.default_text}).")
        return seconds
    return raw


def _bad(var: EnvVar, raw: str) -> HarnessError:
    return HarnessError(f"${var.name}={raw!r}: expected {_EXPECTED[var.kind]}.")


def markdown_table(variables=VARIABLES) -> str:
    """The table of environment variables as command_flags.md shows it."""
    lines = ["| variable | type | default | meaning |", "| --- | --- | --- | --- |"]
    for var in variables:
        lines.append(f"| `{var.name}` | {var.kind} | {var.default_text} | {var.meaning} |")
    return "\n".join(lines)
