"""One scenario of a RunConfig through LoadGen (`run_scenario`): the backend and its engine, the preprocessed
array, the QSL and SUT, the run (harness/loadgen/run.py), then summary.json with the dataset, fingerprint and
accuracy. A ScenarioJob is picklable, so that harness/core/isolation.py can run it in a process of its own; the
actions (harness/actions/) and harness/submission/ build on this module.
"""
from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from typing import Any

from harness.config import runconfig
from harness.backends import get_backend
from harness.backends.base import BuildRequest
from harness.artifacts.engines import check_engine_current
from harness.core.errors import HarnessError
from harness.core.storage import storage_errors
from harness.config.runconfig import RunConfig
from harness.config.scenarios import TestMode
from harness.config.context import model_spec, preprocessed_dir
from harness.config.systems import detect_system_id
from harness.artifacts.engines import engine_path
from resnet50.imagenet import read_map
from resnet50.preprocessing import load_preprocessed
from harness.loadgen.run import evaluate_accuracy, run_loadgen
from harness.core.paths import scenario_dir
from harness.loadgen.limits import target_warning
from harness.artifacts.fingerprints import run_fingerprint
from harness.loadgen.sut import QSL, make_sut


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

    rc, audit = job.rc, job.audit
    settings = rc.settings()
    scenario = rc.scenario.name
    test_mode = TestMode.PERFORMANCE.value if audit is not None else rc.loadgen.test_mode
    spec = model_spec(rc)
    backend = get_backend(rc.backend_name)
    backend.require()
    engine = engine_path(rc, spec, backend)
    check_engine_current(engine, backend, settings, spec, rc.paths.model_path)   # built from this model, calibration
    image_map = read_map(rc.paths.map_path)
    data = _load_data(rc, spec, backend, settings, image_map)
    qsl, sut, runners = _make_sut(rc, spec, backend, settings, engine, data)
    out_dir = _out_dir(job, scenario, test_mode, settings)
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
    summary["detected_system"] = detect_system_id(rc.backend_name)   # update_results: staged as this machine?
    if audit is not None:
        summary["audit"] = {"test": audit.name, "config": audit.config}
    if TestMode(test_mode).measures_accuracy:
        if data.labels is None:
            raise HarnessError(f"{image_map.path} has no labels; accuracy needs a `<file> <label>` map.")
        summary["accuracy"] = evaluate_accuracy(os.path.join(out_dir, "mlperf_log_accuracy.json"), data.labels,
                                                spec.fp32_top1, spec.key, out_dir)
    with storage_errors():
        with open(os.path.join(out_dir, "summary.json"), "w") as f:
            json.dump(summary, f, indent=1)
    return summary


def _load_data(rc: RunConfig, spec, backend, settings: dict, image_map):
    """The preprocessed array of the map in the backend's format (verified); images it lacks are warned about."""
    data = load_preprocessed(spec, image_map, preprocessed_dir(rc), backend.preprocessed_format(rc.options()),
                             verify=rc.verify)
    if len(data.array) == 0:
        raise HarnessError(f"{data.path} holds 0 samples: every image of {image_map.path} was skipped "
                           f"({len(data.skipped)} under --allow_missing) or the map lists none, so there is nothing "
                           "to run. Check --data_dir and --map_path, preprocess again, then run.")
    if data.skipped:
        print(f"[run_harness] WARNING: {data.path} lacks {len(data.skipped)} image(s) of {image_map.path} "
              f"(preprocessed with --allow_missing; listed in the summary): {', '.join(list(data.skipped)[:5])}")
    return data


def _make_sut(rc: RunConfig, spec, backend, settings: dict, engine: str, data):
    """The QSL over the array, the backend's runners (one per GPU, or rc.workers on a CPU) and the SUT over them."""
    options = rc.options()
    if not backend.info.reads_model and not os.path.exists(engine):   # built at run time (the null backend)
        backend.build(BuildRequest("", engine, spec.input_shape, options))
    if backend.device_kind == "gpu":   # one runner per GPU (a runner may run several streams: its concurrency)
        runners = [backend.load(engine, d, options) for d in backend.device_ids(options)]
    else:
        runners = [backend.load(engine, None, options) for _ in range(rc.workers)]
    qsl = QSL(data.array, rc.loadgen.performance_sample_count or runconfig.DEFAULT_PERFORMANCE_SAMPLE_COUNT, runners)
    sut = make_sut(settings.get("sut") or "auto", qsl, runners, rc.batch_size, spec.output_offset,
                   rc.batch_timeout_s)
    return qsl, sut, runners


def _out_dir(job: ScenarioJob, scenario: str, test_mode: str, settings: dict) -> str:
    """The scenario's log folder (a compliance run's in a folder of its own); warns when the target looks off
    against earlier runs beside this one."""
    out_dir = scenario_dir(job.run_root, job.rc.system_id, scenario)
    if job.audit is not None:  # a compliance run (harness/submission/audit.py): its own folder, PerformanceOnly
        out_dir = os.path.join(out_dir, job.audit.name)
    warning = TestMode.of(test_mode) is not TestMode.ACCURACY and target_warning(settings, scenario, os.path.dirname(job.run_root),
                                                             exclude=job.run_root)
    if warning:
        print(warning, file=sys.stderr)
    return out_dir
