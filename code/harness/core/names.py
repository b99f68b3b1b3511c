"""Names that become a folder, a file name or a shell word: --system_name, --submitter, config_ver names, config
block names. One pattern for all: letters, digits, '_', '-', '.', '+', starting with a letter or digit, no '..',
at most MAX_NAME characters. `A100-SXM4-40GBx8`, `CPU-Intel_Xeon-2c`, `H200x1` pass; `CPU-x/../../tmp/evil` and
`CPU-$(touch pwned)` do not (the first would write outside build/, the second is a command when pasted).
"""
from __future__ import annotations

import re
import shlex

from harness.core.errors import HarnessError

MAX_NAME = 64
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,%d}" % (MAX_NAME - 1))
RULE = (f"use 1-{MAX_NAME} letters, digits, '_', '-', '.' and '+', starting with a letter or digit, without '..' "
        "or path separators")


def is_safe_name(value: object) -> bool:
    return isinstance(value, str) and bool(SAFE_NAME.fullmatch(value)) and ".." not in value


def check_safe_name(value: str, what: str = "--submitter", becomes: str = "one folder name") -> str:
    """The value itself when it is safe; else a HarnessError naming `what` (a flag, or a file and key)."""
    if not is_safe_name(value):
        raise HarnessError(f"{what}={value!r}: {RULE} (it becomes {becomes}).")
    return value


def sanitize_name(value: str, fallback: str = "unknown") -> str:
    """A detected name (a GPU or CPU model) made safe: other characters become '_', '..' collapses, cut to length."""
    cleaned = re.sub(r"[^A-Za-z0-9_.+-]+", "_", value or "")
    cleaned = re.sub(r"\.{2,}", ".", cleaned)
    cleaned = re.sub(r"^[^A-Za-z0-9]+", "", cleaned)[:MAX_NAME]
    return cleaned if is_safe_name(cleaned) else fallback


def make_command(action: str, args: list[str]) -> str:
    """`make <action> RUN_ARGS="..."` that pastes safely: each flag shell-quoted (shlex.join), every '$' doubled
    (make expands `$(...)` in a command-line variable, `$(shell ...)` included), and the whole value in double
    quotes when nothing in it is special there, else in single quotes (shlex.quote)."""
    value = shlex.join(str(a) for a in args).replace("$", "$$")
    if not set(value) & set('"$`\\!'):
        return f'make {action} RUN_ARGS="{value}"'
    return f"make {action} RUN_ARGS={shlex.quote(value)}"
