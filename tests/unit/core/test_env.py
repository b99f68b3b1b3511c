"""harness/core/env.py: the one table of MLPERF_* variables, read through one function."""
import os
import re

import pytest

from conftest import ROOT
from harness.core import env
from harness.core.errors import HarnessError

# Set by the harness for its child processes only (tune/tuner.py), never read.
SET_FOR_CHILDREN_ONLY = {"MLPERF_HARNESS_RUN_ROOT"}


def test_unset_or_empty_gives_the_default():
    assert env.get(env.LOCK_TIMEOUT, {}) == 600.0
    assert env.get(env.SUT_TIMING, {"MLPERF_SUT_TIMING": ""}) is True
    assert env.get(env.HARNESS_PROGRESS, {}) is None          # on only on a terminal: the caller decides
    assert env.get(env.SCRATCH_PATH, {"MLPERF_SCRATCH_PATH": "  "}) is None


@pytest.mark.parametrize("raw,value", [("0", False), ("off", False), ("No", False), (" false ", False),
                                       ("1", True), ("ON", True), ("yes", True), ("true", True)])
def test_bools_go_through_parse_bool(raw, value):
    assert env.get(env.REPORT, {"MLPERF_REPORT": raw}) is value


def test_values_are_typed():
    assert env.get(env.LOCK_TIMEOUT, {"MLPERF_LOCK_TIMEOUT": "2.5"}) == 2.5
    assert env.get(env.DIGEST_CACHE, {"MLPERF_DIGEST_CACHE": "/tmp/d"}) == "/tmp/d"


def test_reads_the_process_environment(monkeypatch):
    monkeypatch.setenv("MLPERF_SUT_TIMING", "off")
    assert env.get(env.SUT_TIMING) is False


@pytest.mark.parametrize("var,raw", [(env.REPORT, "maybe"), (env.SUT_TIMING, "2"), (env.LOCK_TIMEOUT, "soon")])
def test_a_bad_value_is_an_error_naming_the_variable(var, raw):
    with pytest.raises(HarnessError, match=re.escape(f"${var.name}={raw!r}: expected")):
        env.get(var, {var.name: raw})


def test_markdown_table_lists_every_variable():
    table = env.markdown_table().splitlines()
    assert table[0] == "| variable | type | default | meaning |"
    assert [line.split("|")[1].strip() for line in table[2:]] == [f"`{v.name}`" for v in env.VARIABLES]


def test_every_mlperf_variable_the_code_names_is_in_the_table():
    names = set()
    for folder in ("harness", "resnet50"):
        for base, _, files in os.walk(os.path.join(ROOT, "code", folder)):
            for name in files:
                if name.endswith(".py"):
                    with open(os.path.join(base, name)) as f:
                        names.update(re.findall(r"\bMLPERF_[A-Z_]+[A-Z]\b", f.read()))
    assert names - SET_FOR_CHILDREN_ONLY <= {v.name for v in env.VARIABLES}


@pytest.mark.parametrize("raw", ["nan", "inf", "-inf", "-1"])
def test_lock_timeout_refuses_a_wait_that_never_ends_or_means_nothing(raw):
    with pytest.raises(HarnessError) as e:
        env.get(env.LOCK_TIMEOUT, {"MLPERF_LOCK_TIMEOUT": raw})
    assert f"$MLPERF_LOCK_TIMEOUT={raw!r}" in str(e.value) and "a finite number >= 0" in str(e.value)
    assert env.get(env.LOCK_TIMEOUT, {"MLPERF_LOCK_TIMEOUT": "0"}) == 0.0
