"""The run layer: which system this is, the validated RunConfigs of a command, model and engine paths, and running
one scenario through LoadGen (`run_scenario`), in its own process where a command runs several (`run_isolated`).

actions.py maps `--action` names to functions here and in prepare.py; harness/submission/ builds on this module.
"""
from __future__ import annotations

import argparse
import json
import os
import pickle
import sys
import tempfile
from dataclasses import dataclass
from typing import Any, Callable, Optional

from . import BENCHMARK
from . import config as configs
from . import runconfig
from .backends import get_backend
from .backends.base import BuildRequest
from .engines import check_engine_current, engine_dir, engine_name, model_identity
from .errors import HarnessError
from .interrupt import RunInterrupted
from .runconfig import RunConfig
from .systems import detect_system_id


# ---------------------------------------------------------------------------------------------------------------
# Context
def system_id(args: argparse.Namespace) -> str:
    return args.system_name or detect_system_id(args.backend)


def run_configs(args: argparse.Namespace, system: Optional[str] = None,
                scenarios: Optional[list[str]] = None) -> list[RunConfig]:
    """Every (config_ver, scenario) the command asks for, each a validated RunConfig, grouped by config_ver in the
    order given. All are built before anything runs, so a bad value anywhere stops the command before it writes."""
    system = system or system_id(args)
    scenarios = list(scenarios or args.scenarios)
    vers = {s: configs.config_vers(s, system, args.config_ver, getattr(args, "config_dir", None)) for s in scenarios}
    order = list(dict.fromkeys(v for s in scenarios for v in vers[s]))
    return [runconfig.build(args, s, system, v) for v in order for s in scenarios if v in vers[s]]


def run_config(args: argparse.Namespace, scenario: str, system: Optional[str] = None,
               config_ver: Optional[str] = None) -> RunConfig:
    """One scenario's RunConfig (the first config_ver of --config_ver unless one is named)."""
    system = system or system_id(args)
    ver = config_ver or configs.config_vers(scenario, system, args.config_ver, getattr(args, "config_dir", None))[0]
    return runconfig.build(args, scenario, system, ver)


def model_spec(rc: RunConfig):
    from resnet50.models import get_model
    return get_model(rc.model)


def model_path(rc: RunConfig, spec) -> str:
    return rc.paths.model_path or spec.default_path


def engine_path(rc: RunConfig, spec, backend) -> str:
    """The engine of this config; a --model_path other than the registry's file adds its short digest."""
    return os.path.join(engine_dir(rc.system_id, rc.scenario.name),
                        engine_name(model_identity(spec, rc.paths.model_path), rc.scenario.name, backend.device_kind, rc.batch_size, rc.precision,
                                    rc.config_ver, backend.engine_suffix))


def preprocessed_dir(rc: RunConfig) -> str:
    from resnet50.preprocessing import default_preprocessed_dir
    return rc.paths.preprocessed_data_dir or default_preprocessed_dir()


# ---------------------------------------------------------------------------------------------------------------
# One scenario
@dataclass(frozen=True)
class ScenarioJob:
    """Everything a run of one scenario needs: picklable, so that it can run in a process of its own."""
    rc: RunConfig
    run_root: str
    command: str                      # the command line, recorded in summary.json
    audit: Any = None                 # a harness.submission.rules.AuditTest: a compliance run


def run_scenario(job: ScenarioJob) -> dict[str, Any]:
    """One scenario through LoadGen; writes <run root>/<system>/resnet50/<Scenario>[/<TEST0X>]/summary.json and
    returns that summary."""
    from resnet50.imagenet import read_map
    from resnet50.preprocessing import load_preprocessed
    from .loadgen_run import evaluate_accuracy, run_loadgen, scenario_dir
    from .run_limits import target_warning
    from .submission.runs import run_fingerprint
    from .sut import QSL, make_sut

    rc, audit = job.rc, job.audit
    settings = rc.settings()
    scenario = rc.scenario.name
    test_mode = "PerformanceOnly" if audit is not None else rc.loadgen.test_mode
    spec = model_spec(rc)
    backend = get_backend(rc.backend_name)
    backend.require()
    engine = engine_path(rc, spec, backend)
    check_engine_current(engine, backend, settings, spec, rc.paths.model_path)   # built from this model, calibration
    image_map = read_map(rc.paths.map_path)
    data = load_preprocessed(spec, image_map, preprocessed_dir(rc), backend.preprocessed_format(settings),
                             verify=rc.verify)
    if data.skipped:
        print(f"[run_harness] WARNING: {data.path} lacks {len(data.skipped)} image(s) of {image_map.path} "
              f"(preprocessed with --allow_missing; listed in the summary): {', '.join(list(data.skipped)[:5])}")
    if not backend.info.reads_model and not os.path.exists(engine):   # built at run time (the null backend)
        backend.build(BuildRequest("", engine, rc.precision, [1], spec.input_shape, settings))
    if backend.device_kind == "gpu":   # one runner per GPU (a runner may run several streams: its concurrency)
        runners = [backend.load(engine, d, settings) for d in backend.device_ids(settings)]
    else:
        runners = [backend.load(engine, None, settings) for _ in range(rc.workers)]
    qsl = QSL(data.array, rc.loadgen.performance_sample_count or runconfig.DEFAULT_PERFORMANCE_SAMPLE_COUNT, runners)
    sut = make_sut(settings.get("sut") or "auto", qsl, runners, rc.batch_size, spec.output_offset,
                   rc.batch_timeout_s)
    out_dir = scenario_dir(job.run_root, rc.system_id, scenario)
    if audit is not None:  # a compliance run (harness/submission/audit.py): its own folder, PerformanceOnly
        out_dir = os.path.join(out_dir, audit.name)
    warning = test_mode != "AccuracyOnly" and target_warning(settings, scenario, os.path.dirname(job.run_root),
                                                             exclude=job.run_root)
    if warning:
        print(warning, file=sys.stderr)
    print(f"[run_harness] {scenario} {test_mode}: {spec.key} on {backend.name} ({rc.precision}, "
          f"batch {sut.batch_size}, {len(runners)} worker(s), {sut.kind} SUT), config_ver {rc.config_ver}, {qsl.total} samples, "
          f"logs in {out_dir}")
    summary = run_loadgen(rc.scenario, test_mode, settings, qsl, sut, out_dir, rc.verbose, audit)
    summary["test_mode"] = test_mode
    summary["settings"] = {k: v for k, v in settings.items() if not isinstance(v, dict)}
    summary["engine"] = engine
    summary["dataset"] = {"array": data.path, "map": image_map.path, "samples": qsl.total,
                          "map_images": len(image_map.files), "skipped": data.skipped}
    summary["fingerprint"] = run_fingerprint(settings, spec, backend, engine, image_map, qsl.total, sut.batch_size)
    summary["command"] = job.command
    if audit is not None:
        summary["audit"] = {"test": audit.name, "config": audit.config}
    if test_mode in ("AccuracyOnly", "SubmissionRun"):
        if data.labels is None:
            raise HarnessError(f"{image_map.path} has no labels; accuracy needs a `<file> <label>` map.")
        summary["accuracy"] = evaluate_accuracy(os.path.join(out_dir, "mlperf_log_accuracy.json"), data.labels,
                                                spec.fp32_top1, spec.key, out_dir)
    with open(os.path.join(out_dir, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    return summary


# ---------------------------------------------------------------------------------------------------------------
# A job in a process of its own
def run_isolated(function: Callable[[Any], Any], job: Any) -> Any:
    """`function(job)` in a fresh Python process, its result back here: a job in, a result out (both pickled).

    LoadGen reads its mlperf.conf once per process, and a second FromConfig in one process marks the log as not valid
    for submission: every scenario of a multi-scenario command runs this way. The child runs in its own process
    group (harness/interrupt.py run_child): Ctrl-C reaches this process, which passes it on, waits for the child to
    mark its run, and raises RunInterrupted. A HarnessError in the child (printed there) comes back as a HarnessError.
    """
    from .interrupt import run_child
    code_dir = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with tempfile.TemporaryDirectory(prefix="mlperf-job-") as tmp:
        job_path, result_path = os.path.join(tmp, "job.pickle"), os.path.join(tmp, "result.pickle")
        with open(job_path, "wb") as f:
            pickle.dump((function, job), f)
        rc = run_child([sys.executable, "-c", "import sys; sys.path.insert(0, sys.argv[1]); "
                        "from harness.run import job_main; sys.exit(job_main(sys.argv[2], sys.argv[3]))",
                        code_dir, job_path, result_path])
        try:
            with open(result_path, "rb") as f:
                status, value = pickle.load(f)
        except (OSError, EOFError, pickle.UnpicklingError):
            raise HarnessError(f"The process running {getattr(function, '__name__', 'the job')} ended with exit "
                               f"code {rc} and no result (see the messages above).") from None
    if status == "ok":
        return value
    raise HarnessError(value)


def job_main(job_path: str, result_path: str) -> int:
    """The child side of run_isolated: run the pickled job, pickle the outcome, exit as code/main.py would."""
    from .interrupt import install_process_handlers
    install_process_handlers()
    with open(job_path, "rb") as f:
        function, job = pickle.load(f)
    try:
        outcome, code = ("ok", function(job)), 0
    except HarnessError as e:
        print(f"ERROR: {e}", file=sys.stderr)
        outcome, code = ("error", str(e)), getattr(e, "exit_code", 2)
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        outcome, code = ("error", "Interrupted."), 130
    with open(result_path, "wb") as f:
        pickle.dump(outcome, f)
    return code


# ---------------------------------------------------------------------------------------------------------------
# Actions
def run_harness(args: argparse.Namespace, argv: Optional[list[str]] = None) -> int:
    """Every (config_ver, scenario) asked for: one run root per config_ver (build/logs/<timestamp>[-<config_ver>]),
    each scenario in its own process when there are several. Exit 3 (after every run) when an accuracy run missed
    its target."""
    from .exit_codes import raise_if_accuracy_failed
    from .loadgen_run import new_run_root
    from .run_limits import remove_if_empty
    rcs = run_configs(args)
    command = "code/main.py " + " ".join(argv if argv is not None else sys.argv[1:])
    several_vers = len({rc.config_ver for rc in rcs}) > 1
    failed = []
    everything: dict[str, Any] = {}
    roots = []
    for ver in dict.fromkeys(rc.config_ver for rc in rcs):
        group = [rc for rc in rcs if rc.config_ver == ver]
        run_root = new_run_root(args.log_dir, suffix=ver if several_vers else None)
        roots.append(run_root)
        results: dict[str, Any] = {}
        try:
            for rc in group:
                job = ScenarioJob(rc, run_root, command)
                if len(rcs) == 1:
                    results[rc.scenario.name] = run_scenario(job)
                    continue
                try:
                    results[rc.scenario.name] = run_isolated(run_scenario, job)
                except RunInterrupted:
                    raise
                except HarnessError:
                    failed.append(f"{rc.scenario.name} ({ver})" if several_vers else rc.scenario.name)
            write_harness_summary(run_root, rcs[0].system_id, results)
            from .report import render_after_run
            render_after_run(run_root)
        finally:
            remove_if_empty(run_root)   # a run refused before it wrote anything leaves no empty folder
        everything.update({(f"{s} ({ver})" if several_vers else s): r for s, r in results.items()})
    if failed:
        raise HarnessError(f"Scenario(s) {', '.join(failed)} failed (see the messages above); the others' logs are "
                           f"under {', '.join(roots)}.")
    raise_if_accuracy_failed(everything, ", ".join(roots))
    return 0


def summary_line(scenario_name: str, r: dict[str, Any]) -> str:
    from .scenarios import get
    sc = get(scenario_name)
    if r.get("test_mode") == "AccuracyOnly":
        line = f"{scenario_name:<13} {'accuracy run':<21}"
    else:
        metric = r.get("metric")
        line = f"{scenario_name:<13} {str(r.get('result_validity')):<8} {metric}={r.get(metric)}"
        if sc.checker_key != sc.summary_source:     # the checker reads another figure: show it, as LoadGen names it
            line += f" ({sc.summary_source}); checker: {sc.checker_key}={sc.shown(r.get(sc.checker_key))}"
    if r.get("ended_at_max_duration"):
        line += f"  (ended at max_duration {r['ended_at_max_duration']} ms)"
    skipped = (r.get("dataset") or {}).get("skipped")
    if skipped:
        line += f"  ({len(skipped)} image(s) skipped: --allow_missing)"
    if r.get("accuracy"):
        acc = r["accuracy"]
        line += f"  accuracy={acc['top1']:.3f}% ({'PASS' if acc['pass'] else 'FAIL'} vs {acc['target_top1_99pct']}%)"
    return line


def write_harness_summary(run_root: str, system: str, results: dict[str, Any]) -> None:
    path = os.path.join(run_root, "perf_harness_summary.json")
    with open(path, "w") as f:
        json.dump({system: {BENCHMARK: results}}, f, indent=1)
    print(f"\n======== {BENCHMARK} on {system} ========")
    for scenario, r in results.items():
        print(summary_line(scenario, r))
    print(f"Logs: {run_root}\nSummary: {path}")


def run(args: argparse.Namespace, argv: Optional[list[str]] = None) -> int:
    from .prepare import generate_engines
    run_configs(args)                 # every value checked before the first engine is built
    generate_engines(args)
    return run_harness(args, argv)
