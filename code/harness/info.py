"""`--action=info` (the resolved run configuration of each scenario, and where each value came from) and
`--action=generate_conf_files` (the user.conf of each scenario, written where a run writes it, without running)."""
from __future__ import annotations

import argparse
import os
from typing import Optional

from .run import run_configs


def info(args: argparse.Namespace, argv: Optional[list[str]] = None) -> int:
    for rc in run_configs(args):
        print(f"== {rc.scenario.name} on {rc.system_id} (block {rc.config_block}, config_ver {rc.config_ver}, "
              f"{os.path.relpath(rc.config_file)})")
        sources = dict(rc.sources)
        for key, value in sorted(rc.settings().items()):
            origin = sources.get(key, "")
            print(f"  {key:<36} {value!s:<24} {origin}")
    return 0


def generate_conf_files(args: argparse.Namespace, argv: Optional[list[str]] = None) -> int:
    from resnet50.imagenet import read_map
    from .loadgen_run import measurements_dir, user_conf_lines
    for rc in run_configs(args):
        total = len(read_map(rc.paths.map_path, need_labels=False).files)
        folder = measurements_dir(rc.system_id, rc.scenario.name)
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, "user.conf")
        with open(path, "w") as f:
            f.write("\n".join(user_conf_lines(rc.scenario, rc.settings(), total)) + "\n")
        print(f"[generate_conf_files] {rc.scenario.name} ({rc.config_ver}): wrote {path}")
    return 0
