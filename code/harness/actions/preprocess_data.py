"""`--action=preprocess_data`: the validation map in the formats asked for (or those the configs' backends read) and the
calibration list in fp32_nchw, one array per format each (resnet50/preprocessing.py)."""
from __future__ import annotations


from typing import Optional

from harness.config.command import Command
from harness.core.errors import HarnessError
from harness.core.storage import StorageError
from harness.backends import get_backend
from harness.config.context import model_spec, preprocessed_dir, run_configs
from harness.config.runconfig import RunConfig
from harness.graph.formats import parse_formats
from resnet50.imagenet import default_data_dir, read_map
from resnet50.preprocessing import preprocess


def preprocess_data(args: Command, argv: Optional[list[str]] = None) -> None:
    """The validation map in the formats asked for (or the ones the configs' backends read) and the calibration list
    in fp32_nchw, in one array per format each; --val_only / --cal_only do one of the two."""
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
        return get_backend(rc.backend_name).preprocessed_format(rc.options())
    except HarnessError:
        return "fp32_nchw"


def _preprocess_calibration(spec, cal_map_path: str, data_dir: str, base: str, args: Command):
    cal_map = read_map(cal_map_path, need_labels=False)
    try:
        return preprocess(spec, cal_map, data_dir, base, formats=["fp32_nchw"], overwrite=bool(args.overwrite),
                          verify=bool(args.verify))
    except StorageError:
        raise                       # a full or read-only disk is no fault of the list: its own words stand
    except HarnessError as e:
        raise HarnessError(f"Calibration list {cal_map_path}: {e} The calibration list must be complete (pass "
                           "--calib_data_map for another list, --data_dir for its images, or --val_only to skip "
                           "it).") from None
