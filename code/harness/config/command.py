"""The command line as one frozen value: every flag's typed, range-checked value, what was given, and the words.

    cmd = parse_args(["--action=run_harness", "--scenarios=Offline"])     (harness/actions/__init__.py)
    cmd.scenarios          ["Offline"]      (every flag of the table is an attribute; None: not given)
    cmd.given("scenarios") True
    cmd.replace(scenarios=["Server"])       a new Command; a Command never changes

Everything below harness/actions/ takes a Command, never argparse's Namespace.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping


@dataclass(frozen=True)
class Command:
    values: Mapping[str, Any]
    argv: tuple[str, ...] = ()
    given_flags: frozenset = field(default_factory=frozenset)

    def __post_init__(self):
        object.__setattr__(self, "values", MappingProxyType(dict(self.values)))

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in ("values", "argv", "given_flags"):
            raise AttributeError(name)
        try:
            return self.values[name]
        except KeyError:
            raise AttributeError(f"Command has no flag {name!r}") from None

    def given(self, name: str) -> bool:
        """Whether `--name` was on the command line (a flag left at its default was not)."""
        return name in self.given_flags

    def replace(self, **changes: Any) -> "Command":
        unknown = set(changes) - set(self.values)
        if unknown:
            raise AttributeError(f"Command has no flag(s) {sorted(unknown)}")
        return Command({**self.values, **changes}, self.argv, self.given_flags | frozenset(changes))

    def __reduce__(self):     # MappingProxyType does not pickle; a Command travels to isolated run processes
        return (Command, (dict(self.values), self.argv, self.given_flags))
