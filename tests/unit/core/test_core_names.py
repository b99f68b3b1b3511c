"""harness/core/names.py: one safe pattern for every name that becomes a path or a shell word, and quoted commands."""
import json
import glob
import os
import shlex

import pytest

from harness.core.errors import HarnessError
from harness.core.names import check_safe_name, is_safe_name, make_command, sanitize_name
from harness.core.paths import REPO_ROOT

UNSAFE = ["..", ".", "../x", "a/b", "a\\b", "", "-x", "a..b", "x" * 65, "Org name", "Org\n",
          "CPU-x/../../../tmp/evil", "CPU-$(touch${IFS}pwned)", "A100`id`", "a;b", "_x"]


@pytest.mark.parametrize("name", UNSAFE)
def test_unsafe_names_are_refused_with_the_flag_and_the_rule(name):
    with pytest.raises(HarnessError, match=r"--system_name=.*letters, digits, '_', '-', '.' and '\+'.*without '..'"):
        check_safe_name(name, "--system_name")


def test_known_system_ids_and_names_pass():
    for name in ("A100-SXM4-40GBx8", "CPU-Intel_Xeon-2c", "H200x1", "CPU", "TestOrg", "my-org_2.0", "A", "v1+fp16",
                 "x" * 64):
        assert check_safe_name(name) == name


def test_every_config_block_and_config_ver_name_is_safe():
    paths = glob.glob(os.path.join(REPO_ROOT, "configs", "resnet50", "*", "config.json"))
    assert paths
    for path in paths:
        for block, values in json.load(open(path)).items():
            if isinstance(values, dict):
                assert is_safe_name(block), (path, block)
                assert all(is_safe_name(v) for v in values.get("config_ver", {})), (path, block)


def test_detected_names_are_sanitised():
    assert sanitize_name("CPU-x/../../tmp/evil-2c") == "CPU-x_._._tmp_evil-2c"
    assert sanitize_name("CPU-$(touch pwned)-2c") == "CPU-_touch_pwned_-2c"
    assert sanitize_name("///", "CPU") == "CPU"
    assert is_safe_name(sanitize_name("é" * 200))
    assert sanitize_name("H200x1") == "H200x1"


def test_make_command_keeps_plain_flags_readable():
    assert make_command("run", ["--scenarios=Offline", "--fast"]) == 'make run RUN_ARGS="--scenarios=Offline --fast"'


@pytest.mark.parametrize("evil", ["--log_dir=$(touch pwned)", "--log_dir=`touch pwned`", '--x="; touch pwned; "',
                                  "--log_dir=a b", "--x=it's", "--x=\\"])
def test_make_command_is_one_literal_for_the_shell_and_for_make(evil):
    """The shell sees one RUN_ARGS= word whose value, after make turns `$$` back into `$`, the recipe's shell splits
    into exactly the original flags: nothing is substituted."""
    words = shlex.split(make_command("report", ["--fast", evil]))
    assert words[:2] == ["make", "report"] and len(words) == 3
    value = words[2][len("RUN_ARGS="):].replace("$$", "$")
    assert shlex.split(value) == ["--fast", evil]
