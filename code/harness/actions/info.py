"""Auditor's tools: `generate_conf_files` (every user.conf, without running) and `info` (what this machine would run).

    make generate_conf_files                                   every system block x every scenario
    make generate_conf_files RUN_ARGS="--system_name=A10x2 --scenarios=Offline,Server"
    make info [RUN_ARGS="--system_name=... --scenarios=... --config_ver=..."]

generate_conf_files writes measurements/<system>/resnet50/<Scenario>/user.conf, the file run_harness writes and hands
to LoadGen (loadgen_run.user_conf_lines), from the configs as resolved for that system, scenario and --config_ver,
with any flags given. A system with no block in a scenario's config file is skipped and named.
"""
from __future__ import annotations

import os
import platform
import sys
from importlib import metadata
from typing import Optional

from harness.config.command import Command
from harness.core.paths import BENCHMARK, INFERENCE_REPO_DIR, LOGS_DIR, REPO_ROOT
from harness.core.errors import HarnessError
from harness.config.flags import SCENARIOS, flag_given
from harness.artifacts.engines import engine_path
from harness.config.context import model_spec, run_config, system_id
from harness.backends import get_backend
from harness.config.systems import _cpu_model, _nvidia_gpu_names, detect_system_id
from harness.submission.official import checker_command, checkout_version
from resnet50.imagenet import default_data_dir
from resnet50.preprocessing import default_preprocessed_dir

PACKAGES = ("mlcommons-loadgen", "numpy", "onnx", "onnxruntime", "onnxruntime-gpu", "torch", "tensorrt",
            "cuda-python", "opencv-python-headless", "pillow", "matplotlib", "PyYAML", "pytest")


def _version(name: str) -> Optional[str]:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def info(args: Command, argv: Optional[list[str]] = None) -> int:
    detected = detect_system_id(args.backend)
    system = system_id(args) if args.system_name else detected
    print(f"== system\ndetected system id: {detected}" + (f" (using --system_name={system})" if args.system_name
                                                            else ""))
    gpus = _nvidia_gpu_names()
    print(f"CPU: {_cpu_model()}, {os.cpu_count()} logical core(s); GPUs: {', '.join(gpus) if gpus else 'none'}")
    print(f"OS: {platform.platform()}; Python {sys.version.split()[0]} ({sys.executable})")
    print("\n== config resolved for it (configs/resnet50/<Scenario>/config.json)")
    scenarios = args.scenarios if flag_given(argv, "scenarios") else list(SCENARIOS)
    for scenario in scenarios:
        try:
            rc = run_config(args, scenario, system)
        except HarnessError as e:
            print(f"{scenario}: {e}")
            continue
        cfg = rc.settings()
        shown = {k: v for k, v in cfg.items() if not isinstance(v, dict) and k not in ("scenario", "system_id")}
        print(f"{scenario} (block {cfg.get('config_block')}, config_ver {cfg.get('config_ver')}):")
        print("  " + ", ".join(f"{k}={v}" for k, v in shown.items()))
        try:
            backend = get_backend(cfg["backend"])
            engine = engine_path(rc, model_spec(rc), backend)
            print(f"  engine: {os.path.relpath(engine, REPO_ROOT)}")
        except HarnessError as e:
            print(f"  engine: (backend {cfg.get('backend')} not usable here: {e})")
    print("\n== installed versions")
    for name in PACKAGES:
        version = _version(name)
        if version:
            print(f"{name}=={version}")
    missing = [n for n in PACKAGES if not _version(n)]
    print(f"(not installed: {', '.join(missing)})")
    print("\n== paths")
    repo = os.path.abspath(args.inference_repo or INFERENCE_REPO_DIR)
    for label, path in (("raw images", args.data_dir or default_data_dir()),
                        ("preprocessed data", args.preprocessed_data_dir or default_preprocessed_dir()),
                        ("logs", args.log_dir or LOGS_DIR),
                        ("mlcommons/inference checkout", repo)):
        state = "present" if os.path.exists(path) else "missing"
        if label.startswith("mlcommons") and os.path.exists(path):
            state = (f"checker {'found' if checker_command(path) else 'NOT found'}, loadgen/VERSION.txt "
                     f"{checkout_version(path) or '?'}")
        print(f"{label}: {path} ({state})")
    print(f"benchmark: {BENCHMARK}")
    return 0
