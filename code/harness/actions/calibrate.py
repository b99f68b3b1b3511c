"""`--action=calibrate`: activation ranges from the calibration list and the Q/DQ models (artifacts/calibration.py)."""
from __future__ import annotations


from typing import Optional

from harness.config.command import Command
from harness.actions.preprocess_data import _preprocess_calibration
from harness.config.context import model_path, model_spec, preprocessed_dir, run_config
from resnet50.imagenet import default_data_dir, read_map
from resnet50.preprocessing import load_preprocessed
from harness.artifacts.calibration import CalibrationInputs, calibrate as run_calibration, load_checked_model


def calibrate(args: Command, argv: Optional[list[str]] = None) -> None:
    """Preprocess the calibration list if needed (fp32_nchw), then calibration.calibrate: ranges, the TensorRT
    cache and one Q/DQ model per backend."""
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
