"""harness/config/command.py: the frozen Command that replaced argparse.Namespace."""
import dataclasses
import pickle

import pytest

from harness.actions import parse_args
from harness.config.command import Command


def _cmd():
    return Command({"scenarios": ["Offline"], "batch_size": None, "fast": False}, ("--scenarios=Offline",),
                   frozenset({"scenarios"}))


def test_flags_are_attributes_and_unknown_names_are_attribute_errors():
    cmd = _cmd()
    assert cmd.scenarios == ["Offline"] and cmd.batch_size is None and cmd.fast is False
    with pytest.raises(AttributeError, match=r"Command has no flag 'nope'"):
        cmd.nope
    assert getattr(cmd, "nope", "fallback") == "fallback"
    assert not hasattr(cmd, "__wrapped__")


def test_a_command_never_changes():
    cmd = _cmd()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cmd.batch_size = 4
    with pytest.raises(TypeError):
        cmd.values["batch_size"] = 4
    source = {"batch_size": 1}
    held = Command(source)
    source["batch_size"] = 2
    assert held.batch_size == 1                  # a copy of what it was given


def test_given():
    cmd = _cmd()
    assert cmd.given("scenarios") and not cmd.given("batch_size") and not cmd.given("nope")


def test_replace_makes_a_new_command_marking_the_changes_given():
    cmd = _cmd()
    other = cmd.replace(batch_size=8)
    assert other.batch_size == 8 and cmd.batch_size is None
    assert other.given("batch_size") and other.given("scenarios") and not cmd.given("batch_size")
    assert other.argv == cmd.argv
    with pytest.raises(AttributeError, match=r"Command has no flag\(s\) \['bogus', 'nope'\]"):
        cmd.replace(nope=1, bogus=2)


def test_a_command_pickles():
    cmd = _cmd()
    back = pickle.loads(pickle.dumps(cmd))
    assert back == cmd and dict(back.values) == dict(cmd.values)
    assert back.argv == cmd.argv and back.given("scenarios") and not back.given("fast")
    with pytest.raises(TypeError):
        back.values["fast"] = True


def test_parse_args_gives_a_command_of_every_flag():
    cmd = parse_args(["--action=run", "--scenarios=Offline,Server", "--batch_size=4"])
    assert isinstance(cmd, Command)
    assert cmd.action == "run" and cmd.batch_size == 4 and cmd.given("batch_size")
    assert cmd.system_name is None and not cmd.given("system_name")
    assert pickle.loads(pickle.dumps(cmd)) == cmd
