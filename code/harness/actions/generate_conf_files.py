"""`--action=generate_conf_files`: every system's and scenario's user.conf, without running.

    make generate_conf_files                                   every system block x every scenario
    make generate_conf_files RUN_ARGS="--system_name=A10x2 --scenarios=Offline,Server"

It writes measurements/<system>/resnet50/<Scenario>/user.conf, the file run_harness writes and hands to LoadGen
(loadgen/settings.py user_conf_lines), from the configs as resolved for that system, scenario and --config_ver, with
any flags given. A system with no block in a scenario's config file is skipped and named.
"""
from __future__ import annotations


import os
from typing import Optional

from harness.config.command import Command
from harness.core.errors import HarnessError
from harness.config.flags import flag_given
from harness.core.paths import REPO_ROOT
from harness.config.scenarios import NAMES as SCENARIOS
from harness.config import files as configs
from harness.config.context import run_config, system_id
from harness.core.paths import measurements_dir
from harness.loadgen.settings import user_conf_lines


def config_systems() -> list[str]:
    """Every system block of every scenario's config file, in file order."""
    seen: dict[str, None] = {}
    for scenario in SCENARIOS:
        path = configs.config_path(scenario)
        if os.path.exists(path):
            for name in configs.load_config_file(path):
                if name != "default":
                    seen[name] = None
    return list(seen)


def _map_size(path: str) -> int:
    try:
        with open(path) as f:
            return sum(1 for line in f if line.strip())
    except OSError:
        return 0


def generate_conf_files(args: Command, argv: Optional[list[str]] = None) -> int:
    systems = [system_id(args)] if args.system_name else config_systems()
    scenarios = args.scenarios if flag_given(argv, "scenarios") else list(SCENARIOS)
    written, skipped = [], []
    for system in systems:
        for scenario in scenarios:
            try:
                rc = run_config(args, scenario, system)
            except HarnessError as e:
                if "has no block for it" in str(e) or "Unknown system" in str(e):
                    skipped.append(f"{system} {scenario}")
                    continue
                raise
            lines = user_conf_lines(scenario, rc.settings(), _map_size(rc.paths.map_path))
            folder = measurements_dir(system, scenario)
            os.makedirs(folder, exist_ok=True)
            path = os.path.join(folder, "user.conf")
            with open(path, "w") as f:
                f.write("\n".join(lines) + "\n")
            written.append(path)
            print(f"[generate_conf_files] {os.path.relpath(path, REPO_ROOT)}")
    if skipped:
        print(f"[generate_conf_files] no config block (skipped): {', '.join(skipped)}")
    if not written:
        raise HarnessError("generate_conf_files wrote nothing: no config block for "
                           f"{', '.join(systems)} in {', '.join(scenarios)}.")
    print(f"[generate_conf_files] {len(written)} user.conf file(s) under measurements/ (LoadGen reads mlperf.conf "
          "first, then these).")
    return 0
