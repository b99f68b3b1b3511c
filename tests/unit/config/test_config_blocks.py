import json

import pytest

from harness.config import files as config, systems
from harness.core.errors import HarnessError


@pytest.fixture
def cfg_dir(tmp_path):
    data = {
        "default": {"backend": "onnxruntime", "batch_size": 8, "precision": "fp32",
                    "config_ver": {"maxq": {"batch_size": 2}}},
        "CPU": {"batch_size": 16},
        "A100-SXM4-40GBx1": {"batch_size": 2048, "offline_expected_qps": 100,
                             "config_ver": {"int8": {"precision": "int8"}}},
        "A100-SXM4-40GBx8": {"extends": "A100-SXM4-40GBx1", "offline_expected_qps": 800},
        "Loop1": {"extends": "Loop2"}, "Loop2": {"extends": "Loop1"},
    }
    (tmp_path / "Offline").mkdir()
    (tmp_path / "Offline" / "config.json").write_text(json.dumps(data))
    return str(tmp_path)


def test_default_then_extends_then_system_then_config_ver_then_cli(cfg_dir):
    c = config.resolve("Offline", "A100-SXM4-40GBx8", "int8", {"batch_size": 64}, config_dir=cfg_dir)
    assert c["backend"] == "onnxruntime"            # default
    assert c["offline_expected_qps"] == 800         # own block beats its base
    assert c["precision"] == "int8"                 # config_ver inherited from the base block
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


# ------------------------------------------------------------------------------------------------------------
# The schema: unknown keys, refused seed keys, bad values; config_ver lists
def _write(tmp_path, data, scenario="Offline"):
    (tmp_path / scenario).mkdir(exist_ok=True)
    path = tmp_path / scenario / "config.json"
    path.write_text(json.dumps(data))
    return str(path)


def test_unknown_key_names_file_block_key_and_the_closest_known_key(tmp_path):
    path = _write(tmp_path, {"default": {"batch_size": 2}, "CPU": {"ofline_expected_qps": 10}})
    with pytest.raises(HarnessError) as e:
        config.resolve("Offline", "CPU", config_dir=str(tmp_path))
    assert str(e.value).startswith(f"{path}, block 'CPU', key 'ofline_expected_qps': unknown config key; did you "
                                   "mean 'offline_expected_qps'?")


def test_unknown_key_in_a_block_not_used_is_still_an_error(tmp_path):
    _write(tmp_path, {"default": {}, "CPU": {}, "T4x1": {"config_ver": {"x": {"batch_sise": 3}}}})
    with pytest.raises(HarnessError, match=r"block 'T4x1.config_ver.x', key 'batch_sise'.*'batch_size'"):
        config.resolve("Offline", "CPU", config_dir=str(tmp_path))


@pytest.mark.parametrize("key", sorted(config.REFUSED_KEYS))
def test_seed_keys_not_implemented_are_refused_with_the_reason(tmp_path, key):
    _write(tmp_path, {"default": {}, "T4x8": {key: 1}})
    with pytest.raises(HarnessError) as e:
        config.resolve("Offline", "T4x8", config_dir=str(tmp_path))
    assert f"key {key!r}: this harness does not implement it: {config.REFUSED_KEYS[key]}" in str(e.value)


@pytest.mark.parametrize("key,value,needle", [
    ("batch_size", 0, "expected an integer >= 1"),
    ("batch_size", 2.5, "expected an integer >= 1"),
    ("batch_size", "8", "expected an integer >= 1"),
    ("server_target_qps", 0, "expected a number > 0"),
    ("offline_expected_qps", -3, "expected a number > 0"),
    ("min_duration", -1, "expected an integer >= 0"),
    ("use_graphs", "yes please", "expected true or false"),
    ("precision", "int4", "expected one of fp32, fp16, bf16, int8"),
    ("backend", "tensorflow", "expected one of onnxruntime, null, torch, tensorrt"),
    ("graph_batch_sizes", [8, 0], "each >= 1"),
])
def test_bad_config_values_name_file_block_key_value_and_range(tmp_path, key, value, needle):
    path = _write(tmp_path, {"default": {key: value}})
    with pytest.raises(HarnessError) as e:
        config.resolve("Offline", "CPU", config_dir=str(tmp_path))
    assert str(e.value).startswith(f"{path}, block 'default', key {key!r}=")
    assert needle in str(e.value)


def test_config_ver_lists_and_all(tmp_path):
    _write(tmp_path, {"default": {"config_ver": {"maxq": {"batch_size": 2}}},
                      "A": {"config_ver": {"high_accuracy": {"precision": "fp16"}}}, "B": {"extends": "A"}})
    d = str(tmp_path)
    assert config.config_vers("Offline", "B", "default,high_accuracy", d) == ["default", "high_accuracy"]
    assert config.config_vers("Offline", "B", "all", d) == ["default", "maxq", "high_accuracy"]
    assert config.config_vers("Offline", "B", "default", d) == ["default"]
    with pytest.raises(HarnessError, match="give it alone"):
        config.config_vers("Offline", "B", "all,maxq", d)
    assert config.resolve("Offline", "B", "high_accuracy", config_dir=d)["precision"] == "fp16"


def test_every_repo_config_key_is_in_the_schema():
    for scenario in ("Offline", "Server", "SingleStream", "MultiStream"):
        config.check_file(config.load_config_file(config.config_path(scenario)), config.config_path(scenario))
