"""Auditor's tools: `generate_conf_files` (every user.conf, without running) and `info` (what this machine would run).

    make generate_conf_files                                   every system block x every scenario
    make generate_conf_files RUN_ARGS="--system_name=A10x2 --scenarios=Offline,Server"
    make info [RUN_ARGS="--system_name=... --scenarios=... --config_ver=..."]

generate_conf_files writes measurements/<system>/resnet50/<Scenario>/user.conf, the file run_harness writes and hands
to LoadGen (loadgen_run.user_conf_lines), from the configs as resolved for that system, scenario and --config_ver,
with any flags given. A system with no block in a scenario's config file is skipped and named.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
from importlib import metadata
from typing import Optional

from . import REPO_ROOT, BENCHMARK
from .errors import HarnessError
from .flags import SCENARIOS

PACKAGES = ("mlcommons-loadgen", "numpy", "onnx", "onnxruntime", "onnxruntime-gpu", "torch", "tensorrt",
            "cuda-python", "opencv-python-headless", "pillow", "matplotlib", "PyYAML", "pytest")


def _given(argv: Optional[list[str]], name: str) -> bool:
    return any(w == f"--{name}" or w.startswith(f"--{name}=") for w in (argv or []))


def config_systems() -> list[str]:
    """Every system block of every scenario's config file, in file order."""
    from . import config as configs
    seen: dict[str, None] = {}
    for scenario in SCENARIOS:
        path = configs.config_path(scenario)
        if os.path.exists(path):
            for name in configs.load_config_file(path):
                if name != "default":
                    seen[name] = None
    return list(seen)


def _map_size(path: str) -> int:
    try:
        with open(path) as f:
            return sum(1 for line in f if line.strip())
    except OSError:
        return 0


def generate_conf_files(args: argparse.Namespace, argv: Optional[list[str]] = None) -> int:
    from .run import run_config
    from .loadgen_run import measurements_dir, user_conf_lines
    systems = [args.system_name] if args.system_name else config_systems()
    scenarios = args.scenarios if _given(argv, "scenarios") else list(SCENARIOS)
    written, skipped = [], []
    for system in systems:
        for scenario in scenarios:
            try:
                rc = run_config(args, scenario, system)
            except HarnessError as e:
                if "has no block for it" in str(e) or "Unknown system" in str(e):
                    skipped.append(f"{system} {scenario}")
                    continue
                raise
            lines = user_conf_lines(scenario, rc.settings(), _map_size(rc.paths.map_path))
            folder = measurements_dir(system, scenario)
            os.makedirs(folder, exist_ok=True)
            path = os.path.join(folder, "user.conf")
            with open(path, "w") as f:
                f.write("\n".join(lines) + "\n")
            written.append(path)
            print(f"[generate_conf_files] {os.path.relpath(path, REPO_ROOT)}")
    if skipped:
        print(f"[generate_conf_files] no config block (skipped): {', '.join(skipped)}")
    if not written:
        raise HarnessError("generate_conf_files wrote nothing: no config block for "
                           f"{', '.join(systems)} in {', '.join(scenarios)}.")
    print(f"[generate_conf_files] {len(written)} user.conf file(s) under measurements/ (LoadGen reads mlperf.conf "
          "first, then these).")
    return 0


def _version(name: str) -> Optional[str]:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def info(args: argparse.Namespace, argv: Optional[list[str]] = None) -> int:
    from .run import engine_path, model_spec, run_config
    from .backends import get_backend
    from .systems import _cpu_model, _nvidia_gpu_names, detect_system_id
    from .submission.official import checker_command, checkout_version
    detected = detect_system_id(args.backend)
    system = args.system_name or detected
    print(f"== system\ndetected system id: {detected}" + (f" (using --system_name={system})" if args.system_name
                                                            else ""))
    gpus = _nvidia_gpu_names()
    print(f"CPU: {_cpu_model()}, {os.cpu_count()} logical core(s); GPUs: {', '.join(gpus) if gpus else 'none'}")
    print(f"OS: {platform.platform()}; Python {sys.version.split()[0]} ({sys.executable})")
    print("\n== config resolved for it (configs/resnet50/<Scenario>/config.json)")
    scenarios = args.scenarios if _given(argv, "scenarios") else list(SCENARIOS)
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
    from resnet50.imagenet import default_data_dir
    from resnet50.preprocessing import default_preprocessed_dir
    repo = os.path.abspath(args.inference_repo or os.path.join(REPO_ROOT, "build", "inference"))
    for label, path in (("raw images", args.data_dir or default_data_dir()),
                        ("preprocessed data", args.preprocessed_data_dir or default_preprocessed_dir()),
                        ("logs", args.log_dir or os.path.join(REPO_ROOT, "build", "logs")),
                        ("mlcommons/inference checkout", repo)):
        state = "present" if os.path.exists(path) else "missing"
        if label.startswith("mlcommons") and os.path.exists(path):
            state = (f"checker {'found' if checker_command(path) else 'NOT found'}, loadgen/VERSION.txt "
                     f"{checkout_version(path) or '?'}")
        print(f"{label}: {path} ({state})")
    print(f"benchmark: {BENCHMARK}")
    return 0
