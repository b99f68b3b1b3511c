"""The preparation actions: download_model, preprocess_data, calibrate, generate_engines.

Each builds the command's RunConfigs first (run.run_configs), so a bad flag or config value stops it before any
file is written.
"""
from __future__ import annotations

import argparse
import os
from typing import Optional

from .artifacts import folder_lock
from .backends import get_backend
from .backends.base import BuildRequest
from .calibration import check_calibration_current
from .engines import build_record, engine_inputs, is_up_to_date, remove_record, write_record
from .errors import HarnessError
from .run import engine_path, model_path, model_spec, preprocessed_dir, run_config, run_configs, system_id
from .runconfig import RunConfig


def download_model(args: argparse.Namespace, argv: Optional[list[str]] = None) -> None:
    from resnet50.model_files import ensure_model
    from resnet50.models import get_model
    ensure_model(get_model(args.model), args.model_path, force=bool(args.overwrite))


def preprocess_data(args: argparse.Namespace, argv: Optional[list[str]] = None) -> None:
    """The validation map in the formats asked for (or the ones the configs' backends read) and the calibration list
    in fp32_nchw, in one array per format each; --val_only / --cal_only do one of the two."""
    from resnet50.imagenet import default_data_dir, read_map
    from resnet50.preprocessing import preprocess
    from harness.formats import parse_formats
    if args.val_only and args.cal_only:
        raise HarnessError("--val_only and --cal_only exclude each other; give neither to preprocess both.")
    rcs = run_configs(args)
    rc = rcs[0]
    spec = model_spec(rc)
    data_dir = rc.paths.data_dir or default_data_dir()
    base = preprocessed_dir(rc)
    if args.formats:
        formats = parse_formats(args.formats)
    else:
        formats = list(dict.fromkeys(["fp32_nchw"] + [_backend_format(r) for r in rcs]))
    summary = {}
    if not args.cal_only:
        result = preprocess(spec, read_map(rc.paths.map_path), data_dir, base, formats=formats,
                            allow_missing=bool(args.allow_missing), overwrite=bool(args.overwrite),
                            verify=bool(args.verify))
        summary["val"] = result
    if not args.val_only:
        summary["cal"] = _preprocess_calibration(spec, rc.paths.calib_data_map, data_dir, base, args)
    for kind, result in summary.items():
        if result.skipped:
            print(f"[preprocess_data] {kind}: {len(result.skipped)} image(s) skipped under --allow_missing "
                  f"(in the manifests' `skipped`): {', '.join(list(result.skipped)[:5])}")


def _backend_format(rc: RunConfig) -> str:
    """The format the config's backend reads (fp32_nchw when that backend cannot be loaded here)."""
    try:
        return get_backend(rc.backend_name).preprocessed_format(rc.settings())
    except HarnessError:
        return "fp32_nchw"


def _preprocess_calibration(spec, cal_map_path: str, data_dir: str, base: str, args: argparse.Namespace):
    from resnet50.imagenet import read_map
    from resnet50.preprocessing import preprocess
    cal_map = read_map(cal_map_path, need_labels=False)
    try:
        return preprocess(spec, cal_map, data_dir, base, formats=["fp32_nchw"], overwrite=bool(args.overwrite),
                          verify=bool(args.verify))
    except HarnessError as e:
        raise HarnessError(f"Calibration list {cal_map_path}: {e} The calibration list must be complete (pass "
                           "--calib_data_map for another list, --data_dir for its images, or --val_only to skip "
                           "it).") from None


def calibrate(args: argparse.Namespace, argv: Optional[list[str]] = None) -> None:
    """Preprocess the calibration list if needed (fp32_nchw), then calibration.calibrate: ranges, the TensorRT
    cache and one Q/DQ model per backend."""
    from resnet50.imagenet import default_data_dir, read_map
    from resnet50.preprocessing import load_preprocessed
    from .calibration import CalibrationInputs, calibrate as run_calibration, load_checked_model
    rc = run_config(args, args.scenarios[0])
    spec = model_spec(rc)
    fp32_path = model_path(rc, spec)
    load_checked_model(spec, fp32_path)        # before any image work: a wrong model fails at once
    base = preprocessed_dir(rc)
    cal_path = rc.paths.calib_data_map
    _preprocess_calibration(spec, cal_path, rc.paths.data_dir or default_data_dir(), base, args)
    cal_map = read_map(cal_path, need_labels=False)
    data = load_preprocessed(spec, cal_map, base, "fp32_nchw")   # verified in full by preprocess with --verify
    run_calibration(spec, CalibrationInputs(model_path=fp32_path, array=data.array, array_path=data.path,
                                            array_checksum=data.manifest["checksum"], map_path=cal_map.path,
                                            map_md5=cal_map.md5, files=data.files),
                    method=rc.calib_method, force=bool(args.force_calibration))


def generate_engines(args: argparse.Namespace, argv: Optional[list[str]] = None) -> None:
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
                    onnx_path=source, engine_path=path, precision=rc.precision, batch_sizes=[rc.batch_size],
                    input_shape=spec.input_shape, settings=settings))
                print(f"[generate_engines] {scenario}: ONNX for TensorRT's parser written (no engine built): "
                      f"{onnx_path}")
                continue
            record = build_record(inputs, settings, backend.versions())
            if not args.overwrite and is_up_to_date(path, record):
                print(f"[generate_engines] {scenario} ({rc.config_ver}): {path} is up to date.")
                continue
            remove_record(path)
            backend.build(BuildRequest(onnx_path=source, engine_path=path, precision=rc.precision,
                                       batch_sizes=[rc.batch_size], input_shape=spec.input_shape, settings=settings))
            write_record(path, record)
        print(f"[generate_engines] {scenario} ({rc.config_ver}): built {path}")


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
