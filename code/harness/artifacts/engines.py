"""Engine naming and staleness, as the seed harness does:

    build/engines/<system>/resnet50/<Scenario>/<model>-<Scenario>-<cpu|gpu>-b<bs>-<precision>.<config_ver><suffix>

(with the default model this is the seed's `resnet50-Offline-gpu-b2048-int8.default.plan`). A JSON record beside
each engine (`<engine>.build.json`) holds what it was built from; an engine is rebuilt only when that record changes
(the contents of the model, the calibration cache and plugin libraries, the build-relevant config keys, the backend
library version, e.g. TensorRT's).

With `--model_path` naming another file than the registry's, the model key carries a short digest of that file
(`resnet50-md5_1a2b3c4d-Offline-...`): an experiment never overwrites the default engine, nor runs as it.

The record holds the md5s of every input file (the source model: the FP32 file or the calibrated Q/DQ model; the
FP32 model it came from; the calibration record and cache; plugins), the build keys and the backend versions. It is
removed before a build starts and written (atomically) after it ends, so an interrupted build never looks current.
It also holds the md5 of the engine file as built (`engine_md5`, ENGINE_DIGEST_KEY): a run and generate_engines' "up
to date" refuse an engine file replaced since (another valid engine under this config's name), naming the command
that rebuilds it; file_digest(cached=True) re-reads an engine only when its stamp changed.
`check_engine_current` (run before a run loads an engine) recomputes the record from the current model, calibration
and config and refuses an engine whose record differs, naming what changed and the command that rebuilds it; an
int8 build from a Q/DQ model first checks that the calibration record matches the current FP32 model
(calibration.check_calibration_current).

The INT8 calibration cache that `make calibrate` writes for TensorRT's implicit INT8 builds has one home,
`calibration_cache_path()`: calibration writes it there and the TensorRT builder reads it from there.
"""
from __future__ import annotations

import os
from typing import Any, Optional

from harness.core.storage import file_digest, read_json, write_json_atomic
from harness.core.errors import HarnessError
from harness.config.runconfig import RunConfig
from harness.core.paths import engine_dir
from harness.backends import backend_info
from harness.artifacts.calibration import paths as calibration_paths, quantized_model_path
from resnet50.model_files import check_model_file

# Config keys that change what gets built (the rest only change how it is run): these, plus the backend's own
# (backends/<name>/options.py INFO.build_keys). Run-only keys stay out: use_graphs (CUDA graphs are captured when a
# runner loads the engine) and gpu_inference_streams (streams are created at load) would only force needless
# rebuilds; gpu_copy_streams is the number of optimisation profiles built into a TensorRT engine.
COMMON_BUILD_KEYS = ("precision", "batch_size")


ENGINE_DIGEST_KEY = "engine_md5"      # in the record: the md5 of the engine file as built


def build_keys(backend: str) -> tuple[str, ...]:
    return COMMON_BUILD_KEYS + backend_info(backend).build_keys


def engine_name(model_key: str, scenario: str, device_kind: str, batch_size: int, precision: str,
                config_ver: str, suffix: str) -> str:
    return f"{model_key}-{scenario}-{device_kind}-b{batch_size}-{precision}.{config_ver}{suffix}"


def model_identity(spec, model_file: Optional[str]) -> str:
    """The model part of an engine name: the registry key, plus `-md5_<8 hex>` of the file when --model_path names
    another file than the registry's default (an error when that file does not exist)."""
    if not model_file or os.path.abspath(model_file) == os.path.abspath(spec.default_path):
        return spec.key
    if not os.path.isfile(model_file):
        raise HarnessError(f"Model file {model_file} does not exist (--model_path). Pass an existing ONNX file, or "
                           f"leave --model_path out to use the registry's {spec.default_path} (`make download_model "
                           f"RUN_ARGS=\"--model={spec.key}\"`).")
    return f"{spec.key}-md5_{file_digest(model_file, cached=True)[:8]}"


def engine_inputs(backend, settings: dict[str, Any], spec, fp32_path: str) -> dict[str, str]:
    """The files an engine of `backend` is built from: the backend's own list (source model first; it reads the
    run's settings as its typed options), plus the FP32 model and, for calibrated int8, the calibration record."""
    if os.path.exists(fp32_path):
        check_model_file(spec, fp32_path)     # the registry's file still has the registry's md5
    options = backend.options(dict(settings, model=spec.key))      # the backend's typed options (backends/base.py)
    inputs = dict(backend.build_inputs(options, fp32_path, quantized_model_path(fp32_path, backend.name)))
    if inputs.get("model") != fp32_path:
        inputs["fp32_model"] = fp32_path
    if settings.get("precision") == "int8":
        inputs["calibration_record"] = calibration_paths(fp32_path, "entropy")["record"]
    return inputs


def build_record(inputs: dict[str, Optional[str]], settings: dict[str, Any], versions: dict[str, str]) -> dict:
    return {
        "inputs": {name: (file_digest(path, cached=True) if path and os.path.exists(path) else None)
                   for name, path in inputs.items()},
        "config": {k: settings.get(k) for k in build_keys(settings.get("backend") or "onnxruntime")
                   if settings.get(k) is not None},
        "versions": versions,
    }


def check_engine_current(engine_path: str, backend, settings: dict[str, Any], spec, model_file: Optional[str],
                         command: str = "make generate_engines") -> None:
    """Before a run loads `engine_path`: the model exists, the engine and its build record exist, and the record
    equals the one the current model, calibration and config give; else a HarnessError naming what differs and
    the command that rebuilds it. The null backend reads no model: only the --model_path check applies."""
    if model_file and not os.path.isfile(model_file):
        raise HarnessError(f"Model file {model_file} does not exist (--model_path). Pass an existing ONNX file, or "
                           f"leave --model_path out to use the registry's {spec.default_path} (`make download_model "
                           f"RUN_ARGS=\"--model={spec.key}\"`).")
    if not backend.info.reads_model:
        return
    fp32_path = os.path.abspath(model_file) if model_file else spec.default_path
    rebuild = (f"Run `{command} RUN_ARGS=\"--scenarios={settings.get('scenario')} ...\"` with the same flags "
               "(add --overwrite to force it)")
    if not os.path.isfile(fp32_path):
        raise HarnessError(f"Model file {fp32_path} does not exist; run `make download_model "
                           f"RUN_ARGS=\"--model={spec.key}\"` or pass --model_path.")
    if not os.path.exists(engine_path):
        raise HarnessError(f"No engine at {engine_path}. {rebuild}.")
    recorded = read_json(record_path(engine_path), missing=None, invalid=None)
    if not isinstance(recorded, dict):
        raise HarnessError(f"{engine_path} has no readable build record ({record_path(engine_path)}): it was not "
                           f"built by this harness or its build was interrupted. {rebuild}.")
    inputs = engine_inputs(backend, settings, spec, fp32_path)
    expected = build_record(inputs, settings, backend.versions())
    recorded = dict(recorded)
    built_md5 = recorded.pop(ENGINE_DIGEST_KEY, None)
    if recorded == expected and built_md5 != engine_digest(engine_path):
        why = (f"its md5 {engine_digest(engine_path)} differs from the {built_md5} recorded in "
               f"{record_path(engine_path)} at build" if built_md5 else
               f"{record_path(engine_path)} holds no md5 of the engine (an older build)")
        raise HarnessError(f"{engine_path} is not the engine that was built under this name ({why}): it was "
                           f"replaced or damaged, or cannot be checked. Run `{command} "
                           f"RUN_ARGS=\"--scenarios={settings.get('scenario')} ... --overwrite\"` with the same flags "
                           "to rebuild it.")
    if recorded != expected:
        changed = [f"{k} ({inputs.get(k) or ''})".replace(" ()", "") for k in sorted(
            set(recorded.get("inputs", {})) | set(expected["inputs"]))
            if recorded.get("inputs", {}).get(k) != expected["inputs"].get(k)]
        changed += [f"config {k}: built {recorded.get('config', {}).get(k)!r}, now {expected['config'].get(k)!r}"
                    for k in sorted(set(recorded.get("config", {})) | set(expected["config"]))
                    if recorded.get("config", {}).get(k) != expected["config"].get(k)]
        if recorded.get("versions") != expected["versions"]:
            changed.append(f"versions: built with {recorded.get('versions')}, now {expected['versions']}")
        raise HarnessError(f"{engine_path} is stale: it was built from other inputs than this run's "
                           f"({'; '.join(changed)}). {rebuild}.")


def record_path(engine_path: str) -> str:
    return engine_path + ".build.json"


def engine_digest(engine_path: str) -> Optional[str]:
    """The md5 of an engine file (cached by its stamp), None when it is not a readable file."""
    try:
        return file_digest(engine_path, cached=True) if os.path.isfile(engine_path) else None
    except OSError:
        return None


def is_up_to_date(engine_path: str, record: dict) -> bool:
    """The engine exists, its record equals `record`, and the file is the one that was built (its md5)."""
    recorded = read_json(record_path(engine_path), missing=None, invalid=None)
    if not os.path.exists(engine_path) or not isinstance(recorded, dict):
        return False
    recorded = dict(recorded)
    built_md5 = recorded.pop(ENGINE_DIGEST_KEY, None)
    return recorded == record and built_md5 is not None and built_md5 == engine_digest(engine_path)


def write_record(engine_path: str, record: dict) -> None:
    """The record of a finished build, with the md5 of the engine file it wrote."""
    write_json_atomic(record_path(engine_path), dict(record, **{ENGINE_DIGEST_KEY: engine_digest(engine_path)}),
                      indent=1)


def remove_record(engine_path: str) -> None:
    """Before a build: an interrupted build must not leave the old record describing a new, partial engine."""
    try:
        os.remove(record_path(engine_path))
    except FileNotFoundError:
        pass


def engine_path(rc: RunConfig, spec, backend) -> str:
    """The engine of this config; a --model_path other than the registry's file adds its short digest."""
    return os.path.join(engine_dir(rc.system_id, rc.scenario.name),
                        engine_name(model_identity(spec, rc.paths.model_path), rc.scenario.name, backend.device_kind, rc.batch_size, rc.precision,
                                    rc.config_ver, backend.engine_suffix))
