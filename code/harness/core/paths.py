"""Where things go: the repository root, the benchmark's name and the whole `build/` tree.

    build/models/<model>/...                         models (resnet50/model_files.py)
    build/preprocessed_data/<map>/<format>/           preprocessed arrays (resnet50/preprocessing.py)
    build/engines/<system>/resnet50/<Scenario>/       engines and their records (artifacts/engines.py)
    build/logs/<timestamp>[-<config_ver>]/            run logs (loadgen/scenario.py, actions/)
    build/submission/, build/submission.records/     the staged tree and the harness's record of it
    measurements/<system>/resnet50/<Scenario>/       each run's user.conf
"""
from __future__ import annotations

import os
import time
from typing import Optional

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
BENCHMARK = "resnet50"
BUILD_DIR = os.path.join(REPO_ROOT, "build")
LOGS_DIR = os.path.join(BUILD_DIR, "logs")


def new_run_root(log_base: Optional[str], suffix: Optional[str] = None) -> str:
    """build/logs/<timestamp>[-<suffix>]/ (the suffix: a config_ver, when a command runs several), never reusing an
    existing folder."""
    base = log_base or os.path.join(REPO_ROOT, "build", "logs")
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
    return os.path.join(REPO_ROOT, "measurements", system_id, BENCHMARK, scenario)


def calibration_cache_path(model_key: str, method: str = "entropy", base: Optional[str] = None) -> str:
    """build/models/<model>/calibration/<method>.cache: the TensorRT-format calibration cache
    (`TRT-<version>-EntropyCalibration2` header, then `<tensor>: <hex float32 scale>` lines) for implicit INT8."""
    return os.path.join(base or os.path.join(REPO_ROOT, "build", "models"), model_key, "calibration", f"{method}.cache")


def engine_dir(system_id: str, scenario: str, base: Optional[str] = None) -> str:
    return os.path.join(base or os.path.join(REPO_ROOT, "build", "engines"), system_id, BENCHMARK, scenario)
