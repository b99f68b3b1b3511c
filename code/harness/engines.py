"""Engine naming and staleness, as the seed harness does:

    build/engines/<system>/resnet50/<Scenario>/<model>-<Scenario>-<cpu|gpu>-b<bs>-<precision>.<config_ver><suffix>

(with the default model this is the seed's `resnet50-Offline-gpu-b2048-int8.default.plan`). A JSON record beside
each engine (`<engine>.build.json`) holds what it was built from; an engine is rebuilt only when that record changes
(the contents of the model, the calibration cache and plugin libraries, the build-relevant config keys, the backend
library version, e.g. TensorRT's).

The INT8 calibration cache that `make calibrate` writes for TensorRT's implicit INT8 builds has one home,
`calibration_cache_path()`: calibration writes it there and the TensorRT builder reads it from there.
"""
from __future__ import annotations

import json
import os
from typing import Any, Optional

from . import REPO_ROOT, BENCHMARK, file_digest

# Config keys that change what gets built (the rest only change how it is run).
# Run-only keys stay out: use_graphs (CUDA graphs are captured when a runner loads the engine) and
# gpu_inference_streams (streams are created at load) would only force needless rebuilds. gpu_copy_streams stays: it
# is the number of optimisation profiles built into a TensorRT engine.
BUILD_KEYS = ("precision", "batch_size", "input_dtype", "input_format", "workspace_size",
              "gpu_copy_streams", "threads", "torch_compile", "channels_last",
              "implicit_int8", "plugins")

CALIBRATION_METHODS = ("entropy", "minmax", "percentile")


def calibration_cache_path(model_key: str, method: str = "entropy", base: Optional[str] = None) -> str:
    """build/models/<model>/calibration/<method>.cache: the TensorRT-format calibration cache
    (`TRT-<version>-EntropyCalibration2` header, then `<tensor>: <hex float32 scale>` lines) for implicit INT8."""
    return os.path.join(base or os.path.join(REPO_ROOT, "build", "models"), model_key, "calibration", f"{method}.cache")


def engine_dir(system_id: str, scenario: str, base: Optional[str] = None) -> str:
    return os.path.join(base or os.path.join(REPO_ROOT, "build", "engines"), system_id, BENCHMARK, scenario)


def engine_name(model_key: str, scenario: str, device_kind: str, batch_size: int, precision: str,
                config_ver: str, suffix: str) -> str:
    return f"{model_key}-{scenario}-{device_kind}-b{batch_size}-{precision}.{config_ver}{suffix}"


def file_md5(path: str) -> str:
    return file_digest(path, "md5")


def build_record(inputs: dict[str, Optional[str]], settings: dict[str, Any], versions: dict[str, str]) -> dict:
    return {
        "inputs": {name: (file_md5(path) if path and os.path.exists(path) else None) for name, path in inputs.items()},
        "config": {k: settings.get(k) for k in BUILD_KEYS if settings.get(k) is not None},
        "versions": versions,
    }


def record_path(engine_path: str) -> str:
    return engine_path + ".build.json"


def is_up_to_date(engine_path: str, record: dict) -> bool:
    try:
        with open(record_path(engine_path)) as f:
            return os.path.exists(engine_path) and json.load(f) == record
    except (OSError, json.JSONDecodeError):
        return False


def write_record(engine_path: str, record: dict) -> None:
    with open(record_path(engine_path), "w") as f:
        json.dump(record, f, indent=1, sort_keys=True)


def meta_path(engine_path: str) -> str:
    """What a runner needs to know about an engine's inputs and outputs (dtype, layout, scale, profiles)."""
    return engine_path + ".meta.json"


def write_meta(engine_path: str, meta: dict) -> None:
    tmp = meta_path(engine_path) + ".partial"
    with open(tmp, "w") as f:
        json.dump(meta, f, indent=1, sort_keys=True)
    os.replace(tmp, meta_path(engine_path))


def read_meta(engine_path: str) -> dict:
    try:
        with open(meta_path(engine_path)) as f:
            return json.load(f)
    except FileNotFoundError:
        from .errors import HarnessError
        raise HarnessError(f"{meta_path(engine_path)} is missing: the engine {engine_path} was not built by this "
                           "harness (or not completely). Rebuild it with `make generate_engines ... --overwrite`."
                           ) from None
