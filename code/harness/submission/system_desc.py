"""systems/<system>.json: every field the checker requires, from detection where possible, else the user's template.

Order (later wins): configs/systems/template.json (placeholders for what cannot be detected) <- detection (CPU,
memory, storage, accelerators, OS, framework and software versions) <- configs/systems/<system>.json (the user's
own values for this system) <- --submitter, --division, --category. Values that still start with "TODO" are
reported by check_submission as not ready.
"""
from __future__ import annotations

import os
import platform
from importlib import metadata
from typing import Any, Optional

from harness.core.paths import REPO_ROOT
from harness.core.errors import HarnessError
from harness.core.storage import read_json
from harness.submission import rules
from harness.backends import backend_info
from harness.core.names import check_safe_name

TEMPLATE_DIR = os.path.join(REPO_ROOT, "configs", "systems")
PLACEHOLDER = "TODO"


def _version(package: str) -> Optional[str]:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _cpuinfo() -> dict[str, Any]:
    info: dict[str, Any] = {"physical_ids": set()}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key, value = key.strip(), value.strip()
                if key == "physical id":
                    info["physical_ids"].add(value)
                elif key in ("model name", "cpu cores", "cpu MHz", "cache size") and key not in info:
                    info[key] = value
    except OSError:
        pass
    return info


def _meminfo_gb() -> Optional[str]:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return f"{int(line.split()[1]) / 1024 / 1024:.0f} GB"
    except OSError:
        pass
    return None


def _os_name() -> str:
    name = platform.system()
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    name = line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return f"{name} (kernel {platform.release()})"


def _gpus() -> list[tuple[str, str]]:
    """(name, memory) per NVIDIA GPU, from nvidia-smi; empty without one."""
    import shutil
    import subprocess
    smi = shutil.which("nvidia-smi")
    if not smi:
        return []
    try:
        out = subprocess.run([smi, "--query-gpu=name,memory.total", "--format=csv,noheader"], capture_output=True,
                             text=True, timeout=30, check=True).stdout
    except (subprocess.SubprocessError, OSError):
        return []
    return [tuple(part.strip() for part in line.split(",", 1)) for line in out.splitlines() if "," in line]


def detect(system: str, backends: set[str]) -> dict[str, Any]:
    """What this machine can tell about itself. Accelerator fields only when a GPU backend produced the runs."""
    cpu = _cpuinfo()
    model = cpu.get("model name") or platform.processor() or platform.machine()
    sockets = max(1, len(cpu["physical_ids"]))
    cores = int(cpu.get("cpu cores") or 0) or max(1, (os.cpu_count() or 1) // sockets)
    out: dict[str, Any] = {
        "number_of_nodes": 1,
        "host_processor_model_name": model,
        "host_processors_per_node": sockets,
        "host_processor_core_count": cores,
        "operating_system": _os_name(),
    }
    if cpu.get("cpu MHz"):
        out["host_processor_frequency"] = f"{float(cpu['cpu MHz']):.0f} MHz"
    if cpu.get("cache size"):
        out["host_processor_caches"] = f"{cpu['cache size']} (last level, /proc/cpuinfo)"
    memory = _meminfo_gb()
    if memory:
        out["host_memory_capacity"] = memory
    try:
        st = os.statvfs(REPO_ROOT)
        out["host_storage_capacity"] = f"{st.f_blocks * st.f_frsize / 1e9:.0f} GB"
    except OSError:
        pass
    infos = {b: backend_info(b) for b in backends}
    gpu_backends = {b for b, info in infos.items() if info.device_kind == "gpu"}
    gpus = _gpus() if gpu_backends else []
    if gpus:
        out.update(accelerators_per_node=len(gpus), accelerator_model_name=gpus[0][0],
                   accelerator_memory_capacity=gpus[0][1])
    elif not gpu_backends:
        out.update({k: "N/A" for k in ("accelerator_model_name", "accelerator_memory_capacity",
                                       "accelerator_host_interconnect", "accelerator_memory_configuration",
                                       "accelerator_interconnect")})
        out["accelerators_per_node"] = "0"   # a string: the checker reads an int 0 as an empty field
    frameworks = []
    for b in sorted(backends):
        info = infos[b]
        if info.framework_package:
            frameworks.append(f"{info.framework} {_version(info.framework_package) or '(version unknown)'}")
        elif info.framework:
            frameworks.append(info.framework)
    if frameworks:
        out["framework"] = ", ".join(frameworks)
    stack = [f"Python {platform.python_version()}"] + [f"{p} {_version(p)}" for p in
                                                      ("mlcommons-loadgen", "numpy") if _version(p)]
    out["other_software_stack"] = ", ".join(stack)
    accel = f"{out.get('accelerators_per_node')}x {out.get('accelerator_model_name')}" if gpus else "CPU only"
    out["system_name"] = f"{system}: {sockets}x {model}, {cores} cores per processor, {accel}"
    return out


def _read(path: str) -> dict[str, Any]:
    data = read_json(path, missing=None)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise HarnessError(f"{path} must be a JSON object of system description fields.")
    return {k: v for k, v in data.items() if k != "comment"}


def user_file(system: str) -> str:
    return os.path.join(TEMPLATE_DIR, f"{system}.json")


def is_placeholder(value: Any) -> bool:
    return isinstance(value, str) and value.strip().upper().startswith(PLACEHOLDER)


def build(system: str, submitter: Optional[str], division: str, category: str, backends: set[str]) -> dict[str, Any]:
    desc: dict[str, Any] = {k: "" for k in rules.SYSTEM_REQUIRED_FIELDS}
    template = _read(os.path.join(TEMPLATE_DIR, "template.json"))
    desc.update(template)
    desc.update(detect(system, backends))
    own = _read(user_file(system))
    desc.update(own)
    desc["submitter"] = submitter or own.get("submitter") or template.get("submitter") or ""
    if not desc["submitter"] or is_placeholder(desc["submitter"]):
        raise HarnessError(f"No submitter: pass --submitter=<organisation> or set \"submitter\" in "
                           f"{os.path.relpath(user_file(system), REPO_ROOT)}.")
    check_safe_name(desc["submitter"], "--submitter" if submitter else f"submitter of {user_file(system)}")
    desc["division"] = division
    desc["system_type"] = category
    return desc
