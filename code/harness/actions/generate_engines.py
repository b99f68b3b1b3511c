"""The preparation actions: download_model, preprocess_data, calibrate, generate_engines.

Each builds the command's RunConfigs first (run.run_configs), so a bad flag or config value stops it before any
file is written.
"""
from __future__ import annotations

import os
from typing import Optional

from harness.config.command import Command
from harness.core.storage import folder_lock
from harness.backends import get_backend
from harness.backends.base import BuildRequest
from harness.artifacts.calibration import check_calibration_current
from harness.artifacts.engines import build_record, engine_inputs, is_up_to_date, remove_record, write_record
from harness.core.errors import HarnessError
from harness.core.names import make_command
from harness.graph.onnx_graph import UnreadableModel
from harness.artifacts.engines import engine_path
from harness.config.context import model_path, model_spec, run_configs, system_id
from harness.config.runconfig import RunConfig


def generate_engines(args: Command, argv: Optional[list[str]] = None) -> None:
    for rc in run_configs(args, system_id(args)):
        settings = rc.settings()
        scenario = rc.scenario.name
        spec = model_spec(rc)
        backend = get_backend(rc.backend_name)
        onnx_only = bool(getattr(args, "onnx_only", False))
        if onnx_only and not hasattr(backend, "export_onnx"):
            raise HarnessError(f"--onnx_only writes the ONNX handed to TensorRT's parser; backend {backend.name} "
                               "has none (use --backend=tensorrt).")
        if not onnx_only:
            backend.require()
        fp32_path = model_path(rc, spec)
        path = engine_path(rc, spec, backend)    # an error when --model_path does not exist
        options = rc.options()
        inputs = engine_inputs(backend, settings, spec, fp32_path)
        source = inputs["model"]
        if backend.info.reads_model or rc.precision == "int8":   # the null backend reads no FP32 model
            check_build_inputs({k: v for k, v in inputs.items() if k != "calibration_record"}, rc, spec)
            if rc.precision == "int8":     # never from a stale Q/DQ model or cache
                check_calibration_current(fp32_path, backend.name, inputs, spec.key,
                                          bool(rc.backend.get("calib_cache")))
        with folder_lock(os.path.dirname(path), f"generate_engines {scenario}"):
            if onnx_only:        # the exact graph TensorRT would parse, without TensorRT (issue 12)
                onnx_path, _, _ = backend.export_onnx(BuildRequest(
                    onnx_path=source, engine_path=path, input_shape=spec.input_shape, options=options,
                    input_scale=spec.input_scale))
                print(f"[generate_engines] {scenario}: ONNX for TensorRT's parser written (no engine built): "
                      f"{onnx_path}")
                continue
            record = build_record(inputs, settings, backend.versions())
            if not args.overwrite and is_up_to_date(path, record):
                print(f"[generate_engines] {scenario} ({rc.config_ver}): {path} is up to date.")
                continue
            remove_record(path)
            try:
                backend.build(BuildRequest(onnx_path=source, engine_path=path, input_shape=spec.input_shape,
                                           options=options, input_scale=spec.input_scale))
            except UnreadableModel as e:
                raise HarnessError(f"{e} {model_remedy(rc, spec, source, fp32_path)}") from None
            write_record(path, record)
        print(f"[generate_engines] {scenario} ({rc.config_ver}): built {path}")


def model_remedy(rc: RunConfig, spec, source: str, fp32_path: str) -> str:
    """What to do about an unreadable model file: calibrate again for a Q/DQ model, else download it again."""
    if os.path.abspath(source) != os.path.abspath(fp32_path):
        return (f"It is made by calibration: run `{make_command('calibrate', ['--force_calibration'])}` again "
                "(or use --precision=fp32).")
    return (f"Fetch it again with `{make_command('download_model', [f'--model={spec.key}', '--overwrite'])}`, or "
            "pass --model_path=<a complete .onnx file>.")


def check_build_inputs(inputs: dict[str, str], rc: RunConfig, spec) -> None:
    """Every file an engine is built from exists, or a clear error says how to make it."""
    for name, path in inputs.items():
        if os.path.exists(path):
            continue
        if name == "model" and rc.precision == "int8" and not rc.backend.get("implicit_int8"):
            raise HarnessError(f"No calibrated INT8 model at {path}; run `make calibrate` first "
                               "(or use --precision=fp32).")
        if name == "model":
            raise HarnessError(f"Model file {path} does not exist; run `make download_model "
                               f"RUN_ARGS=\"--model={spec.key}\"` or pass --model_path.")
        if name == "calibration_cache":
            raise HarnessError(f"No calibration cache at {path}: --implicit_int8 builds from the FP32 model and this "
                               "cache. Run `make calibrate` first, or pass --calib_cache=<file>.")
        raise HarnessError(f"{name} file {path} does not exist (--plugins lists .so files).")
