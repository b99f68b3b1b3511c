"""The `--action`s of code/main.py."""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, Optional

from . import REPO_ROOT, BENCHMARK, config as configs
from .backends import get_backend
from .backends.base import BuildRequest
from .artifacts import folder_lock
from .calibration import check_calibration_current, quantized_model_path  # noqa: F401 (imported from here too)
from .engines import (build_record, check_engine_current, engine_dir, engine_inputs, engine_name, is_up_to_date,
                      model_identity, remove_record, write_record)
from .errors import HarnessError
from .exit_codes import ACCURACY_BELOW_TARGET, raise_if_accuracy_failed
from .flags import overrides
from .interrupt import run_child
from .run_limits import target_warning
from .systems import detect_system_id

RUN_ROOT_ENV = "MLPERF_HARNESS_RUN_ROOT"   # set by a multi-scenario parent for its per-scenario children


# ---------------------------------------------------------------------------------------------------------------
# Context
def system_id(args: argparse.Namespace) -> str:
    return args.system_name or detect_system_id(args.backend)


def scenario_config(args: argparse.Namespace, scenario: str, system: Optional[str] = None) -> dict[str, Any]:
    cfg = configs.resolve(scenario, system or system_id(args), args.config_ver, overrides(args))
    if args.fast:
        if args.min_duration is None:
            cfg["min_duration"] = 60000
        if scenario == "Offline" and args.min_query_count is None:
            cfg["min_query_count"] = 1
    if scenario == "SingleStream":
        cfg["batch_size"] = 1
    if scenario == "MultiStream" and args.batch_size is None:
        cfg["batch_size"] = max(int(cfg.get("batch_size") or 1), int(cfg.get("multi_stream_samples_per_query") or 8))
    cfg.setdefault("backend", "onnxruntime")
    cfg.setdefault("precision", "fp32")
    cfg.setdefault("verbose", bool(args.verbose))
    return cfg


def model_spec(cfg: dict[str, Any]):
    from resnet50.models import get_model
    return get_model(cfg.get("model"))


def model_path(args: argparse.Namespace, spec) -> str:
    return os.path.abspath(args.model_path) if args.model_path else spec.default_path


def engine_path(cfg: dict[str, Any], spec, backend, model_file: Optional[str] = None) -> str:
    """The engine of this config; `model_file` (--model_path) other than the registry's adds its short digest."""
    return os.path.join(engine_dir(cfg["system_id"], cfg["scenario"]),
                        engine_name(model_identity(spec, model_file), cfg["scenario"], backend.device_kind,
                                    int(cfg.get("batch_size") or 1), cfg["precision"], cfg["config_ver"],
                                    backend.engine_suffix))


def map_path(cfg: dict[str, Any], kind: str = "val") -> str:
    """--map_path (kind "val") or --calib_data_map (kind "cal"), else the config's, else data_maps/imagenet/; relative
    paths are tried from the working directory, then the repo root."""
    from resnet50.imagenet import default_map_path
    path = cfg.get("map_path" if kind == "val" else "calib_data_map") or default_map_path(kind)
    if not os.path.isabs(path) and not os.path.exists(path):
        path = os.path.join(REPO_ROOT, path)
    return path


# ---------------------------------------------------------------------------------------------------------------
# Actions
def download_model(args: argparse.Namespace, argv: Optional[list[str]] = None) -> None:
    from resnet50.model_files import ensure_model
    from resnet50.models import get_model
    ensure_model(get_model(args.model), args.model_path, force=bool(args.overwrite))


def preprocess_data(args: argparse.Namespace, argv: Optional[list[str]] = None) -> None:
    """The validation map in the formats asked for (or the ones the config needs) and the calibration list in
    fp32_nchw, in one array per format each; --val_only / --cal_only do one of the two."""
    from resnet50.imagenet import default_data_dir, read_map
    from resnet50.preprocessing import default_preprocessed_dir, preprocess
    from harness.formats import parse_formats
    if args.val_only and args.cal_only:
        raise HarnessError("--val_only and --cal_only exclude each other; give neither to preprocess both.")
    system = system_id(args)
    cfgs = [scenario_config(args, scenario, system) for scenario in args.scenarios]
    cfg = cfgs[0]
    spec = model_spec(cfg)
    data_dir = args.data_dir or default_data_dir()
    base = args.preprocessed_data_dir or default_preprocessed_dir()
    if args.formats:
        formats = parse_formats(args.formats)
    else:
        formats = list(dict.fromkeys(["fp32_nchw"] + [_backend_format(c) for c in cfgs]))
    summary = {}
    if not args.cal_only:
        result = preprocess(spec, read_map(map_path(cfg)), data_dir, base, formats=formats,
                            allow_missing=bool(args.allow_missing), overwrite=bool(args.overwrite),
                            verify=bool(args.verify))
        summary["val"] = result
    if not args.val_only:
        cal = map_path(cfg, "cal")
        result = _preprocess_calibration(spec, cal, data_dir, base, args)
        summary["cal"] = result
    for kind, result in summary.items():
        if result.skipped:
            print(f"[preprocess_data] {kind}: {len(result.skipped)} image(s) skipped under --allow_missing "
                  f"(in the manifests' `skipped`): {', '.join(list(result.skipped)[:5])}")


def _backend_format(cfg: dict[str, Any]) -> str:
    """The format the config's backend reads (fp32_nchw when that backend cannot be loaded here)."""
    try:
        return get_backend(cfg["backend"]).preprocessed_format(cfg)
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
    from resnet50.preprocessing import default_preprocessed_dir, load_preprocessed
    from .calibration import CalibrationInputs, calibrate as run_calibration, load_checked_model
    cfg = scenario_config(args, args.scenarios[0])
    spec = model_spec(cfg)
    load_checked_model(spec, model_path(args, spec))        # before any image work: a wrong model fails at once
    base = args.preprocessed_data_dir or default_preprocessed_dir()
    cal_path = map_path(cfg, "cal")
    _preprocess_calibration(spec, cal_path, args.data_dir or default_data_dir(), base, args)
    cal_map = read_map(cal_path, need_labels=False)
    data = load_preprocessed(spec, cal_map, base, "fp32_nchw")   # verified in full by preprocess with --verify
    run_calibration(spec, CalibrationInputs(model_path=model_path(args, spec), array=data.array, array_path=data.path,
                                            array_checksum=data.manifest["checksum"], map_path=cal_map.path,
                                            map_md5=cal_map.md5, files=data.files),
                    method=cfg.get("calib_method") or "entropy", force=bool(args.force_calibration))


def generate_engines(args: argparse.Namespace, argv: Optional[list[str]] = None) -> None:
    system = system_id(args)
    for scenario in args.scenarios:
        cfg = scenario_config(args, scenario, system)
        spec = model_spec(cfg)
        backend = get_backend(cfg["backend"])
        onnx_only = bool(getattr(args, "onnx_only", False))
        if onnx_only and not hasattr(backend, "export_onnx"):
            raise HarnessError(f"--onnx_only writes the ONNX handed to TensorRT's parser; backend {backend.name} "
                               "has none (use --backend=tensorrt).")
        if not onnx_only:
            backend.require()
        fp32_path = model_path(args, spec)
        path = engine_path(cfg, spec, backend, args.model_path)    # an error when --model_path does not exist
        inputs = engine_inputs(backend, cfg, spec, fp32_path)
        source = inputs["model"]
        if backend.name != "null" or cfg["precision"] == "int8":   # the null backend reads no FP32 model
            check_build_inputs({k: v for k, v in inputs.items() if k != "calibration_record"}, cfg, spec)
            if cfg["precision"] == "int8":     # never from a stale Q/DQ model or cache
                check_calibration_current(fp32_path, backend.name, inputs, spec.key, bool(cfg.get("calib_cache")))
        with folder_lock(os.path.dirname(path), f"generate_engines {scenario}"):
            if onnx_only:        # the exact graph TensorRT would parse, without TensorRT (issue 12)
                onnx_path, _, _ = backend.export_onnx(BuildRequest(
                    onnx_path=source, engine_path=path, precision=cfg["precision"],
                    batch_sizes=[int(cfg.get("batch_size") or 1)], input_shape=spec.input_shape, settings=cfg))
                print(f"[generate_engines] {scenario}: ONNX for TensorRT's parser written (no engine built): "
                      f"{onnx_path}")
                continue
            record = build_record(inputs, cfg, backend.versions())
            if not args.overwrite and is_up_to_date(path, record):
                print(f"[generate_engines] {scenario}: {path} is up to date.")
                continue
            batch = int(cfg.get("batch_size") or 1)
            remove_record(path)
            backend.build(BuildRequest(onnx_path=source, engine_path=path, precision=cfg["precision"],
                                       batch_sizes=[batch], input_shape=spec.input_shape, settings=cfg))
            write_record(path, record)
        print(f"[generate_engines] {scenario}: built {path}")


def check_build_inputs(inputs: dict[str, str], cfg: dict[str, Any], spec) -> None:
    """Every file an engine is built from exists, or a clear error says how to make it."""
    for name, path in inputs.items():
        if os.path.exists(path):
            continue
        if name == "model" and cfg["precision"] == "int8" and not cfg.get("implicit_int8"):
            raise HarnessError(f"No calibrated INT8 model at {path}; run `make calibrate` first "
                               "(or use --precision=fp32).")
        if name == "model":
            raise HarnessError(f"Model file {path} does not exist; run `make download_model "
                               f"RUN_ARGS=\"--model={spec.key}\"` or pass --model_path.")
        if name == "calibration_cache":
            raise HarnessError(f"No calibration cache at {path}: --implicit_int8 builds from the FP32 model and this "
                               "cache. Run `make calibrate` first, or pass --calib_cache=<file>.")
        raise HarnessError(f"{name} file {path} does not exist (--plugins lists .so files).")


def run_harness(args: argparse.Namespace, argv: list[str]) -> int:
    from .loadgen_run import new_run_root
    from .run_limits import remove_if_empty
    run_root = os.environ.get(RUN_ROOT_ENV) or new_run_root(args.log_dir)
    try:
        return _run_harness(args, argv, run_root)
    finally:
        if not os.environ.get(RUN_ROOT_ENV):
            remove_if_empty(run_root)   # a run refused before it wrote anything leaves no empty folder


def _run_harness(args: argparse.Namespace, argv: list[str], run_root: str) -> int:
    system = system_id(args)
    results: dict[str, Any] = {}
    failed = []
    for scenario in args.scenarios:
        if len(args.scenarios) == 1:
            results[scenario] = run_scenario(args, scenario, system, run_root)
            continue
        # One process per scenario: LoadGen reads mlperf.conf once per process, and a second FromConfig in the
        # same process marks the log as not valid for submission.
        child = [sys.executable, os.path.join(REPO_ROOT, "code", "main.py")] + _replace_scenarios(argv, scenario)
        rc = run_child(child, env=dict(os.environ, **{RUN_ROOT_ENV: run_root}))
        path = os.path.join(run_root, system, BENCHMARK, scenario, "summary.json")
        if rc not in (0, ACCURACY_BELOW_TARGET) or not os.path.exists(path):
            failed.append(scenario)
            continue
        with open(path) as f:
            results[scenario] = json.load(f)
    if not os.environ.get(RUN_ROOT_ENV):
        _write_harness_summary(run_root, system, results)
        from .report import render_after_run
        render_after_run(run_root)
    if failed:
        raise HarnessError(f"Scenario(s) {', '.join(failed)} failed (see the messages above); the others' logs are "
                           f"under {run_root}.")
    raise_if_accuracy_failed(results, run_root)
    return 0


def _replace_scenarios(argv: list[str], scenario: str) -> list[str]:
    out, skip = [], False
    for word in argv:
        if skip:
            skip = False
            continue
        if word == "--scenarios":
            skip = True
            continue
        if word.startswith("--scenarios="):
            continue
        out.append(word)
    return out + [f"--scenarios={scenario}"]


def _write_harness_summary(run_root: str, system: str, results: dict[str, Any]) -> None:
    path = os.path.join(run_root, "perf_harness_summary.json")
    with open(path, "w") as f:
        json.dump({system: {BENCHMARK: results}}, f, indent=1)
    print(f"\n======== {BENCHMARK} on {system} ========")
    for scenario, r in results.items():
        if r.get("test_mode") == "AccuracyOnly":
            line = f"{scenario:<13} {'accuracy run':<21}"
        else:
            metric = r.get("metric")
            line = f"{scenario:<13} {str(r.get('result_validity')):<8} {metric}={r.get(metric)}"
        if r.get("ended_at_max_duration"):
            line += f"  (ended at max_duration {r['ended_at_max_duration']} ms)"
        skipped = (r.get("dataset") or {}).get("skipped")
        if skipped:
            line += f"  ({len(skipped)} image(s) skipped: --allow_missing)"
        if r.get("accuracy"):
            acc = r["accuracy"]
            line += f"  accuracy={acc['top1']:.3f}% ({'PASS' if acc['pass'] else 'FAIL'} vs {acc['target_top1_99pct']}%)"
        print(line)
    print(f"Logs: {run_root}\nSummary: {path}")


def run_scenario(args: argparse.Namespace, scenario: str, system: str, run_root: str,
                 audit=None) -> dict[str, Any]:
    from resnet50.imagenet import read_map
    from resnet50.preprocessing import default_preprocessed_dir, load_preprocessed
    from .loadgen_run import evaluate_accuracy, run_loadgen, scenario_dir
    from .sut import QSL, make_sut

    cfg = scenario_config(args, scenario, system)
    spec = model_spec(cfg)
    backend = get_backend(cfg["backend"])
    backend.require()
    engine = engine_path(cfg, spec, backend, args.model_path)
    check_engine_current(engine, backend, cfg, spec, args.model_path)   # built from this model, calibration, config
    image_map = read_map(map_path(cfg))
    data = load_preprocessed(spec, image_map, args.preprocessed_data_dir or default_preprocessed_dir(),
                             backend.preprocessed_format(cfg), verify=bool(getattr(args, "verify", False)))
    if data.skipped:
        print(f"[run_harness] WARNING: {data.path} lacks {len(data.skipped)} image(s) of {image_map.path} "
              f"(preprocessed with --allow_missing; listed in the summary): {', '.join(list(data.skipped)[:5])}")
    if backend.name == "null" and not os.path.exists(engine):
        backend.build(BuildRequest("", engine, cfg["precision"], [1], spec.input_shape, cfg))
    if backend.device_kind == "gpu":   # one runner per GPU (a runner may run several streams: its concurrency)
        runners = [backend.load(engine, d, cfg) for d in backend.device_ids(cfg)]
    else:
        runners = [backend.load(engine, None, cfg) for _ in range(int(cfg.get("workers") or 1))]
    qsl = QSL(data.array, int(cfg.get("performance_sample_count") or 1024), runners)
    timeout = float(cfg.get("server_batch_timeout_us") or 0) / 1e6 if scenario == "Server" else 0.0
    sut = make_sut(cfg.get("sut") or "auto", qsl, runners, int(cfg.get("batch_size") or 1), spec.output_offset,
                   timeout)
    out_dir = scenario_dir(run_root, system, scenario)
    if audit is not None:  # a compliance run (harness/submission/audit.py): its own folder, PerformanceOnly
        out_dir = os.path.join(out_dir, audit.name)
    warning = args.test_mode != "AccuracyOnly" and target_warning(cfg, scenario, os.path.dirname(run_root),
                                                                  exclude=run_root)
    if warning:
        print(warning, file=sys.stderr)
    print(f"[run_harness] {scenario} {args.test_mode}: {spec.key} on {backend.name} ({cfg['precision']}, "
          f"batch {sut.batch_size}, {len(runners)} worker(s), {sut.kind} SUT), {qsl.total} samples, logs in {out_dir}")
    summary = run_loadgen(scenario, args.test_mode, cfg, qsl, sut, out_dir, bool(args.verbose), audit)
    summary["test_mode"] = args.test_mode
    summary["settings"] = {k: v for k, v in cfg.items() if not isinstance(v, dict)}
    summary["engine"] = engine
    summary["dataset"] = {"array": data.path, "map": image_map.path, "samples": qsl.total,
                          "map_images": len(image_map.files), "skipped": data.skipped}
    from .submission.runs import run_fingerprint
    summary["fingerprint"] = run_fingerprint(cfg, spec, backend, engine, image_map, qsl.total, sut.batch_size)
    summary["command"] = "code/main.py " + " ".join(sys.argv[1:])
    if audit is not None:
        summary["audit"] = {"test": audit.name, "config": audit.config}
    if args.test_mode in ("AccuracyOnly", "SubmissionRun"):
        if data.labels is None:
            raise HarnessError(f"{image_map.path} has no labels; accuracy needs a `<file> <label>` map.")
        summary["accuracy"] = evaluate_accuracy(os.path.join(out_dir, "mlperf_log_accuracy.json"), data.labels,
                                                spec.fp32_top1, spec.key, out_dir)
    with open(os.path.join(out_dir, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    return summary


def run(args: argparse.Namespace, argv: list[str]) -> int:
    generate_engines(args)
    return run_harness(args, argv)


def _module_action(module: str, function: str):
    """Reports and auditor's tools live in harness/report.py and harness/tools.py; imported only when used."""
    def action(args: argparse.Namespace, argv: list[str]) -> int:
        import importlib
        return getattr(importlib.import_module(f"harness.{module}"), function)(args, argv)
    action.__name__ = function
    return action


def _submission_action(module: str, function: str):
    """Submission and audit actions live in harness/submission/; imported only when used."""
    def action(args: argparse.Namespace, argv: list[str]) -> int:
        import importlib
        return getattr(importlib.import_module(f"harness.submission.{module}"), function)(args, argv)
    action.__name__ = function
    return action


def _tune(args: argparse.Namespace, argv: list[str]) -> int:
    """`make tune`: the search lives in harness/tune.py (each probe is a run_harness child process)."""
    from .tune import tune
    return tune(args, argv)


ACTIONS = {
    "download_model": download_model,
    "preprocess_data": preprocess_data,
    "calibrate": calibrate,
    "generate_engines": generate_engines,
    "run_harness": run_harness,
    "run": run,
    # Submission and audit actions go here.
    "run_audit_harness": _submission_action("audit", "run_audit_harness"),
    "update_results": _submission_action("stage", "update_results"),
    "truncate_results": _submission_action("truncate", "truncate_results"),
    "summarize_results": _submission_action("summarize", "summarize_results"),
    "check_submission": _submission_action("check", "check_submission"),
    "tune": _tune,
    # Reports and auditor's tools.
    "report": _module_action("report", "report"),
    "generate_conf_files": _module_action("tools", "generate_conf_files"),
    "info": _module_action("tools", "info"),
}


def dispatch(args: argparse.Namespace, argv: list[str]) -> int:
    if args.action is None:
        raise HarnessError("--action is required: one of " + ", ".join(ACTIONS) + ".")
    return ACTIONS[args.action](args, argv) or 0
