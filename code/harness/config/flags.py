"""The one table of command-line flags (RUN_ARGS) and config keys.

Every flag `code/main.py` accepts is listed once: here (the harness's own) or in a backend's options.py (what that
backend reads). Each is a `harness.options.Flag`: name, type, default, help, allowed range, and the config key it
overrides. The argument parser is built from these tables, config files are checked against them (config.py), and
`command_flags.md` is checked against them by a test, so none can drift. Adding a flag or config key is one line.

A default of None means "not given": the per-system config (configs/resnet50/<Scenario>/config.json) then decides,
and only a flag given on the command line overrides the config.
"""
from __future__ import annotations

import argparse
from typing import Any, Optional, Sequence

from harness.graph.formats import FORMATS
from harness.backends import all_options, registered
from harness.graph.calibration_cache import METHODS
from harness.core.errors import HarnessError
from harness.core.options import Flag, parse_bool
from harness.config.command import Command
from harness.config.scenarios import NAMES as SCENARIOS
from harness.config.scenarios import TEST_MODES, TestMode

# FindPeakPerformance: LoadGen's own search for the Server target (code/harness/actions/tune.py, command_flags.md).
PRECISIONS = ("fp32", "fp16", "bf16", "int8")
_bool = parse_bool

CORE_FLAGS: tuple[Flag, ...] = (
    Flag("benchmarks", str, "resnet50", "Comma list of benchmarks; only resnet50 exists."),
    Flag("scenarios", str, "Offline", "Comma list of scenarios: " + ", ".join(SCENARIOS) + "."),
    Flag("test_mode", str, TestMode.PERFORMANCE.value, "LoadGen test mode.", choices=TEST_MODES),
    Flag("config_ver", str, "default", "Config overlays of the system block (its `config_ver` entries): a comma "
         "list, or `all` for default and every overlay; each runs and logs apart."),
    Flag("config_dir", str, None, "Folder of the per-scenario configs, <dir>/<Scenario>/config.json (default "
         "configs/resnet50)."),
    Flag("system_name", str, None, "Force the system id instead of detecting it (e.g. A100-SXM4-40GBx8, CPU)."),
    Flag("backend", str, None, "Inference backend (code/harness/backends/<name>/).", choices=registered(),
         config_key="backend"),
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
    Flag("fast", parse_bool, False, "Short run: min_duration 60 s and Offline min_query_count 1.", switch=True),
    # --- LoadGen settings (user.conf) ---
    Flag("min_duration", int, None, "LoadGen min_duration in ms.", config_key="min_duration", min=0),
    Flag("max_duration", int, None, "LoadGen max_duration in ms: past it the run ends INVALID (0: no limit; default "
         "max(4 x min_duration, min_duration + 600000)).", config_key="max_duration", min=0),
    Flag("min_query_count", int, None, "LoadGen min_query_count.", config_key="min_query_count", min=1),
    Flag("max_query_count", int, None, "LoadGen max_query_count (0: no limit).", config_key="max_query_count", min=0),
    Flag("performance_sample_count", int, None, "Override the QSL performance sample count (mlperf.conf: 1024).",
         config_key="performance_sample_count", min=1),
    Flag("offline_expected_qps", float, None, "Offline expected samples/s.", config_key="offline_expected_qps", gt=0),
    Flag("server_target_qps", float, None, "Server target queries/s.", config_key="server_target_qps", gt=0),
    Flag("single_stream_expected_latency_ns", int, None, "SingleStream expected latency (ns).",
         config_key="single_stream_expected_latency_ns", min=1),
    Flag("multi_stream_expected_latency_ns", int, None, "MultiStream expected latency per query (ns).",
         config_key="multi_stream_expected_latency_ns", min=1),
    Flag("multi_stream_samples_per_query", int, None, "MultiStream samples per query (rules: 8).",
         config_key="multi_stream_samples_per_query", min=1),
    # --- The SUT ---
    Flag("batch_size", int, None, "Inference batch size (SingleStream: always 1; MultiStream: at least "
         "multi_stream_samples_per_query).", config_key="batch_size", min=1),
    Flag("sut", str, None, "SUT: native (C++ queue, batching and completion, built by `make venv`), python, or "
         "auto (native when built; the default).", choices=("auto", "native", "python"), config_key="sut"),
    Flag("workers", int, None, "SUT worker threads (CPU backends).", config_key="workers", min=1),
    Flag("server_batch_timeout_us", int, None, "Server dynamic batching: longest wait for a fuller batch (µs).",
         config_key="server_batch_timeout_us", min=0),
    Flag("server_max_async_queries", int, None, "Server: LoadGen stops issuing when more queries than this are "
         "outstanding (the run is then INVALID); tune sets it on its short probes. 0: no limit.",
         config_key="server_max_async_queries", min=0),
    Flag("server_coalesce_queries", parse_bool, None, "Server: LoadGen's server_coalesce_queries (issue every query "
         "that is due in one IssueQuery call; on by default).", switch=True, config_key="server_coalesce_queries"),
    Flag("verbose", parse_bool, False, "More logging, and LoadGen's summary on stdout.", switch=True),
    Flag("overwrite", parse_bool, False, "preprocess_data / generate_engines: redo even if up to date.", switch=True),
    Flag("verify", parse_bool, False, "Check every row of the preprocessed arrays against the CRC-32s recorded when "
         "they were written (preprocess_data, calibrate, run_harness; otherwise a sample of rows is checked).",
         switch=True),
    # --- Preprocessing, calibration, engines ---
    Flag("allow_missing", parse_bool, False, "preprocess_data: skip missing/unreadable images, recording them.",
         switch=True),
    Flag("formats", str, None, "preprocess_data: comma list of formats for the validation map: "
         + ", ".join(FORMATS) + " (default: fp32_nchw, and the format the config's backend reads). The "
         "calibration list is always fp32_nchw."),
    Flag("val_only", parse_bool, False, "preprocess_data: only the validation map (--map_path).", switch=True),
    Flag("cal_only", parse_bool, False, "preprocess_data: only the calibration list (--calib_data_map).", switch=True),
    Flag("calib_method", str, None, "calibrate: how activation ranges are chosen, with ONNX Runtime's calibrators "
         "(default entropy); TensorRT --implicit_int8 reads that method's cache.", choices=METHODS,
         config_key="calib_method"),
    Flag("force_calibration", parse_bool, False, "calibrate: redo the calibration even if it is up to date.",
         switch=True),
    Flag("onnx_only", parse_bool, False, "generate_engines (tensorrt): write the exact ONNX TensorRT's parser would "
         "get beside where the engine goes, print its path, and stop (no TensorRT needed).", switch=True),
    # --- tune (code/harness/actions/tune.py, harness/tune/) and reports ---
    Flag("tune_probe_ms", int, 10000, "tune: min_duration of each short probe (ms).", min=100),
    Flag("tune_probe_queries", int, 1024, "tune: min_query_count of each Server probe (LoadGen's early stopping "
         "needs about 460 queries with none over the bound, 660 with one).", min=1),
    Flag("tune_confirm_runs", int, 1, "tune: confirming runs of the value found; all must be VALID.", min=1),
    Flag("tune_confirm_ms", int, None, "tune: min_duration of the confirming runs (ms); default the config's, else "
         "LoadGen's (600 s: full length).", min=100),
    Flag("tune_tolerance", float, 0.05, "tune: bisection stops when the bracket is narrower than this fraction; a "
         "failed confirmation lowers the value by it.", gt=0, max=0.5),
    Flag("tune_latency_margin", float, 0.85, "tune: a Server probe counts as VALID for the search only when its "
         "p99 is at most this fraction of the latency bound (a short probe's p99 is lower than a full run's: a "
         "probe at the bound is INVALID half the time at full length); 1 = LoadGen's verdict alone. Confirming "
         "runs are judged by LoadGen alone.", gt=0, max=1),
    Flag("tune_max_probes", int, 12, "tune: most short probes per grid point.", min=1),
    Flag("tune_growth", float, 2.0, "tune: Server bracketing factor: each probe x this (up) or / this (down) until "
         "the ceiling is bracketed (e.g. 1.1 when the start is close, as from Offline).", gt=1, max=10),
    Flag("tune_grid", str, None, "tune: settings to try, each searched in turn, e.g. "
         "\"batch_size=1,2,4;server_batch_timeout_us=0,2000\" (any flag with a config key)."),
    Flag("tune_write", parse_bool, False, "tune: write the values found into configs/resnet50/<Scenario>/config.json "
         "(else only the overlay file under the run folder).", switch=True),
    Flag("tune_config_ver", str, None, "tune: config_ver under which to write the values (default --config_ver; "
         "`default`: the system block itself)."),
    Flag("report", parse_bool, False, "run_harness: write the run's report when it ends.", switch=True),
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
    Flag("dry_run", parse_bool, False, "update_results: stage short or otherwise non-compliant runs, marking the tree "
         "as a dry run that fails check_submission.", switch=True),
    Flag("structure_only", parse_bool, False, "check_submission: fail only on structural problems (files, fields, "
         "hashes, verdicts); report rule and dry-run problems as notes.", switch=True),
    Flag("inference_repo", str, None, "Checkout of mlcommons/inference for the official checker (default "
         "build/inference; `make clone_inference`)."),
)

# The harness's own flags, then every backend's options (backends/<name>/options.py).
FLAGS: tuple[Flag, ...] = CORE_FLAGS + all_options()
# The config schema: every key a config block may set, and the option that types and bounds it.
CONFIG_KEYS: dict[str, Flag] = {f.config_key: f for f in FLAGS if f.config_key}
FLAG_BY_NAME: dict[str, Flag] = {f.name: f for f in FLAGS}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse would print usage and exit 2; we want one clear line.
        raise HarnessError(f"{message}. Every flag is listed in command_flags.md (run `code/main.py --help`).")


def build_parser(flags: Sequence[Flag] = FLAGS) -> argparse.ArgumentParser:
    parser = _Parser(prog="code/main.py", allow_abbrev=False,
                     description="MLPerf Inference ResNet50 harness. Flags: see command_flags.md.")
    for flag in flags:
        if not flag.cli:
            continue
        kwargs: dict[str, Any] = {"default": flag.default, "help": flag.help, "dest": flag.name}
        if flag.switch:
            kwargs.update(nargs="?", const=True, type=parse_bool, metavar="BOOL")
        else:
            kwargs.update(type=flag.type)
            if flag.choices:
                kwargs["choices"] = flag.choices
        parser.add_argument(f"--{flag.name}", **kwargs)
    return parser


def parse_command(argv: Sequence[str], flags: Sequence[Flag] = FLAGS) -> Command:
    """Parse strictly into a frozen Command: unknown flags, stray words, bad values and values out of range raise
    HarnessError. harness/actions/ passes the whole table (its own flags too)."""
    refuse_repeated_flags(argv, flags)
    namespace = build_parser(flags).parse_args(list(argv))
    values = vars(namespace)
    for flag in flags:
        value = values.get(flag.name)
        if flag.cli and value is not None and value != flag.default:
            values[flag.name] = flag.check(value, f"--{flag.name}")
    values["scenarios"] = parse_scenarios(values["scenarios"])
    benchmarks = [b.strip() for b in values["benchmarks"].split(",") if b.strip()]
    if benchmarks != ["resnet50"]:
        raise HarnessError(f"--benchmarks={values['benchmarks']}: this harness runs only resnet50.")
    given = frozenset(f.name for f in flags if flag_given(argv, f.name))
    return Command(values, tuple(argv), given)


def refuse_repeated_flags(argv: Sequence[str], flags: Sequence[Flag] = FLAGS) -> None:
    """A flag given twice is an error naming both values (argparse would keep the last one without a word: two
    `--scenarios` would run only the second list)."""
    for flag in flags:
        given = [w for w in argv if w == f"--{flag.name}" or w.startswith(f"--{flag.name}=")]
        if len(given) > 1:
            hint = " (a comma list runs several)" if flag.name in ("scenarios", "config_ver") else ""
            raise HarnessError(f"--{flag.name} is given {len(given)} times ({', '.join(given)}): only the last "
                               f"would count. Give it once{hint}.")


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


def flag_given(argv: Optional[Sequence[str]], name: str) -> bool:
    """Whether `--name` was given on the command line (as `--name` or `--name=value`)."""
    return any(w == f"--{name}" or w.startswith(f"--{name}=") for w in (argv or []))


def overrides(args: Command) -> dict[str, Any]:
    """The config keys that flags given on the command line override (flags left at None are not given)."""
    out = {}
    for flag in FLAGS:
        if flag.config_key and getattr(args, flag.name) is not None:
            out[flag.config_key] = getattr(args, flag.name)
    return out


def markdown_table(flags: Sequence[Flag] = FLAGS) -> str:
    """The flag table as command_flags.md shows it."""
    lines = ["| flag | type | default | allowed | help |", "| --- | --- | --- | --- | --- |"]
    for flag in flags:
        default = "(config)" if flag.default is None and flag.config_key else ("" if flag.default is None else flag.default)
        allowed = "" if flag.name == "action" else flag.allowed
        name = f"`--{flag.name}`" if flag.cli else f"`{flag.config_key}` (config only)"
        lines.append(f"| {name} | {flag.type_name} | {default} | {allowed} | {flag.help} |")
    return "\n".join(lines)
