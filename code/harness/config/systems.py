"""Which system is this? NVIDIA GPUs by name and count, otherwise the CPU model and core count.

System ids are the keys of the config files: `A100-SXM4-40GBx8`, `A10x2`, `T4x1`, `H200x1`, ... for GPUs, and
`CPU-<model>-<N>c` for CPUs (served by the `CPU` block of each config unless a block of that exact id exists).
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections import Counter
from typing import Optional

from harness.core.errors import HarnessError
from harness.core.names import sanitize_name
from harness.backends import backend_info

CPU_PREFIX = "CPU-"

# Known GPU names, longest match first: (substring of the nvidia-smi name, short id used in system ids).
_GPU_NAMES = (
    ("A100-SXM4-80GB", "A100-SXM4-80GB"),
    ("A100-SXM4-40GB", "A100-SXM4-40GB"),
    ("A100-SXM-80GB", "A100-SXM-80GB"),
    ("A100-PCIE-80GB", "A100-PCIe-80GB"),
    ("A100-PCIE-40GB", "A100-PCIe"),
    ("H100 80GB HBM3", "H100-SXM-80GB"),
    ("H100 PCIE", "H100-PCIe-80GB"),
    ("H200", "H200"),
    ("A10", "A10"),
    ("A30", "A30"),
    ("T4", "T4"),
    ("L4", "L4"),
    ("L40S", "L40S"),
)


def gpu_short_name(smi_name: str) -> str:
    """'NVIDIA A100-SXM4-40GB' -> 'A100-SXM4-40GB'; 'Tesla T4' -> 'T4'; unknown names are sanitised."""
    upper = smi_name.upper()
    for needle, short in sorted(_GPU_NAMES, key=lambda item: -len(item[0])):
        if re.search(r"(^|[\s-])" + re.escape(needle.upper()) + r"($|[\s-])", upper):
            return short
    cleaned = re.sub(r"^(NVIDIA|TESLA)\s+", "", smi_name.strip(), flags=re.I)
    return re.sub(r"[^A-Za-z0-9.]+", "-", cleaned).strip("-")


def gpu_system_id(smi_names: list[str]) -> str:
    """System id from the list of GPU names nvidia-smi reports (one per GPU)."""
    counts = Counter(gpu_short_name(n) for n in smi_names if n.strip())
    if len(counts) != 1:
        raise HarnessError(f"This machine mixes GPU models ({dict(counts)}); pass --system_name and --devices.")
    (name, count), = counts.items()
    return f"{name}x{count}"


def cpu_system_id(model_name: str, cores: int) -> str:
    cleaned = re.sub(r"\((R|TM|tm|r)\)", "", model_name)
    cleaned = re.sub(r"@.*$", "", cleaned)
    cleaned = re.sub(r"(\s+(CPU|Processor))+\s*$", "", cleaned.strip())
    cleaned = re.sub(r"[^A-Za-z0-9]+", "_", cleaned).strip("_") or "unknown"
    return f"{CPU_PREFIX}{cleaned}-{cores}c"


def _nvidia_gpu_names() -> list[str]:
    try:
        import pynvml  # nvidia-ml-py, when installed
        pynvml.nvmlInit()
        try:
            names = []
            for i in range(pynvml.nvmlDeviceGetCount()):
                name = pynvml.nvmlDeviceGetName(pynvml.nvmlDeviceGetHandleByIndex(i))
                names.append(name.decode() if isinstance(name, bytes) else name)
            return names
        finally:
            pynvml.nvmlShutdown()
    except Exception:
        pass
    smi = shutil.which("nvidia-smi")
    if not smi:
        return []
    try:
        out = subprocess.run([smi, "--query-gpu=name", "--format=csv,noheader"], capture_output=True, text=True,
                             timeout=30, check=True).stdout
    except (subprocess.SubprocessError, OSError):
        return []
    return [line.strip() for line in out.splitlines() if line.strip()]


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform
    return platform.processor() or platform.machine()


def detect_system_id(backend: Optional[str] = None) -> str:
    """GPU id when NVIDIA GPUs are visible and the backend runs on GPUs (or is not chosen yet); else the CPU id.
    Sanitised to the safe-name pattern (core/names.py): it becomes folder and file names."""
    if backend is None or backend_info(backend).device_kind == "gpu":
        names = _nvidia_gpu_names()
        if names:
            return sanitize_name(gpu_system_id(names), "GPU")
    return sanitize_name(cpu_system_id(_cpu_model(), os.cpu_count() or 1), "CPU")


def is_cpu_system(system_id: str) -> bool:
    return system_id == "CPU" or system_id.startswith(CPU_PREFIX)
