"""harness/config/systems.py: system ids from GPU names and CPU models (more cases in tests/unit/config/test_config_blocks.py)."""
import os

import pytest

from harness.config import systems
from harness.core.errors import HarnessError


@pytest.mark.parametrize("name, short", [
    ("NVIDIA A100-SXM4-40GB", "A100-SXM4-40GB"), ("NVIDIA A100-SXM4-80GB", "A100-SXM4-80GB"),
    ("NVIDIA A100-PCIE-40GB", "A100-PCIe"), ("Tesla T4", "T4"), ("NVIDIA H200", "H200"),
    ("NVIDIA H100 80GB HBM3", "H100-SXM-80GB"), ("NVIDIA L40S", "L40S"), ("NVIDIA L4", "L4"),
    ("NVIDIA A10", "A10"), ("NVIDIA RTX 6000 Ada Generation", "RTX-6000-Ada-Generation"),
    ("Tesla V100-SXM2-16GB", "V100-SXM2-16GB"),
])
def test_gpu_short_names(name, short):
    assert systems.gpu_short_name(name) == short


def test_gpu_system_ids_count_the_gpus():
    assert systems.gpu_system_id(["NVIDIA H200"]) == "H200x1"
    assert systems.gpu_system_id(["Tesla T4", "Tesla T4", " "]) == "T4x2"
    with pytest.raises(HarnessError, match=r"^This machine mixes GPU models \(\{'T4': 1, 'L4': 1\}\); pass "
                                           r"--system_name and --devices\.$"):
        systems.gpu_system_id(["Tesla T4", "NVIDIA L4"])
    with pytest.raises(HarnessError, match="mixes GPU models"):
        systems.gpu_system_id([])


def test_cpu_system_ids():
    assert systems.cpu_system_id("Intel(R) Xeon(R) CPU @ 2.20GHz", 2) == "CPU-Intel_Xeon-2c"
    assert systems.cpu_system_id("AMD EPYC 7B13 64-Core Processor", 16) == "CPU-AMD_EPYC_7B13_64_Core-16c"
    assert systems.cpu_system_id("", 1) == "CPU-unknown-1c"


def test_is_cpu_system():
    assert systems.is_cpu_system("CPU") and systems.is_cpu_system("CPU-Intel_Xeon-2c")
    assert not systems.is_cpu_system("T4x1") and not systems.is_cpu_system("CPUx")


def test_a_cpu_backend_gets_this_machines_cpu_id():
    got = systems.detect_system_id("null")
    assert systems.is_cpu_system(got) and got.endswith(f"-{os.cpu_count() or 1}c")
    assert got == systems.cpu_system_id(systems._cpu_model(), os.cpu_count() or 1)
