"""harness/config/context.py: the system id, the RunConfigs of a command, and one RunConfig's model and data paths."""
import json
import os
import shutil

import pytest

from harness.actions import parse_args
from harness.config import context
from harness.config.systems import detect_system_id
from harness.core.errors import HarnessError
from harness.core.names import is_safe_name
from harness.core.paths import REPO_ROOT
from resnet50.models import get_model


@pytest.fixture
def configs(tmp_path):
    """A copy of configs/resnet50 with a `small` config_ver in the Offline CPU block only."""
    folder = tmp_path / "configs"
    shutil.copytree(os.path.join(REPO_ROOT, "configs", "resnet50"), folder)
    path = folder / "Offline" / "config.json"
    data = json.loads(path.read_text())
    data["CPU"].setdefault("config_ver", {})["small"] = {"batch_size": 3}
    path.write_text(json.dumps(data))
    return str(folder)


def test_system_id_is_the_flag_or_this_machines():
    assert context.system_id(parse_args(["--system_name=T4x1"])) == "T4x1"
    assert context.system_id(parse_args(["--backend=null"])) == detect_system_id("null")


def test_run_configs_group_by_config_ver_in_the_order_given(configs):
    args = parse_args(["--action=run", "--system_name=CPU", f"--config_dir={configs}", "--config_ver=small,default",
                       "--scenarios=SingleStream,Offline"])
    with pytest.raises(HarnessError, match=r"^--config_ver=small: block 'CPU' of .*SingleStream.* has no such"):
        context.run_configs(args)            # every RunConfig is built before anything runs
    rcs = context.run_configs(args, scenarios=["Offline"])
    assert [(rc.config_ver, rc.scenario.name, rc.batch_size) for rc in rcs][0] == ("small", "Offline", 3)
    assert [rc.config_ver for rc in rcs] == ["small", "default"]
    rcs = context.run_configs(args.replace(config_ver="default"))
    assert [(rc.config_ver, rc.scenario.name) for rc in rcs] == [("default", "SingleStream"), ("default", "Offline")]
    assert all(rc.system_id == "CPU" for rc in rcs)


def test_run_config_takes_the_first_config_ver_unless_named(configs):
    args = parse_args(["--action=run", "--system_name=CPU", f"--config_dir={configs}", "--config_ver=small,default"])
    assert context.run_config(args, "Offline").config_ver == "small"
    assert context.run_config(args, "Offline", config_ver="default").config_ver == "default"
    assert context.run_config(args, "Offline", system="CPU-Other-8c").system_id == "CPU-Other-8c"


def test_model_and_data_paths(configs, tmp_path):
    args = parse_args(["--action=run", "--system_name=CPU", f"--config_dir={configs}"])
    rc = context.run_config(args, "Offline")
    spec = context.model_spec(rc)
    assert spec == get_model(rc.model)
    assert context.model_path(rc, spec) == spec.default_path
    assert context.preprocessed_dir(rc) == os.path.join(REPO_ROOT, "build", "preprocessed_data")
    model = tmp_path / "m.onnx"
    args = parse_args(["--action=run", "--system_name=CPU", f"--config_dir={configs}", f"--model_path={model}",
                       f"--preprocessed_data_dir={tmp_path}"])
    rc = context.run_config(args, "Offline")
    assert context.model_path(rc, spec) == str(model)
    assert context.preprocessed_dir(rc) == str(tmp_path)


@pytest.mark.parametrize("name", ["CPU-x/../../../tmp/evil", "CPU-$(touch${IFS}pwned)", "../CPU", "CPU x"])
def test_an_unsafe_system_name_is_refused_before_any_path_is_made(name):
    with pytest.raises(HarnessError, match=r"^--system_name=.*letters, digits.*folder and file names under build/"):
        context.system_id(parse_args([f"--system_name={name}"]))


def test_the_detected_system_id_is_safe():
    assert is_safe_name(detect_system_id("null"))
