"""The config overlay a tune writes: the --tune_grid points to search, the values to commit (the config-key flags
of the command line, the grid point's settings, the scenario's `target_key` as the config holds it), and writing
them into a block of configs/resnet50/<Scenario>/config.json or into its config_ver overlay.
"""
from __future__ import annotations

import itertools
import json
import os
from typing import Any, Optional

from harness.config.flags import FLAG_BY_NAME
from harness.config.scenarios import get as get_scenario
from harness.core.errors import HarnessError

# Config-key flags that describe a run, not a system: never written into an overlay.
NOT_OVERLAY = ("min_duration", "min_query_count", "max_query_count", "map_path", "calib_data_map",
               "server_max_async_queries", "performance_sample_count")


def rounded(scenario, value: float) -> Any:
    """The tuned value as the config holds it (Scenario.tuned_value)."""
    return get_scenario(scenario).tuned_value(value)


def parse_grid(text: Optional[str]) -> list[dict[str, Any]]:
    """`batch_size=1,2;server_batch_timeout_us=0,2000` -> every combination, as flag -> value dicts."""
    if not text or not text.strip():
        return [{}]
    axes = []
    for part in text.replace(" ", ";").split(";"):
        if not part.strip():
            continue
        name, sep, values = part.partition("=")
        name = name.strip().lstrip("-")
        flag = FLAG_BY_NAME.get(name)
        if not sep or flag is None or flag.config_key is None or flag.switch or name in NOT_OVERLAY:
            raise HarnessError(f"--tune_grid: {part.strip()!r} is not `<flag>=<v1>,<v2>,...` with a flag that sets a "
                               "config key (e.g. batch_size=1,2,4;server_batch_timeout_us=0,2000).")
        try:
            vals = [flag.type(v.strip()) for v in values.split(",") if v.strip()]
        except (TypeError, ValueError):
            raise HarnessError(f"--tune_grid: {name} takes {flag.type_name} values, got {values!r}.") from None
        if not vals:
            raise HarnessError(f"--tune_grid: {name} has no values.")
        axes.append((name, list(dict.fromkeys(vals))))
    return [dict(zip([a[0] for a in axes], combo)) for combo in itertools.product(*[a[1] for a in axes])]


def overlay_values(scenario: str, value: float, params: dict[str, Any], cli: dict[str, Any]) -> dict[str, Any]:
    """The keys to commit: the config-key flags given on the command line (less run-length ones), the grid
    point's settings, and the value found."""
    out: dict[str, Any] = {k: v for k, v in cli.items() if k not in NOT_OVERLAY}
    for name, v in params.items():
        out[FLAG_BY_NAME[name].config_key] = v
    key = get_scenario(scenario).target_key
    out.pop(key, None)
    out[key] = rounded(scenario, value)
    return out


def effective_overlays(data: dict[str, Any], block: str) -> dict[str, dict]:
    """The config_ver overlays a block sees: its own over those of its `extends` chain and `default`."""
    chain, name, seen = [], block, set()
    while name is not None and name not in seen and isinstance(data.get(name), dict):
        seen.add(name)
        chain.append(data[name])
        name = data[name].get("extends")
    overlays = dict(data["default"].get("config_ver", {}))
    for part in reversed(chain):
        overlays.update(part.get("config_ver", {}))
    return overlays


def apply_overlay(data: dict[str, Any], block: str, config_ver: str, values: dict[str, Any]) -> dict[str, Any]:
    """A copy of a config file's data with `values` written into `block` (config_ver `default`) or into its
    config_ver overlay (an overlay inherited from a base block is copied into `block` first: overlays replace,
    they do not merge)."""
    new = json.loads(json.dumps(data))
    if block not in new:
        new[block] = {}
    target = new[block]
    if config_ver and config_ver != "default":
        inherited = dict(effective_overlays(data, block).get(config_ver, {}))
        overlays = target.setdefault("config_ver", {})
        overlays[config_ver] = {**inherited, **overlays.get(config_ver, {}), **values}
    else:
        target.update(values)
    return new


def snippet(block: str, config_ver: str, values: dict[str, Any]) -> dict[str, Any]:
    if config_ver and config_ver != "default":
        return {block: {"config_ver": {config_ver: values}}}
    return {block: values}


def write_config(path: str, data: dict[str, Any]) -> None:
    text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    json.loads(text)
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)
