"""The one table of command-line flags (RUN_ARGS).

Every flag `code/main.py` accepts is listed here once: its name, type, default and help. The argument parser is
built from this table and `command_flags.md` is checked against it by a test, so the two cannot drift.

A default of None means "not given": the per-system config (configs/resnet50/<Scenario>/config.json) then decides,
and only a flag given on the command line overrides the config.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

from harness.formats import FORMATS
from .calibration import METHODS
from .errors import HarnessError

SCENARIOS = ("Offline", "Server", "SingleStream", "MultiStream")
# FindPeakPerformance: LoadGen's own search for the Server target (code/harness/tune.py, command_flags.md).
TEST_MODES = ("PerformanceOnly", "AccuracyOnly", "SubmissionRun", "FindPeakPerformance")
ACTIONS = (
    "download_model", "preprocess_data", "calibrate", "generate_engines", "run_harness", "run",
    # Submission and audit actions go here.
    "run_audit_harness", "update_results", "truncate_results", "summarize_results", "check_submission",
    "tune",
    # Reports and auditor's tools (harness/report.py, harness/tools.py).
    "report", "generate_conf_files", "info",
)
PRECISIONS = ("fp32", "fp16", "bf16", "int8")


def _bool(text: str) -> bool:
    lowered = str(text).strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true/false, got {text!r}")


@dataclass(frozen=True)
class Flag:
    name: str
    type: Callable[[str], Any]
    default: Any
    help: str
    choices: Optional[Sequence[str]] = None
    # True: a switch (`--fast`) that needs no value; `--fast=false` is also accepted.
    switch: bool = False
    # The config key this flag overrides, when it has one.
    config_key: Optional[str] = None

    @property
    def type_name(self) -> str:
        if self.switch:
            return "bool"
        return {str: "str", int: "int", float: "float", _bool: "bool"}.get(self.type, self.type.__name__)


FLAGS: tuple[Flag, ...] = (
    Flag("action", str, None, "What to do: " + ", ".join(ACTIONS) + ".", choices=ACTIONS),
    Flag("benchmarks", str, "resnet50", "Comma list of benchmarks; only resnet50 exists."),
    Flag("scenarios", str, "Offline", "Comma list of scenarios: " + ", ".join(SCENARIOS) + "."),
    Flag("test_mode", str, "PerformanceOnly", "LoadGen test mode.", choices=TEST_MODES),
    Flag("config_ver", str, "default", "Config overlay of the system block (its `config_ver` entries)."),
    Flag("system_name", str, None, "Force the system id instead of detecting it (e.g. A100-SXM4-40GBx8, CPU)."),
    Flag("backend", str, None, "Inference backend: onnxruntime, null, torch, tensorrt.", config_key="backend"),
    Flag("model", str, None, "Model registry key (resnet50, efficientnet-lite0, ...).", config_key="model"),
    Flag("model_path", str, None, "ONNX model file; default build/models/<model>/<file> from the registry."),
    Flag("precision", str, None, "Engine precision.", choices=PRECISIONS, config_key="precision"),
    Flag("data_dir", str, None, "Raw image folder (default $MLPERF_SCRATCH_PATH/data/imagenet or build/data/imagenet)."),
    Flag("map_path", str, None, "Validation map `<file> <label>` (default data_maps/imagenet/val_map.txt).",
         config_key="map_path"),
    Flag("calib_data_map", str, None, "Calibration list (default data_maps/imagenet/cal_map.txt, official option 1).",
         config_key="calib_data_map"),
    Flag("preprocessed_data_dir", str, None, "Base of preprocessed arrays (default build/preprocessed_data)."),
    Flag("log_dir", str, None, "Base folder of run logs (default build/logs); report: run folder(s), a comma list "
         "compares them (default: the newest run folder)."),
    Flag("fast", _bool, False, "Short run: min_duration 60 s and Offline min_query_count 1.", switch=True),
    Flag("min_duration", int, None, "LoadGen min_duration in ms.", config_key="min_duration"),
    Flag("min_query_count", int, None, "LoadGen min_query_count.", config_key="min_query_count"),
    Flag("max_query_count", int, None, "LoadGen max_query_count (0: no limit).", config_key="max_query_count"),
    Flag("max_duration", int, None, "LoadGen max_duration in ms: past it the run ends INVALID (0: no limit; default "
         "max(4 x min_duration, min_duration + 600000)).", config_key="max_duration"),
    Flag("performance_sample_count", int, None, "Override the QSL performance sample count (mlperf.conf: 1024).",
         config_key="performance_sample_count"),
    Flag("batch_size", int, None, "Inference batch size.", config_key="batch_size"),
    Flag("devices", str, None, "Comma list of device ids for GPU backends (default: all).", config_key="devices"),
    Flag("sut", str, None, "SUT: native (C++ queue, batching and completion, built by `make venv`), python, or "
         "auto (native when built; the default).", choices=("auto", "native", "python"), config_key="sut"),
    Flag("workers", int, None, "SUT worker threads (CPU backends).", config_key="workers"),
    Flag("threads", int, None, "Intra-op threads per worker (CPU backends).", config_key="threads"),
    Flag("offline_expected_qps", float, None, "Offline expected samples/s.", config_key="offline_expected_qps"),
    Flag("server_target_qps", float, None, "Server target queries/s.", config_key="server_target_qps"),
    Flag("server_batch_timeout_us", int, None, "Server dynamic batching: longest wait for a fuller batch (µs).",
         config_key="server_batch_timeout_us"),
    Flag("server_coalesce_queries", _bool, None, "Server: LoadGen's server_coalesce_queries (issue every query "
         "that is due in one IssueQuery call; on by default).", switch=True,
         config_key="server_coalesce_queries"),
    Flag("server_max_async_queries", int, None, "Server: LoadGen stops issuing when more queries than this are "
         "outstanding (the run is then INVALID); tune sets it on its short probes. 0: no limit.",
         config_key="server_max_async_queries"),
    Flag("single_stream_expected_latency_ns", int, None, "SingleStream expected latency (ns).",
         config_key="single_stream_expected_latency_ns"),
    Flag("multi_stream_expected_latency_ns", int, None, "MultiStream expected latency per query (ns).",
         config_key="multi_stream_expected_latency_ns"),
    Flag("multi_stream_samples_per_query", int, None, "MultiStream samples per query (rules: 8).",
         config_key="multi_stream_samples_per_query"),
    Flag("verbose", _bool, False, "More logging, and LoadGen's summary on stdout.", switch=True),
    Flag("overwrite", _bool, False, "preprocess_data / generate_engines: redo even if up to date.", switch=True),
    Flag("onnx_only", _bool, False, "generate_engines (tensorrt): write the exact ONNX TensorRT's parser would get "
         "beside where the engine goes, print its path, and stop (no TensorRT needed).", switch=True),
    Flag("verify", _bool, False, "Check every row of the preprocessed arrays against the CRC-32s recorded when they "
         "were written (preprocess_data, calibrate, run_harness; otherwise a sample of rows is checked).", switch=True),
    # --- Preprocessing and calibration ---
    Flag("allow_missing", _bool, False, "preprocess_data: skip missing/unreadable images, recording them.", switch=True),
    Flag("formats", str, None, "preprocess_data: comma list of formats for the validation map: "
         + ", ".join(FORMATS) + " (default: fp32_nchw, and the format the config's backend reads). The "
         "calibration list is always fp32_nchw."),
    Flag("val_only", _bool, False, "preprocess_data: only the validation map (--map_path).", switch=True),
    Flag("cal_only", _bool, False, "preprocess_data: only the calibration list (--calib_data_map).", switch=True),
    Flag("calib_method", str, None, "calibrate: how activation ranges are chosen, with ONNX Runtime's calibrators "
         "(default entropy); TensorRT --implicit_int8 reads that method's cache.", choices=METHODS,
         config_key="calib_method"),
    Flag("force_calibration", _bool, False, "calibrate: redo the calibration even if it is up to date.", switch=True),
    # --- GPU backends (TensorRT, torch) ---
    Flag("gpu_copy_streams", int, None, "GPU backends: copy streams per GPU (TensorRT: one execution context and "
         "optimisation profile each).", config_key="gpu_copy_streams"),
    Flag("gpu_inference_streams", int, None, "GPU backends: inference streams per GPU, shared by the copy streams' "
         "contexts.", config_key="gpu_inference_streams"),
    Flag("use_graphs", _bool, None, "GPU backends: CUDA graphs per batch size.", switch=True, config_key="use_graphs"),
    Flag("start_from_device", _bool, None, "GPU backends: keep the loaded samples in GPU memory.", switch=True,
         config_key="start_from_device"),
    Flag("input_dtype", str, None, "Engine input type (int8 is quantised with the model's input scale).",
         choices=("int8", "fp16", "fp32"), config_key="input_dtype"),
    Flag("input_format", str, None, "Engine input layout (chw4: TensorRT's vectorised int8 layout).",
         choices=("linear", "chw4"), config_key="input_format"),
    Flag("implicit_int8", _bool, None, "TensorRT int8: build from the FP32 model and the calibration cache (implicit "
         "INT8) instead of the calibrated Q/DQ model.", switch=True, config_key="implicit_int8"),
    Flag("calib_cache", str, None, "TensorRT calibration cache for --implicit_int8 (default "
         "build/models/<model>/calibration/entropy.cache).", config_key="calib_cache"),
    Flag("plugins", str, None, "TensorRT: comma list of plugin libraries (.so) loaded before building and running.",
         config_key="plugins"),
    Flag("workspace_size", int, None, "TensorRT builder workspace in bytes (default 1073741824).",
         config_key="workspace_size"),
    Flag("timing_cache", str, None, "TensorRT timing cache file, or `none` (default "
         "build/engines/<system>/timing.cache).", config_key="timing_cache"),
    Flag("null_latency_us", int, None, "null backend: sleep this long per batch, a device of known capacity "
         "(batch size / latency per worker) for soak and runaway tests.", config_key="null_latency_us"),
    Flag("torch_compile", _bool, None, "torch backend: torch.compile in its default mode.", switch=True,
         config_key="torch_compile"),
    # --- Submission and audit ---
    Flag("round", str, None, "MLPerf Inference round whose rules and layout apply: v6.1, v6.0, v5.1, v5.0 (default: "
         "the round whose seeds the installed LoadGen's mlperf.conf carries; v6.1 for LoadGen 6.0.17)."),
    Flag("audit_test", str, None, "run_audit_harness: comma list of TEST01, TEST04, TEST05 (default: the tests the "
         "audit version requires for ResNet50)."),
    Flag("audit_version", str, None, "run_audit_harness: round whose compliance tests to run (default: --round; "
         "v4.1 is the last round with TEST05)."),
    Flag("submitter", str, None, "update_results: submitting organisation (default: `submitter` of "
         "configs/systems/<system>.json)."),
    Flag("division", str, "closed", "update_results: submission division.", choices=("closed", "open")),
    Flag("category", str, "edge", "update_results: system category (ResNet50 is an edge benchmark since v5.1).",
         choices=("edge", "datacenter", "datacenter,edge")),
    Flag("results_dir", str, None, "Staged submission tree (default build/submission)."),
    Flag("dry_run", _bool, False, "update_results: stage short or otherwise non-compliant runs, marking the tree as "
         "a dry run that fails check_submission.", switch=True),
    Flag("structure_only", _bool, False, "check_submission: fail only on structural problems (files, fields, "
         "hashes, verdicts); report rule and dry-run problems as notes.", switch=True),
    Flag("inference_repo", str, None, "Checkout of mlcommons/inference for the official checker (default "
         "build/inference; `make clone_inference`)."),
    # --- tune (code/harness/tune.py) ---
    Flag("tune_probe_ms", int, 10000, "tune: min_duration of each short probe (ms)."),
    Flag("tune_probe_queries", int, 1024, "tune: min_query_count of each Server probe (LoadGen's early stopping "
         "needs about 460 queries with none over the bound, 660 with one)."),
    Flag("tune_confirm_runs", int, 1, "tune: confirming runs of the value found; all must be VALID."),
    Flag("tune_confirm_ms", int, None, "tune: min_duration of the confirming runs (ms); default the config's, else "
         "LoadGen's (600 s: full length)."),
    Flag("tune_tolerance", float, 0.05, "tune: bisection stops when the bracket is narrower than this fraction; a "
         "failed confirmation lowers the value by it."),
    Flag("tune_max_probes", int, 12, "tune: most short probes per grid point."),
    Flag("tune_growth", float, 2.0, "tune: Server bracketing factor: each probe x this (up) or / this (down) until "
         "the ceiling is bracketed (e.g. 1.1 when the start is close, as from Offline)."),
    Flag("tune_grid", str, None, "tune: settings to try, each searched in turn, e.g. "
         "\"batch_size=1,2,4;server_batch_timeout_us=0,2000\" (any flag with a config key)."),
    Flag("tune_write", _bool, False, "tune: write the values found into configs/resnet50/<Scenario>/config.json "
         "(else only the overlay file under the run folder).", switch=True),
    Flag("tune_config_ver", str, None, "tune: config_ver under which to write the values (default --config_ver; "
         "`default`: the system block itself)."),
)

FLAG_BY_NAME = {flag.name: flag for flag in FLAGS}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse would print usage and exit 2; we want one clear line.
        raise HarnessError(f"{message}. Every flag is listed in command_flags.md (run `code/main.py --help`).")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="code/main.py", allow_abbrev=False,
                     description="MLPerf Inference ResNet50 harness. Flags: see command_flags.md.")
    for flag in FLAGS:
        kwargs: dict[str, Any] = {"default": flag.default, "help": flag.help, "dest": flag.name}
        if flag.switch:
            kwargs.update(nargs="?", const=True, type=_bool, metavar="BOOL")
        else:
            kwargs.update(type=flag.type)
            if flag.choices:
                kwargs["choices"] = flag.choices
        parser.add_argument(f"--{flag.name}", **kwargs)
    return parser


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """Parse strictly: unknown flags, stray words and bad values raise HarnessError."""
    args = build_parser().parse_args(list(argv))
    args.scenarios = parse_scenarios(args.scenarios)
    benchmarks = [b.strip() for b in args.benchmarks.split(",") if b.strip()]
    if benchmarks != ["resnet50"]:
        raise HarnessError(f"--benchmarks={args.benchmarks}: this harness runs only resnet50.")
    return args


def parse_scenarios(text: str) -> list[str]:
    by_lower = {s.lower(): s for s in SCENARIOS}
    out = []
    for word in (w.strip() for w in text.split(",")):
        if not word:
            continue
        if word.lower() not in by_lower:
            raise HarnessError(f"--scenarios: unknown scenario {word!r}; expected a comma list of {', '.join(SCENARIOS)}.")
        out.append(by_lower[word.lower()])
    if not out:
        raise HarnessError("--scenarios is empty; expected a comma list of " + ", ".join(SCENARIOS) + ".")
    return list(dict.fromkeys(out))


def overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The config keys that flags given on the command line override (flags left at None are not given)."""
    out = {}
    for flag in FLAGS:
        if flag.config_key and getattr(args, flag.name) is not None:
            out[flag.config_key] = getattr(args, flag.name)
    return out


def markdown_table() -> str:
    """The flag table as command_flags.md shows it."""
    lines = ["| flag | type | default | help |", "| --- | --- | --- | --- |"]
    for flag in FLAGS:
        default = "(config)" if flag.default is None and flag.config_key else ("" if flag.default is None else flag.default)
        text = flag.help + (f" One of: {', '.join(flag.choices)}." if flag.choices and flag.name != "action" else "")
        lines.append(f"| `--{flag.name}` | {flag.type_name} | {default} | {text} |")
    return "\n".join(lines)
