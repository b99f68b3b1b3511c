import json

import pytest

from harness import config, systems
from harness.errors import HarnessError


@pytest.fixture
def cfg_dir(tmp_path):
    data = {
        "default": {"backend": "onnxruntime", "batch_size": 8, "precision": "fp32",
                    "config_ver": {"maxq": {"batch_size": 2}}},
        "CPU": {"batch_size": 16},
        "A100-SXM4-40GBx1": {"batch_size": 2048, "offline_expected_qps": 100,
                             "config_ver": {"triton": {"use_triton": True}}},
        "A100-SXM4-40GBx8": {"extends": "A100-SXM4-40GBx1", "offline_expected_qps": 800},
        "Loop1": {"extends": "Loop2"}, "Loop2": {"extends": "Loop1"},
    }
    (tmp_path / "Offline").mkdir()
    (tmp_path / "Offline" / "config.json").write_text(json.dumps(data))
    return str(tmp_path)


def test_default_then_extends_then_system_then_config_ver_then_cli(cfg_dir):
    c = config.resolve("Offline", "A100-SXM4-40GBx8", "triton", {"batch_size": 64}, config_dir=cfg_dir)
    assert c["backend"] == "onnxruntime"            # default
    assert c["offline_expected_qps"] == 800         # own block beats its base
    assert c["use_triton"] is True                  # config_ver inherited from the base block
    assert c["batch_size"] == 64                    # the command line wins
    assert "extends" not in c and c["config_block"] == "A100-SXM4-40GBx8"


def test_config_ver_from_default_block(cfg_dir):
    assert config.resolve("Offline", "A100-SXM4-40GBx1", "maxq", config_dir=cfg_dir)["batch_size"] == 2


def test_cpu_ids_fall_back_to_the_cpu_block(cfg_dir):
    c = config.resolve("Offline", "CPU-Intel_Xeon-2c", config_dir=cfg_dir)
    assert c["batch_size"] == 16 and c["config_block"] == "CPU"


def test_unknown_system_says_how_to_add_it(cfg_dir):
    with pytest.raises(HarnessError) as e:
        config.resolve("Offline", "Z100x3", config_dir=cfg_dir)
    msg = str(e.value)
    assert "Unknown system 'Z100x3'" in msg and "extends" in msg and "FAQ.md" in msg and "A100-SXM4-40GBx8" in msg


def test_unknown_config_ver_and_loops(cfg_dir):
    with pytest.raises(HarnessError, match="no such config_ver"):
        config.resolve("Offline", "CPU", "nope", config_dir=cfg_dir)
    with pytest.raises(HarnessError, match="loops"):
        config.resolve("Offline", "Loop1", config_dir=cfg_dir)


def test_repo_configs_resolve_for_every_known_system():
    for scenario in ("Offline", "Server", "SingleStream", "MultiStream"):
        data = config.load_config_file(config.config_path(scenario))
        for system in data:
            if system != "default":
                c = config.resolve(scenario, system)
                assert c["backend"] and c["model"], (scenario, system)


@pytest.mark.parametrize("names,expected", [
    (["NVIDIA A100-SXM4-40GB"] * 8, "A100-SXM4-40GBx8"),
    (["NVIDIA A10", "NVIDIA A10"], "A10x2"),
    (["Tesla T4"], "T4x1"),
    (["NVIDIA H200"], "H200x1"),
    (["NVIDIA H100 80GB HBM3"] * 8, "H100-SXM-80GBx8"),
    (["NVIDIA L40S"], "L40Sx1"),
])
def test_gpu_system_ids(names, expected):
    assert systems.gpu_system_id(names) == expected


def test_cpu_system_id():
    assert systems.cpu_system_id("Intel(R) Xeon(R) Platinum 8269CY CPU @ 2.50GHz", 52) == \
        "CPU-Intel_Xeon_Platinum_8269CY-52c"
    assert systems.is_cpu_system("CPU-Intel_Xeon-2c")
