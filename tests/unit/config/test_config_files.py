"""harness/config/files.py: config layering default -> extends -> system -> config_ver -> flags, and the schema."""
import json
import os

import pytest

from harness.config import files
from harness.core.errors import HarnessError
from harness.core.paths import REPO_ROOT


def _write(tmp_path, data, scenario="Offline"):
    (tmp_path / scenario).mkdir(exist_ok=True)
    path = tmp_path / scenario / "config.json"
    path.write_text(json.dumps(data))
    return str(tmp_path), str(path)


LAYERED = {
    "default": {"batch_size": 8, "precision": "fp32", "workers": 1, "config_ver": {"small": {"batch_size": 1}}},
    "Base": {"batch_size": 16, "offline_expected_qps": 100, "config_ver": {"int8": {"precision": "int8"}}},
    "Mid": {"extends": "Base", "workers": 2},
    "Top": {"extends": "Mid", "offline_expected_qps": 300, "config_ver": {"int8": {"batch_size": 64}}},
    "comment": "ignored",
}


def test_each_layer_wins_over_the_one_before_and_says_where_from(tmp_path):
    folder, path = _write(tmp_path, LAYERED)
    merged, sources = files.resolve_with_sources("Offline", "Top", "int8", {"workers": 4}, config_dir=folder)
    assert merged["precision"] == "fp32"                   # Top's own int8 overlay replaces Base's
    assert merged["batch_size"] == 64 and merged["offline_expected_qps"] == 300 and merged["workers"] == 4
    assert sources["batch_size"] == files.where(path, "Top.config_ver.int8", "batch_size")
    assert sources["offline_expected_qps"] == files.where(path, "Top", "offline_expected_qps")
    assert sources["precision"] == files.where(path, "default", "precision")
    assert sources["workers"] == "--workers"
    assert (merged["system_id"], merged["config_block"], merged["config_ver"], merged["scenario"],
            merged["config_file"]) == ("Top", "Top", "int8", "Offline", path)


def test_base_blocks_and_the_default_block_lend_their_overlays(tmp_path):
    folder, _ = _write(tmp_path, LAYERED)
    mid = files.resolve("Offline", "Mid", "int8", config_dir=folder)
    assert mid["precision"] == "int8" and mid["batch_size"] == 16 and mid["workers"] == 2
    assert files.resolve("Offline", "Top", "small", config_dir=folder)["batch_size"] == 1
    assert files.resolve("Offline", "Top", None, config_dir=folder)["config_ver"] == "default"


def test_none_means_not_set(tmp_path):
    folder, _ = _write(tmp_path, {"default": {"batch_size": 8, "offline_expected_qps": 5}, "CPU": {"batch_size": None}})
    merged = files.resolve("Offline", "CPU-Some_Model-4c", cli={"offline_expected_qps": None}, config_dir=folder)
    assert "batch_size" not in merged and "offline_expected_qps" not in merged
    assert merged["config_block"] == "CPU" and merged["system_id"] == "CPU-Some_Model-4c"


def test_an_unknown_key_names_file_block_and_key_and_the_closest_one(tmp_path):
    _, path = _write(tmp_path, {"default": {}, "CPU": {"config_ver": {"x": {"batch_sise": 4}}}})
    with pytest.raises(HarnessError) as e:
        files.load_config_file(path)
    assert str(e.value) == (f"{path}, block 'CPU.config_ver.x', key 'batch_sise': unknown config key; did you mean "
                            "'batch_size'? Every key is listed in command_flags.md.")


def test_a_key_of_nothing_like_a_known_one_has_no_hint(tmp_path):
    _, path = _write(tmp_path, {"default": {"zzzzqqq": 1}})
    with pytest.raises(HarnessError, match=r"key 'zzzzqqq': unknown config key Every key is listed"):
        files.load_config_file(path)


def test_refused_seed_keys_say_why(tmp_path):
    _, path = _write(tmp_path, {"default": {}, "T4x1": {"gpu_batch_size": 64}})
    with pytest.raises(HarnessError) as e:
        files.load_config_file(path)
    assert str(e.value) == (f"{path}, block 'T4x1', key 'gpu_batch_size': this harness does not implement it: the "
                            "seed's name for the batch size: use `batch_size`.")


def test_a_bad_value_names_where_it_is(tmp_path):
    _, path = _write(tmp_path, {"default": {"batch_size": 0}})
    with pytest.raises(HarnessError, match=r"block 'default', key 'batch_size'=0: expected an integer >= 1"):
        files.load_config_file(path)


@pytest.mark.parametrize("data, needle", [
    ({"default": {}, "CPU": [1]}, "block 'CPU' must be a JSON object."),
    ({"default": {}, "CPU": {"extends": 3}}, "block 'CPU', key 'extends': expected the name of another block."),
    ({"default": {}, "CPU": {"config_ver": ["int8"]}}, "key 'config_ver': expected an object of named overlays"),
    ({"default": {}, "CPU": {"config_ver": {"int8": 1}}}, "key 'config_ver': expected an object of named overlays"),
    ({"default": {}, "CPU": {"config_ver": {"all": {}}}}, "overlay name 'all' is reserved"),
    ({"default": {}, "CPU": {"config_ver": {"default": {}}}}, "overlay name 'default' is reserved"),
    ({"default": {}, "CPU": {"config_ver": {"a,b": {}}}}, "overlay name 'a,b' is reserved"),
    ({"default": {}, "CPU": {"config_ver": {"x": {"extends": "T4"}}}}, "overlay 'x' cannot hold 'extends'."),
    ({"default": {}, "CPU": {"config_ver": {"x": {"config_ver": {}}}}}, "overlay 'x' cannot hold 'config_ver'."),
])
def test_file_shape_errors(tmp_path, data, needle):
    _, path = _write(tmp_path, data)
    with pytest.raises(HarnessError) as e:
        files.load_config_file(path)
    assert str(e.value).startswith(path) and needle in str(e.value)


def test_load_config_file_errors(tmp_path):
    missing = str(tmp_path / "Nope" / "config.json")
    with pytest.raises(HarnessError, match=r"does not exist; every scenario needs one \(see FAQ\.md\)\.$"):
        files.load_config_file(missing)
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(HarnessError, match=r"bad\.json is not valid JSON: "):
        files.load_config_file(str(tmp_path / "bad.json"))
    for text in ("[]", '{"CPU": {}}', '{"default": 1}'):
        (tmp_path / "shape.json").write_text(text)
        with pytest.raises(HarnessError, match=r"must be a JSON object with a `default` block\.$"):
            files.load_config_file(str(tmp_path / "shape.json"))


def test_extends_of_a_missing_block(tmp_path):
    folder, path = _write(tmp_path, {"default": {}, "A": {"extends": "Gone"}})
    with pytest.raises(HarnessError, match=r"^.*config\.json: block 'A' extends 'Gone', which is not in the file\.$"):
        files.resolve("Offline", "A", config_dir=folder)
    folder, path = _write(tmp_path, {"default": {}, "A": {"extends": "B"}, "B": {"extends": "A"}})
    with pytest.raises(HarnessError, match=r"`extends` loops: A -> B -> A\.$"):
        files.resolve("Offline", "A", config_dir=folder)


def test_a_missing_config_ver_lists_what_there_is(tmp_path):
    folder, path = _write(tmp_path, LAYERED)
    with pytest.raises(HarnessError) as e:
        files.resolve("Offline", "Mid", "maxq", config_dir=folder)
    assert str(e.value) == f"--config_ver=maxq: block 'Mid' of {path} has no such config_ver (available: int8, small)."


def test_unknown_system_names_the_known_ones(tmp_path):
    folder, path = _write(tmp_path, LAYERED)
    with pytest.raises(HarnessError) as e:
        files.resolve("Offline", "Z9x1", config_dir=folder)
    assert str(e.value).startswith(f"Unknown system 'Z9x1': {path} has no block for it (known: Base, Mid, Top, "
                                   "comment).")
    with pytest.raises(HarnessError, match="Unknown system 'default'"):
        files.system_block_name(LAYERED, "default", path)


def test_config_vers(tmp_path):
    folder, _ = _write(tmp_path, LAYERED)
    assert files.config_vers("Offline", "Top", "", folder) == ["default"]
    assert files.config_vers("Offline", "Top", "int8, default,int8", folder) == ["int8", "default"]
    assert files.config_vers("Offline", "Top", "all", folder) == ["default", "small", "int8"]
    with pytest.raises(HarnessError, match=r"^--config_ver=all,int8: `all` already means every config_ver; give it "
                                           r"alone\.$"):
        files.config_vers("Offline", "Top", "all,int8", folder)


def test_where_shows_repo_paths_relative():
    inside = os.path.join(REPO_ROOT, "configs", "resnet50", "Offline", "config.json")
    assert files.where(inside, "CPU", "batch_size") == "configs/resnet50/Offline/config.json, block 'CPU', key " \
                                                       "'batch_size'"
    assert files.where("/elsewhere/c.json", "CPU", "x") == "/elsewhere/c.json, block 'CPU', key 'x'"
    assert files.config_path("Server") == os.path.join(REPO_ROOT, "configs", "resnet50", "Server", "config.json")
    assert files.config_path("Server", "/c") == os.path.join("/c", "Server", "config.json")


@pytest.mark.parametrize("text", ["../../tmp/evil", "a b", "$(touch pwned)", "int8,../x"])
def test_unsafe_config_ver_names_are_refused(tmp_path, text):
    folder, _ = _write(tmp_path, LAYERED)
    with pytest.raises(HarnessError, match=r"^--config_ver.*letters, digits.*part of engine and log file names"):
        files.config_vers("Offline", "Top", text, folder)


@pytest.mark.parametrize("data, needle", [
    ({"default": {}, "../evil": {}}, r"block name='../evil': use 1-64 letters"),
    ({"default": {"config_ver": {"a/b": {}}}, "CPU": {}}, r"overlay name='a/b': use 1-64 letters"),
])
def test_unsafe_block_and_overlay_names_name_the_file(tmp_path, data, needle):
    _, path = _write(tmp_path, data)
    with pytest.raises(HarnessError, match=needle) as e:
        files.check_file(data, path)
    assert path in str(e.value) or "config.json" in str(e.value)
