"""One option: a command-line flag and/or a config key, with its type and allowed range.

The flag table (flags.py) and every backend's options (backends/<name>/options.py) are tuples of `Flag`. The same
declaration parses `--name=value`, checks a value read from configs/resnet50/<Scenario>/config.json, and writes the
row of command_flags.md. Adding an option is one line:

    Flag("max_duration", int, None, "LoadGen max_duration in ms (0: no limit).", min=0, config_key="max_duration")

A value outside its range is an error naming where it came from (the flag, or the config file, block and key), the
value and what is allowed.
"""
from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

from harness.core.errors import HarnessError

TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off")


_NO_DEFAULT = object()


def parse_bool(text: Any, default: Any = _NO_DEFAULT) -> bool:
    """The one bool parser: true/false, yes/no, on/off, 1/0 (any case); a bool is returned as it is. With `default`,
    None (an unset setting) gives the default."""
    if isinstance(text, bool):
        return text
    if text is None and default is not _NO_DEFAULT:
        return default
    lowered = str(text).strip().lower()
    if lowered in TRUE_WORDS:
        return True
    if lowered in FALSE_WORDS:
        return False
    raise argparse.ArgumentTypeError(f"expected true/false, got {text!r}")


def parse_int_list(text: Any) -> tuple[int, ...]:
    """`8,16,32` (a flag) or [8, 16, 32] (a config value) -> (8, 16, 32)."""
    if isinstance(text, (list, tuple)):
        items = list(text)
    else:
        items = [w.strip() for w in str(text).split(",") if w.strip()]
    try:
        out = tuple(int(v) for v in items if not isinstance(v, bool))
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"expected a comma list of integers, got {text!r}") from None
    if len(out) != len(items):
        raise argparse.ArgumentTypeError(f"expected a comma list of integers, got {text!r}")
    return out


def parse_devices(value: Any, what: str = "--devices") -> Optional[list[str]]:
    """The one device-list parser: `0,1` (flag) or [0, 1] (config) -> ["0", "1"]; empty or `all` -> None (every
    visible device). Backends check the ids against what they see."""
    if value is None:
        return None
    words = [str(w).strip() for w in (value if isinstance(value, (list, tuple)) else str(value).split(","))]
    words = [w for w in words if w]
    if not words or words == ["all"]:
        return None
    if len(set(words)) != len(words):
        raise HarnessError(f"{what}={value}: a device is listed twice.")
    return words


_TYPE_NAMES = {str: "str", int: "int", float: "float", parse_bool: "bool", parse_int_list: "int list"}


@dataclass(frozen=True)
class Flag:
    name: str
    type: Callable[[str], Any]
    default: Any
    help: str
    choices: Optional[Sequence[str]] = None
    # True: a switch (`--fast`) that needs no value; `--fast=false` is also accepted.
    switch: bool = False
    # The config key this flag overrides, when it has one (config files may then set it).
    config_key: Optional[str] = None
    # Allowed range of a number: min <= value <= max; `gt` for an exclusive lower bound (value > gt).
    min: Optional[float] = None
    max: Optional[float] = None
    gt: Optional[float] = None
    # False: a config key only (no --flag); listed in command_flags.md's config-key table.
    cli: bool = True

    @property
    def type_name(self) -> str:
        if self.switch:
            return "bool"
        return _TYPE_NAMES.get(self.type, getattr(self.type, "__name__", str(self.type)))

    @property
    def allowed(self) -> str:
        """The allowed values in words, as error messages and command_flags.md say them."""
        if self.choices:
            return "one of " + ", ".join(map(str, self.choices))
        kind = {"int": "an integer", "float": "a number", "bool": "true or false", "str": "a string",
                "int list": "a list of integers"}.get(self.type_name, self.type_name)
        bounds = []
        if self.gt is not None:
            bounds.append(f"> {self.gt:g}")
        if self.min is not None:
            bounds.append(f">= {self.min:g}")
        if self.max is not None:
            bounds.append(f"<= {self.max:g}")
        if self.type_name == "int list" and bounds:
            return f"{kind}, each {' and '.join(bounds)}"
        return f"{kind} {' and '.join(bounds)}".strip()

    def _in_range(self, value: Any) -> bool:
        values = value if isinstance(value, tuple) else (value,)
        for v in values:
            if isinstance(v, float) and not math.isfinite(v):
                return False
            if self.gt is not None and not v > self.gt:
                return False
            if self.min is not None and not v >= self.min:
                return False
            if self.max is not None and not v <= self.max:
                return False
        if self.choices and value not in self.choices:
            return False
        return True

    def check(self, value: Any, where: str) -> Any:
        """A value from the command line (already of this type) or a config file (JSON), typed and range-checked.
        `where` names its origin (`--batch_size`, or `<file>, block 'CPU', key 'batch_size'`)."""
        typed = self._typed(value, where)
        if not self._in_range(typed):
            raise HarnessError(f"{where}={_shown(value)}: expected {self.allowed}.")
        return typed

    def _typed(self, value: Any, where: str) -> Any:
        kind = "bool" if self.switch else self.type_name
        bad = HarnessError(f"{where}={_shown(value)}: expected {self.allowed}.")
        if kind == "bool":
            if isinstance(value, bool):
                return value
            if isinstance(value, str):
                try:
                    return parse_bool(value)
                except argparse.ArgumentTypeError:
                    raise bad from None
            raise bad
        if kind in ("int", "float") and isinstance(value, str):
            raise HarnessError(f"{where}={json.dumps(value)}: a string (in quotes); expected {self.allowed}. Write "
                               "the number without quotes.")
        if kind == "int":
            if isinstance(value, bool) or not isinstance(value, (int, float)) or \
                    (isinstance(value, float) and (not math.isfinite(value) or value != int(value))):
                raise bad
            return int(value)
        if kind == "float":
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise bad
            return float(value)
        if kind == "int list":
            try:
                return parse_int_list(value)
            except argparse.ArgumentTypeError:
                raise bad from None
        if not isinstance(value, str):
            raise bad
        return value


def _shown(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    return str(value) if isinstance(value, float) else json.dumps(value)
