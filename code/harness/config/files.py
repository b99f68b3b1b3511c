"""Per-system configs: configs/resnet50/<Scenario>/config.json.

Each file is a JSON object keyed by system id, plus a `default` block that every system starts from:

    {
      "default": {"backend": "onnxruntime", "batch_size": 32, ...},
      "CPU": {"offline_expected_qps": 150, "config_ver": {"int8": {"precision": "int8"}}},
      "A100-SXM4-40GBx8": {"extends": "A100-SXM4-40GBx1", "offline_expected_qps": 250000}
    }

Resolution order (later wins): `default` <- the `extends` chain (base first) <- the system block <- the block's
`config_ver` overlay named by --config_ver <- flags given on the command line. A CPU id (`CPU-<model>-<N>c`) that
has no block of its own uses the `CPU` block. `--config_ver` takes a comma list or `all` (`config_vers()`).

The keys are a schema: every key must be a config key of the flag table (flags.CONFIG_KEYS: the harness's own and
every backend's options) with a value of its type and range; an unknown key is an error naming the file, block and
key and the closest known key. Keys of the seed's harness that this one does not implement are refused with the
reason (REFUSED_KEYS). `runconfig.RunConfig` is built from the resolved values.
"""
from __future__ import annotations

import difflib
import json
import os
from typing import Any, Optional

from harness.core.paths import REPO_ROOT, BENCHMARK
from harness.core.errors import HarnessError
from harness.core.names import check_safe_name
from harness.config.systems import is_cpu_system
from harness.config.flags import CONFIG_KEYS

RESERVED = ("extends", "config_ver", "comment")

# Keys of the seed's (NVIDIA v1.0) harness configs that this harness does not implement: refused, with the reason,
# so that a config copied from the seed never runs differently from what it says.
REFUSED_KEYS = {
    "use_deque_limit": "the seed's LWIS deque limit; this SUT's queue has no such limit (remove the key)",
    "deque_timeout_us": "the seed's name for the Server batching timeout: use `server_batch_timeout_us`",
    "deque_timeout_usec": "the seed's name for the Server batching timeout: use `server_batch_timeout_us`",
    "use_cuda_thread_per_device": "the seed's LWIS threading; the GPU backends here run one runner per GPU with "
                                  "`gpu_inference_streams` worker threads (remove the key)",
    "active_sms": "the seed's MPS SM partitioning is not implemented (remove the key)",
    "tensor_path": "the seed's pre-laid-out tensor files are not read; samples come from `make preprocess_data` "
                   "(--preprocessed_data_dir, --map_path)",
    "use_triton": "the Triton Inference Server harness is not implemented (remove the key)",
    "instance_group_count": "a Triton setting; the Triton harness is not implemented (remove the key)",
    "preferred_batch_size": "a Triton setting; the Triton harness is not implemented (remove the key)",
    "max_queue_delay_usec": "a Triton setting; use `server_batch_timeout_us` for this harness's Server batching",
    "request_timeout_usec": "a Triton setting; the Triton harness is not implemented (remove the key)",
    "gpu_batch_size": "the seed's name for the batch size: use `batch_size`",
    "dla_core": "DLA (Jetson/Xavier) engines are not implemented (remove the key)",
    "dla_batch_size": "DLA (Jetson/Xavier) engines are not implemented (remove the key)",
    "dla_copy_streams": "DLA (Jetson/Xavier) engines are not implemented (remove the key)",
    "dla_inference_streams": "DLA (Jetson/Xavier) engines are not implemented (remove the key)",
    "concurrent_gpu_batch_size": "DLA (Jetson/Xavier) concurrency is not implemented (remove the key)",
    "use_jemalloc": "the seed's allocator switch is not implemented (remove the key)",
    "use_spin_wait": "the seed's LWIS spin-wait is not implemented (remove the key)",
    "numa_config": "NUMA pinning is not implemented (remove the key)",
    "complete_threads": "the seed's completion threads: this SUT completes each batch on its worker (remove the key)",
    "coalesced_tensor": "the seed's coalesced tensor file is not read (remove the key)",
    "use_small_tile_gemm_plugin": "a BERT plugin of the seed; not used by ResNet50 (remove the key)",
    "energy_aware_kernels": "not implemented (remove the key)",
    "power_limit": "power settings are not implemented (remove the key)",
    "cpu_freq": "power settings are not implemented (remove the key)",
    "server_num_issue_query_threads": "LoadGen's issue threads are not used; IssueQuery only enqueues (remove the "
                                      "key)",
}


def _schema() -> dict[str, Any]:
    return CONFIG_KEYS


def where(path: str, block: str, key: str) -> str:
    """How errors name a config value: `configs/resnet50/Offline/config.json, block 'CPU', key 'batch_size'`."""
    shown = os.path.relpath(path, REPO_ROOT) if os.path.abspath(path).startswith(REPO_ROOT + os.sep) else path
    return f"{shown}, block {block!r}, key {key!r}"


def check_block(values: dict[str, Any], path: str, block: str) -> dict[str, Any]:
    """The block's keys typed and range-checked against the schema (None means "not set here")."""
    schema = _schema()
    out: dict[str, Any] = {}
    for key, value in values.items():
        if key in RESERVED:
            continue
        if key in REFUSED_KEYS:
            raise HarnessError(f"{where(path, block, key)}: this harness does not implement it: {REFUSED_KEYS[key]}.")
        if key not in schema:
            close = difflib.get_close_matches(key, list(schema), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise HarnessError(f"{where(path, block, key)}: unknown config key{hint} Every key is listed in "
                               "command_flags.md.")
        out[key] = None if value is None else schema[key].check(value, where(path, block, key))
    return out


def check_file(data: dict[str, Any], path: str) -> None:
    """Every block and config_ver overlay of a config file against the schema, before anything runs."""
    for block, values in data.items():
        if block == "comment":
            if not isinstance(values, str):
                raise HarnessError(f"{path}: top-level `comment` is reserved for a note (a string), got "
                                   f"{'an object' if isinstance(values, dict) else json.dumps(values)}; write the note as a string, or give the block "
                                   "another name.")
            continue
        if not isinstance(values, dict):
            raise HarnessError(f"{path}: block {block!r} must be a JSON object.")
        check_safe_name(block, f"{path}: block name", "the system id in folder and file names")
        check_block(values, path, block)
        if "extends" in values and not isinstance(values["extends"], str):
            raise HarnessError(f"{where(path, block, 'extends')}: expected the name of another block.")
        overlays = values.get("config_ver", {})
        if not isinstance(overlays, dict) or not all(isinstance(v, dict) for v in overlays.values()):
            raise HarnessError(f"{where(path, block, 'config_ver')}: expected an object of named overlays, "
                               "e.g. {\"int8\": {\"precision\": \"int8\"}}.")
        for name, overlay in overlays.items():
            if name == "default" or name == "all" or "," in name:
                raise HarnessError(f"{where(path, block, 'config_ver')}: overlay name {name!r} is reserved "
                                   "(--config_ver takes `default`, `all` and comma lists).")
            check_safe_name(name, f"{where(path, block, 'config_ver')}: overlay name", "part of file names")
            for key in ("extends", "config_ver"):
                if key in overlay:
                    raise HarnessError(f"{where(path, block, 'config_ver')}: overlay {name!r} cannot hold {key!r}.")
            check_block(overlay, path, f"{block}.config_ver.{name}")


def config_path(scenario: str, config_dir: Optional[str] = None) -> str:
    base = config_dir or os.path.join(REPO_ROOT, "configs", BENCHMARK)
    return os.path.join(base, scenario, "config.json")


class _Object(dict):
    """A JSON object that remembers the keys it was given more than once (json.load would keep the last)."""
    repeated: tuple = ()


def _object(pairs: list) -> _Object:
    out = _Object(pairs)
    counts: dict[str, int] = {}
    for key, _ in pairs:
        counts[key] = counts.get(key, 0) + 1
    out.repeated = tuple(k for k, n in counts.items() if n > 1)
    return out


def _refuse_repeated_keys(value: Any, path: str, trail: str) -> None:
    """A key given twice in one object (block, overlay, the file itself) is an error naming it and where."""
    if not isinstance(value, dict):
        return
    for key in getattr(value, "repeated", ()):
        place = f"block {trail!r}, key {key!r}" if trail else f"block {key!r}"
        raise HarnessError(f"Config file {path}: {place} is given twice; JSON keeps only the last, so the first would "
                           "be ignored without a word. Keep one.")
    for key, inner in value.items():
        _refuse_repeated_keys(inner, path, f"{trail}.{key}" if trail else key)


def _read_config_text(path: str) -> str:
    folder = os.path.dirname(os.path.dirname(path))
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise HarnessError(f"--config_dir={folder}: a file, not a folder; expected a folder holding "
                           "<Scenario>/config.json (default configs/resnet50).")
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except FileNotFoundError:
        raise HarnessError(f"Config file {path} does not exist; every scenario needs one (see FAQ.md).") from None
    except IsADirectoryError:
        raise HarnessError(f"Config file {path} is a folder; expected a JSON file there (see FAQ.md).") from None
    except UnicodeDecodeError as e:
        raise HarnessError(f"Config file {path} is not UTF-8 text (byte 0x{e.object[e.start]:02x} at offset "
                           f"{e.start}); save it as UTF-8.") from None
    except OSError as e:
        raise HarnessError(f"Config file {path} cannot be read: {e.strerror or e}.") from None


def load_config_file(path: str) -> dict[str, Any]:
    text = _read_config_text(path)
    try:
        data = json.loads(text, object_pairs_hook=_object)
    except json.JSONDecodeError as e:
        raise HarnessError(f"Config file {path} is not valid JSON: {e}.") from None
    if not isinstance(data, dict) or not isinstance(data.get("default"), dict):
        raise HarnessError(f"Config file {path} must be a JSON object with a `default` block.")
    _refuse_repeated_keys(data, path, "")
    check_file(data, path)
    return data


def system_block_name(data: dict[str, Any], system_id: str, path: str) -> str:
    if system_id in RESERVED:
        raise HarnessError(f"System id {system_id!r}: {path} reserves the name {system_id!r} (it is not a system "
                           "block); pass --system_name=<a system id> (known: "
                           f"{', '.join(sorted(k for k in data if k not in RESERVED and k != 'default'))}).")
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


def _chain_names(data: dict[str, Any], name: str, path: str) -> list[str]:
    """The block names from the farthest base to `name` itself."""
    chain, seen = [], []
    while name is not None:
        if name in seen:
            raise HarnessError(f"{path}: `extends` loops: {' -> '.join(seen + [name])}.")
        if name not in data or not isinstance(data[name], dict) or name in RESERVED:
            if not seen:
                raise HarnessError(f"{path}: {name!r} is not a system block of the file.")
            what = "a reserved name, not a block" if name in RESERVED else "not in the file"
            raise HarnessError(f"{path}: block {seen[-1]!r} extends {name!r}, which is {what}.")
        seen.append(name)
        chain.append(name)
        name = data[name].get("extends")
    return list(reversed(chain))


def resolve_with_sources(scenario: str, system_id: str, config_ver: str = "default",
                         cli: Optional[dict[str, Any]] = None,
                         config_dir: Optional[str] = None) -> tuple[dict[str, Any], dict[str, str]]:
    """The merged, schema-checked settings for one scenario on one system, and where each came from (`--flag`,
    or file + block + key) for error messages."""
    path = config_path(scenario, config_dir)
    data = load_config_file(path)
    block = system_block_name(data, system_id, path)
    schema = _schema()
    merged: dict[str, Any] = {}
    sources: dict[str, str] = {}

    def layer(values: dict[str, Any], name: str) -> None:
        for key, value in check_block(values, path, name).items():
            merged[key] = value
            sources[key] = where(path, name, key)

    layer(data["default"], "default")
    overlays: dict[str, tuple[str, dict[str, Any]]] = {n: ("default", o)
                                                       for n, o in data["default"].get("config_ver", {}).items()}
    chain_names = _chain_names(data, block, path)
    for name in chain_names:
        layer(data[name], name)
        overlays.update({n: (name, o) for n, o in data[name].get("config_ver", {}).items()})
    if config_ver and config_ver != "default":
        if config_ver not in overlays:
            raise HarnessError(f"--config_ver={config_ver}: block {block!r} of {path} has no such config_ver "
                               f"(available: {', '.join(sorted(overlays)) or 'none'}).")
        owner, overlay = overlays[config_ver]
        layer(overlay, f"{owner}.config_ver.{config_ver}")
    for key, value in (cli or {}).items():
        flag = schema.get(key)
        merged[key] = value
        sources[key] = f"--{flag.name if flag else key}"
    merged = {k: v for k, v in merged.items() if v is not None}
    merged["system_id"] = system_id
    merged["config_block"] = block
    merged["config_ver"] = config_ver or "default"
    merged["scenario"] = scenario
    merged["config_file"] = path
    return merged, sources


def resolve(scenario: str, system_id: str, config_ver: str = "default", cli: Optional[dict[str, Any]] = None,
            config_dir: Optional[str] = None) -> dict[str, Any]:
    """The merged settings for one scenario on one system."""
    return resolve_with_sources(scenario, system_id, config_ver, cli, config_dir)[0]


def config_vers(scenario: str, system_id: str, text: str, config_dir: Optional[str] = None) -> list[str]:
    """--config_ver as a list: `default`, a comma list (`default,high_accuracy`), or `all` (default and every overlay
    the system's block chain has for this scenario). A named overlay the block lacks is an error (from resolve)."""
    words = [w.strip() for w in (text or "default").split(",") if w.strip()] or ["default"]
    for word in words:
        check_safe_name(word, "--config_ver" if len(words) == 1 else f"--config_ver={text}: name",
                        "part of engine and log file names")
    if "all" in words:
        if words != ["all"]:
            raise HarnessError(f"--config_ver={text}: `all` already means every config_ver; give it alone.")
        path = config_path(scenario, config_dir)
        data = load_config_file(path)
        names = ["default"] + list(data["default"].get("config_ver", {}))
        for name in _chain_names(data, system_block_name(data, system_id, path), path):
            names += list(data[name].get("config_ver", {}))
        return list(dict.fromkeys(names))
    return list(dict.fromkeys(words))
