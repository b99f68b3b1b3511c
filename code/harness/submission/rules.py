"""What each MLPerf Inference round requires of a ResNet50 submission: the one place rule values live.

Where each value comes from (mlcommons/inference, read at the commit that set loadgen/VERSION.txt to 6.0.17):
- seeds, required scenarios, accuracy target, dataset size, performance sample count, Server latency bound, which
  compliance tests apply, the result and compliance paths of each round:
  tools/submission/submission_checker/constants.py (MODEL_CONFIG["v6.1"|"v6.0"|"v5.1"|"v5.0"], *_PATH tables,
  SYSTEM_DESC_* and SYSTEM_IMP_REQUIRED_FILES, REQUIRED_* file lists, MAX_ACCURACY_LOG_SIZE, TEST_DURATION_MS,
  OFFLINE_MIN_SPQ_SINCE_V4) and its checks/ (performance, accuracy, compliance, system, measurements);
- v4.1 (the last round with TEST05) from tools/submission/submission_checker.py at tag v4.1;
- LoadGen defaults (min_duration 600 s, MultiStream 8 samples per query, Offline 24,576 samples, Server 15 ms):
  loadgen/mlperf.conf, which mlcommons-loadgen 6.0.17 builds in;
- the audit configs and pass criteria: compliance/TEST01/{README.md,resnet50/audit.config},
  compliance/TEST04/{README.md,audit.config}, compliance/nvidia/TEST05/{README.md,audit.config} at tag v4.1;
- truncation: tools/submission/truncate_accuracy_log.py and tools/submission/README.md.

Which round matches LoadGen 6.0.17: its built-in mlperf.conf carries the seeds that the checker lists for v6.1
(2085463073848966840 / 2747215439041700203 / 16159082839903944936); v6.0's seeds differ, so the v6.0 checker would
reject every log this LoadGen writes. `detect_round()` makes that comparison with the installed LoadGen, so the
default follows the LoadGen in use. For ResNet50, v6.0 and v6.1 differ only in the seeds.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Optional

from harness.core.errors import HarnessError
from resnet50.models import get_model
from harness.config.scenarios import SCENARIOS, SUBMISSION_ORDER, get as get_scenario

BENCHMARK_DIR = "resnet50"               # results/<system>/resnet50/<Scenario>; the checker maps it to "resnet"
MODEL_KEY_CLOSED = "resnet50"            # the closed division runs the reference ResNet50-v1.5
ACCURACY_REFERENCE = get_model(MODEL_KEY_CLOSED).fp32_top1   # 76.46: the checker's ("acc", 76.46 * 0.99)
ACCURACY_TARGET = round(ACCURACY_REFERENCE * 0.99, 4)
DATASET_SIZE = 50000
PERFORMANCE_SAMPLE_COUNT = 1024
MIN_DURATION_MS = 600000
OFFLINE_MIN_SAMPLES_PER_QUERY = SCENARIOS["Offline"].rule_min_samples_per_query   # closed division only
MULTISTREAM_SAMPLES_PER_QUERY = SCENARIOS["MultiStream"].rule_samples_per_query
SERVER_TARGET_LATENCY_NS = SCENARIOS["Server"].rule_max_target_latency_ns
MAX_ACCURACY_LOG_BYTES = 10 * 1024       # a truncated mlperf_log_accuracy.json must not be larger
TRUNCATE_KEEP_BYTES = 4096               # keep this much from the start and from the end
TRUNCATE_SEPARATOR = "\n\n...\n\n"
CATEGORIES = ("edge", "datacenter", "datacenter,edge")
VALID_STATUS = ("available", "preview", "rdi")
SCENARIO_ORDER = SUBMISSION_ORDER

# Metric of each scenario in mlperf_log_detail.txt, as the results and the compliance checks read it (harness/
# scenarios.py: checker_key, unit).
RESULT_KEY = {s.name: s.checker_key for s in SCENARIOS.values()}
UNITS = {s.name: s.unit for s in SCENARIOS.values()}

SYSTEM_REQUIRED_FIELDS = (
    "division", "submitter", "status", "system_name", "number_of_nodes", "host_processor_model_name",
    "host_processors_per_node", "host_processor_core_count", "host_memory_capacity", "host_storage_capacity",
    "host_storage_type", "accelerators_per_node", "accelerator_model_name", "accelerator_memory_capacity",
    "framework", "operating_system", "system_type", "other_software_stack", "host_processor_frequency",
    "host_processor_caches", "host_memory_configuration", "host_processor_interconnect", "host_networking",
    "host_networking_topology", "accelerator_frequency", "accelerator_host_interconnect", "accelerator_interconnect",
    "accelerator_interconnect_topology", "accelerator_memory_configuration", "accelerator_on-chip_memories",
    "cooling", "hw_notes", "sw_notes", "host_network_card_count", "system_type_detail",
)
# Fields that must hold a non-empty value.
SYSTEM_MEANINGFUL_FIELDS = (
    "division", "submitter", "system_type", "status", "system_name", "number_of_nodes", "host_processor_model_name",
    "host_processors_per_node", "host_processor_core_count", "host_memory_capacity", "host_memory_configuration",
    "host_storage_capacity", "host_storage_type", "host_networking", "host_network_card_count",
    "host_networking_topology", "accelerators_per_node", "accelerator_model_name", "accelerator_memory_capacity",
    "accelerator_host_interconnect", "accelerator_memory_configuration", "accelerator_interconnect", "cooling",
    "framework", "operating_system", "other_software_stack",
)
MEASUREMENTS_REQUIRED_FIELDS = ("input_data_types", "retraining", "starting_weights_filename", "weight_data_types",
                                "weight_transformations")
SCENARIO_FILES = ("README.md", "user.conf")                       # beside measurements.json (v6) / the json (v5)
ACCURACY_FILES = ("mlperf_log_summary.txt", "mlperf_log_detail.txt", "accuracy.txt", "mlperf_log_accuracy.json")
PERFORMANCE_FILES = ("mlperf_log_summary.txt", "mlperf_log_detail.txt")
TEST01_ACCURACY_FILES = ("mlperf_log_accuracy.json", "accuracy.txt", "baseline_accuracy.txt",
                         "compliance_accuracy.txt")


@dataclass(frozen=True)
class AuditTest:
    name: str
    purpose: str
    config: str                      # audit.config text
    compares_accuracy: bool          # TEST01: the logged responses against the accuracy run
    performance_rule: str            # "within" (two-sided), "not_faster" (TEST04), "not_slower" (TEST05)
    tolerance: float                 # relative tolerance of the performance comparison
    short_latency_tolerance: float = 0.20   # SingleStream <= 0.2 ms or MultiStream <= 1.6 ms reference latency
    sets_test05: bool = False        # LoadGen 6 reads `test05` only from its built-in mlperf.conf: set it directly


_HEADER = ("# Written by code/main.py --action=run_audit_harness into the run directory and removed after the run.\n"
           "# mode: 0 = submission, 1 = accuracy, 2 = performance, 3 = find peak performance.\n")
AUDIT_TESTS = {
    "TEST01": AuditTest(
        "TEST01", "verify accuracy in performance mode",
        _HEADER + "*.*.mode = 2\n*.*.accuracy_log_rng_seed = 720381539243781796\n"
                  "*.*.accuracy_log_sampling_target = 4096\n",
        compares_accuracy=True, performance_rule="within", tolerance=0.10),
    "TEST04": AuditTest(
        "TEST04", "verify the SUT does not cache results of repeated samples",
        _HEADER + "".join(f"*.{s}.mode = 2\n*.{s}.performance_issue_unique = 0\n*.{s}.performance_issue_same = 1\n"
                          f"*.{s}.performance_issue_same_index = 3\n"
                          for s in ("MultiStream", "Offline", "SingleStream", "Server")),
        compares_accuracy=False, performance_rule="not_faster", tolerance=0.10),
    "TEST05": AuditTest(
        "TEST05", "verify the SUT does not favour the official RNG seeds",
        _HEADER + "*.*.mode = 2\n*.*.test05 = 1\n",
        compares_accuracy=False, performance_rule="not_slower", tolerance=0.05, sets_test05=True),
}


@dataclass(frozen=True)
class Round:
    name: str
    layout: str                        # "v6": compliance and measurements.json under results/; "v5": separate trees
    seeds: tuple[int, int, int]        # qsl, sample_index, schedule
    audit_tests: tuple[str, ...]
    required: dict = field(default_factory=dict)   # category -> scenarios
    test05_seeds: Optional[tuple[int, int, int]] = None
    stageable: bool = True

    @property
    def code_dir(self) -> str:
        return "src" if self.layout == "v6" else "code"


_EDGE = ("SingleStream", "MultiStream", "Offline")
_DC_EDGE = ("SingleStream", "MultiStream", "Offline", "Server")
ROUNDS = {r.name: r for r in (
    Round("v6.1", "v6", (2085463073848966840, 2747215439041700203, 16159082839903944936), ("TEST01", "TEST04"),
          {"edge": _EDGE, "datacenter,edge": _DC_EDGE}),
    Round("v6.0", "v6", (2465351861681999779, 14276810075590677512, 3936089224930324775), ("TEST01", "TEST04"),
          {"edge": _EDGE, "datacenter,edge": _DC_EDGE}),
    Round("v5.1", "v5", (1780908523862526354, 14771362308971278857, 18209322760996052031), ("TEST01", "TEST04"),
          {"edge": _EDGE, "datacenter,edge": _DC_EDGE}),
    Round("v5.0", "v5", (6023615788873153749, 15036839855038426416, 9933818062894767841), ("TEST01", "TEST04"),
          {"edge": _EDGE, "datacenter": ("Server", "Offline"), "datacenter,edge": _DC_EDGE}),
    # v4.1 is here for its audit tests (TEST05); its layout also needed an mlperf.conf copy, which LoadGen 6 no
    # longer ships as a file, so the harness does not stage v4.1 trees.
    Round("v4.1", "v5", (3066443479025735752, 10688027786191513374, 14962580496156340209),
          ("TEST01", "TEST04", "TEST05"),
          {"edge": _EDGE, "datacenter": ("Server", "Offline"), "datacenter,edge": _DC_EDGE},
          test05_seeds=(16799458546791641818, 5453809927556429288, 5435552105434836064), stageable=False),
)}


_BUILTIN_SCRIPT = """
import json, os, sys, tempfile
import mlperf_loadgen as lg
fd, path = tempfile.mkstemp(suffix=".conf")
os.close(fd)
s = lg.TestSettings()
s.FromConfig(path, sys.argv[1], sys.argv[2])
os.unlink(path)
print(json.dumps({k: getattr(s, k) for k in dir(s) if not k.startswith("_") and
                  isinstance(getattr(s, k), (int, float, bool))}))
"""
_builtin_cache: dict[str, dict] = {}


def loadgen_builtin(scenario: str = "Offline") -> dict:
    """The installed LoadGen's settings from its built-in mlperf.conf alone (an empty user.conf).

    Read in a child process: LoadGen loads its built-in mlperf.conf only on the first FromConfig of a process,
    and a second one marks that process's runs "not valid for official submission"."""
    import json
    import subprocess
    import sys
    if scenario not in _builtin_cache:
        proc = subprocess.run([sys.executable, "-c", _BUILTIN_SCRIPT, BENCHMARK_DIR, scenario], capture_output=True,
                              text=True)
        if proc.returncode != 0:
            raise HarnessError("Could not read the installed LoadGen's built-in settings (is `mlcommons-loadgen` "
                               f"installed? `make venv`): {proc.stderr.strip().splitlines()[-1:]}")
        _builtin_cache[scenario] = json.loads(proc.stdout)
    return _builtin_cache[scenario]


def detect_round() -> str:
    """The round whose seeds the installed LoadGen's built-in mlperf.conf carries."""
    s = loadgen_builtin()
    seeds = (int(s["qsl_rng_seed"]), int(s["sample_index_rng_seed"]), int(s["schedule_rng_seed"]))
    for r in ROUNDS.values():
        if r.seeds == seeds:
            return r.name
    raise HarnessError(f"The installed LoadGen's seeds {seeds} match no round this harness knows "
                       f"({', '.join(ROUNDS)}); pass --round explicitly.")


def get_round(name: Optional[str], for_staging: bool = False) -> Round:
    name = name or detect_round()
    if name not in ROUNDS:
        raise HarnessError(f"--round / --audit_version {name!r}: unknown round; known: {', '.join(ROUNDS)}.")
    r = ROUNDS[name]
    if for_staging and not r.stageable:
        raise HarnessError(f"Round {name} cannot be staged by this harness (its layout needs a copy of mlperf.conf, "
                           "which LoadGen 6 builds in); use it only as --audit_version for its audit tests.")
    return r


def required_scenarios(r: Round, category: str) -> tuple[str, ...]:
    if category not in CATEGORIES:
        raise HarnessError(f"--category={category}: expected one of {', '.join(CATEGORIES)}.")
    if category not in r.required:
        raise HarnessError(f"ResNet50 is not part of the {category} suite in {r.name} (the round's checker lists "
                           f"it only for {' and '.join(sorted(r.required))}); use --category=edge or "
                           f"--category=datacenter,edge.")
    return r.required[category]


def audit_tests_for(version: Round, requested: Optional[str]) -> list[str]:
    if not requested:
        return list(version.audit_tests)
    out = []
    for word in (w.strip().upper() for w in requested.split(",") if w.strip()):
        if word not in AUDIT_TESTS:
            raise HarnessError(f"--audit_test: unknown test {word!r}; known: {', '.join(AUDIT_TESTS)}.")
        if word not in version.audit_tests:
            raise HarnessError(f"--audit_test={word}: round {version.name} has no {word} for ResNet50 (it requires "
                               f"{', '.join(version.audit_tests)}). TEST05 was dropped after v4.1: pass "
                               f"--audit_version=v4.1 to run it.")
        out.append(word)
    return list(dict.fromkeys(out))


def describe_rule(rule: Optional[str], tolerance: Optional[float]) -> str:
    tol = f"{tolerance or 0:.0%}"
    return {"within": f"must be within {tol} of the reference", "not_faster": f"must not be over {tol} faster",
            "not_slower": f"must not be over {tol} slower"}.get(rule or "", f"rule {rule} {tol}")


def result_tolerance(test: AuditTest, scenario: str, reference_latency_ns: Optional[float]) -> float:
    """Short latencies are noisy: the compliance READMEs relax the tolerance to 20% for SingleStream at or below
    0.2 ms and MultiStream at or below 1.6 ms (the reference run's latency)."""
    short = get_scenario(scenario).short_latency_ns
    if reference_latency_ns is not None and short is not None and reference_latency_ns <= short:
        return test.short_latency_tolerance
    return test.tolerance


# ---------------------------------------------------------------------------------------------------------------
# Layout: paths inside <results_dir>/<division>/<submitter>/
def scenario_dir(r: Round, system: str, scenario: str) -> str:
    return os.path.join("results", system, BENCHMARK_DIR, scenario)


def compliance_dir(r: Round, system: str, scenario: str) -> str:
    if r.layout == "v6":
        return scenario_dir(r, system, scenario)
    return os.path.join("compliance", system, BENCHMARK_DIR, scenario)


def measurements_dir(r: Round, system: str, scenario: str) -> str:
    if r.layout == "v6":
        return scenario_dir(r, system, scenario)
    return os.path.join("measurements", system, BENCHMARK_DIR, scenario)


def measurements_json(r: Round, system: str, scenario: str) -> str:
    name = "measurements.json" if r.layout == "v6" else f"{system}_{scenario}.json"
    return os.path.join(measurements_dir(r, system, scenario), name)


# ---------------------------------------------------------------------------------------------------------------
# Rule checks on LoadGen logs (staging refuses these unless --dry_run; check_submission reports them as RULE)
def _int(value) -> Optional[int]:
    try:
        return None if value is None else int(value)
    except (TypeError, ValueError):
        return None


def performance_rule_problems(detail, scenario: str, division: str, r: Round, audit: Optional[str] = None) -> list[str]:
    """Where a performance (or audit) run's effective settings fall short of the round's rules."""
    v = detail.get
    p = []
    duration = _int(v("effective_min_duration_ms"))
    if duration is None or duration < MIN_DURATION_MS:
        p.append(f"min_duration {duration} ms is below the rules' {MIN_DURATION_MS} ms")
    count = _int(v("effective_performance_sample_count"))
    if count is None or count < PERFORMANCE_SAMPLE_COUNT:
        p.append(f"performance sample count {count} is below the rules' {PERFORMANCE_SAMPLE_COUNT}")
    if audit != "TEST05":  # TEST05 runs with other seeds on purpose
        seeds = tuple(_int(v(k)) for k in ("effective_qsl_rng_seed", "effective_sample_index_rng_seed",
                                            "effective_schedule_rng_seed"))
        if seeds != r.seeds:
            p.append(f"LoadGen seeds {seeds} are not {r.name}'s {r.seeds} (a LoadGen of another round, or seeds "
                     "overridden in user.conf)")
    spq = _int(v("effective_samples_per_query"))
    sc = get_scenario(scenario)
    if sc.rule_min_samples_per_query is not None:
        if division == "closed" and (spq or 0) < sc.rule_min_samples_per_query:
            p.append(f"{sc.name} query of {spq} samples is below the rules' {sc.rule_min_samples_per_query}")
        if (_int(v("effective_min_query_count")) or 0) < 1:
            p.append(f"{sc.name} min_query_count is below 1")
    if sc.rule_samples_per_query is not None and spq != sc.rule_samples_per_query:
        p.append(f"{sc.name} uses {spq} samples per query; the rules fix {sc.rule_samples_per_query}")
    if sc.early_stopping and v("early_stopping_met") is not True:
        p.append("the early-stopping condition was not met (too few queries)")
    if sc.rule_max_target_latency_ns is not None:
        bound = _int(v("effective_target_latency_ns"))
        if bound is None or bound > sc.rule_max_target_latency_ns:
            p.append(f"{sc.name} latency bound {bound} ns is above the rules' {sc.rule_max_target_latency_ns} ns")
    return p


def accuracy_rule_problems(detail, top1: Optional[float], model_key: Optional[str], division: str) -> list[str]:
    p = []
    total = _int(detail.get("qsl_reported_total_count"))
    if total != DATASET_SIZE:
        p.append(f"the accuracy run covers a dataset of {total} images; the rules require all {DATASET_SIZE} of the "
                 "ImageNet 2012 validation set")
    if division == "closed":
        if model_key is not None and model_key != MODEL_KEY_CLOSED:
            p.append(f"model {model_key!r} is not the closed division's reference ResNet50-v1.5 ({MODEL_KEY_CLOSED!r});"
                     " results of other networks belong in the open division")
        if top1 is None or top1 < ACCURACY_TARGET:
            p.append(f"top-1 {top1}% is below the closed-division target {ACCURACY_TARGET}% (99% of "
                     f"{ACCURACY_REFERENCE}%)")
    return p
