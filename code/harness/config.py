"""Per-system configs: configs/resnet50/<Scenario>/config.json.

Each file is a JSON object keyed by system id, plus a `default` block that every system starts from:

    {
      "default": {"backend": "onnxruntime", "batch_size": 32, ...},
      "CPU": {"offline_expected_qps": 150, "config_ver": {"int8": {"precision": "int8"}}},
      "A100-SXM4-40GBx8": {"extends": "A100-SXM4-40GBx1", "offline_expected_qps": 250000}
    }

Resolution order (later wins): `default` <- the `extends` chain (base first) <- the system block <- the block's
`config_ver` overlay named by --config_ver <- flags given on the command line. A CPU id (`CPU-<model>-<N>c`) that
has no block of its own uses the `CPU` block.
"""
from __future__ import annotations

import json
import os
from typing import Any, Optional

from . import REPO_ROOT, BENCHMARK
from .errors import HarnessError
from .systems import is_cpu_system

RESERVED = ("extends", "config_ver", "comment")


def config_path(scenario: str, config_dir: Optional[str] = None) -> str:
    base = config_dir or os.path.join(REPO_ROOT, "configs", BENCHMARK)
    return os.path.join(base, scenario, "config.json")


def load_config_file(path: str) -> dict[str, Any]:
    try:
        with open(path) as f:
            data = json.load(f)
    except FileNotFoundError:
        raise HarnessError(f"Config file {path} does not exist; every scenario needs one (see FAQ.md).") from None
    except json.JSONDecodeError as e:
        raise HarnessError(f"Config file {path} is not valid JSON: {e}.") from None
    if not isinstance(data, dict) or not isinstance(data.get("default"), dict):
        raise HarnessError(f"Config file {path} must be a JSON object with a `default` block.")
    return data


def system_block_name(data: dict[str, Any], system_id: str, path: str) -> str:
    if system_id in data and system_id != "default":
        return system_id
    if is_cpu_system(system_id) and "CPU" in data:
        return "CPU"
    known = sorted(k for k in data if k != "default")
    raise HarnessError(
        f"Unknown system {system_id!r}: {path} has no block for it (known: {', '.join(known)}). "
        f"To add it, add a block \"{system_id}\": {{\"extends\": \"<a similar system>\", ...}} to "
        f"configs/{BENCHMARK}/<Scenario>/config.json for each scenario you run (FAQ.md, 'Adding a system'), "
        f"or pass --system_name=<a known id>.")


def _chain(data: dict[str, Any], name: str, path: str) -> list[dict[str, Any]]:
    """The blocks from the farthest base to `name` itself."""
    chain, seen = [], []
    while name is not None:
        if name in seen:
            raise HarnessError(f"{path}: `extends` loops: {' -> '.join(seen + [name])}.")
        if name not in data or not isinstance(data[name], dict):
            raise HarnessError(f"{path}: block {seen[-1]!r} extends {name!r}, which is not in the file.")
        seen.append(name)
        chain.append(data[name])
        name = data[name].get("extends")
    return list(reversed(chain))


def resolve(scenario: str, system_id: str, config_ver: str = "default", cli: Optional[dict[str, Any]] = None,
            config_dir: Optional[str] = None) -> dict[str, Any]:
    """The merged settings for one scenario on one system."""
    path = config_path(scenario, config_dir)
    data = load_config_file(path)
    block = system_block_name(data, system_id, path)
    merged: dict[str, Any] = {k: v for k, v in data["default"].items() if k not in RESERVED}
    overlays: dict[str, Any] = dict(data["default"].get("config_ver", {}))
    for part in _chain(data, block, path):
        merged.update({k: v for k, v in part.items() if k not in RESERVED})
        overlays.update(part.get("config_ver", {}))
    if config_ver and config_ver != "default":
        if config_ver not in overlays:
            raise HarnessError(f"--config_ver={config_ver}: block {block!r} of {path} has no such config_ver "
                               f"(available: {', '.join(sorted(overlays)) or 'none'}).")
        merged.update(overlays[config_ver])
    merged.update(cli or {})
    merged["system_id"] = system_id
    merged["config_block"] = block
    merged["config_ver"] = config_ver or "default"
    merged["scenario"] = scenario
    return merged
