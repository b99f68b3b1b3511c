"""`--action=run`: generate_engines, then run_harness (what `make demo` runs)."""
from __future__ import annotations


from typing import Optional

from harness.config.command import Command
from harness.actions.generate_engines import generate_engines
from harness.actions.run_harness import run_harness
from harness.config.context import run_configs


def run(args: Command, argv: Optional[list[str]] = None) -> int:
    run_configs(args)                 # every value checked before the first engine is built
    generate_engines(args)
    return run_harness(args, argv)
