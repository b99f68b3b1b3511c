"""Where things go: the repository root, the benchmark's name and the whole `build/` tree. This is the only module
that joins these folder names; every other module takes its paths from here.

    build/models/<model>/...                         models (model_dir, model_file; resnet50/models.py)
    build/models/<model>/calibration/<method>.cache  TensorRT calibration caches (calibration_cache_path)
    build/data/imagenet/                              raw images when $MLPERF_SCRATCH_PATH is unset (DATA_DIR)
    build/preprocessed_data/<map>/<format>/           preprocessed arrays (PREPROCESSED_DATA_DIR; resnet50/)
    build/engines/<system>/resnet50/<Scenario>/       engines and their records (engine_dir; artifacts/engines.py)
    build/engines/<system>/timing.cache               TensorRT's timing cache (timing_cache_path)
    build/logs/<timestamp>[-<config_ver>]/            run logs (LOGS_DIR, new_run_root; loadgen/scenario.py, actions/)
    build/submission/, build/submission.records/     the staged tree and the harness's record of it (SUBMISSION_DIR)
    build/cache/digests/                              the digest cache (DIGEST_CACHE_DIR; core/storage.py)
    build/inference/                                  a checkout of mlcommons/inference (INFERENCE_REPO_DIR)
    measurements/<system>/resnet50/<Scenario>/       each run's user.conf (measurements_dir)
"""
from __future__ import annotations

import os
import time
from typing import Optional

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
BENCHMARK = "resnet50"
BUILD_DIR = os.path.join(REPO_ROOT, "build")
LOGS_DIR = os.path.join(BUILD_DIR, "logs")
ENGINES_DIR = os.path.join(BUILD_DIR, "engines")
MODELS_DIR = os.path.join(BUILD_DIR, "models")
DATA_DIR = os.path.join(BUILD_DIR, "data", "imagenet")
PREPROCESSED_DATA_DIR = os.path.join(BUILD_DIR, "preprocessed_data")
SUBMISSION_DIR = os.path.join(BUILD_DIR, "submission")
CACHE_DIR = os.path.join(BUILD_DIR, "cache")
DIGEST_CACHE_DIR = os.path.join(CACHE_DIR, "digests")
INFERENCE_REPO_DIR = os.path.join(BUILD_DIR, "inference")
MEASUREMENTS_DIR = os.path.join(REPO_ROOT, "measurements")


def new_run_root(log_base: Optional[str], suffix: Optional[str] = None) -> str:
    """build/logs/<timestamp>[-<suffix>]/ (the suffix: a config_ver, when a command runs several), never reusing an
    existing folder."""
    base = log_base or LOGS_DIR
    stamp = time.strftime("%Y.%m.%d-%H.%M.%S") + (f"-{suffix}" if suffix else "")
    path, n = os.path.join(base, stamp), 1
    while True:
        try:
            os.makedirs(path)
            return path
        except FileExistsError:
            n += 1
            path = os.path.join(base, f"{stamp}-{n}")


def scenario_dir(run_root: str, system_id: str, scenario: str) -> str:
    return os.path.join(run_root, system_id, BENCHMARK, scenario)


def measurements_dir(system_id: str, scenario: str) -> str:
    return os.path.join(MEASUREMENTS_DIR, system_id, BENCHMARK, scenario)


def model_dir(model_key: str) -> str:
    """build/models/<model>/."""
    return os.path.join(MODELS_DIR, model_key)


def model_file(model_key: str, file_name: str) -> str:
    """build/models/<model>/<file>: where the registry's model file lives."""
    return os.path.join(model_dir(model_key), file_name)


def calibration_cache_path(model_key: str, method: str = "entropy", base: Optional[str] = None) -> str:
    """build/models/<model>/calibration/<method>.cache: the TensorRT-format calibration cache
    (`TRT-<version>-EntropyCalibration2` header, then `<tensor>: <hex float32 scale>` lines) for implicit INT8."""
    return os.path.join(base or MODELS_DIR, model_key, "calibration", f"{method}.cache")


def engine_dir(system_id: str, scenario: str, base: Optional[str] = None) -> str:
    return os.path.join(base or ENGINES_DIR, system_id, BENCHMARK, scenario)


def timing_cache_path(system_id: str) -> str:
    """build/engines/<system>/timing.cache: TensorRT's timing cache, shared by a system's engines."""
    return os.path.join(ENGINES_DIR, system_id, "timing.cache")
