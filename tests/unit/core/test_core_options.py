"""harness/core/options.py: Flag.check (types, bounds, choices, where-names) and the shared parsers."""
import argparse
import math

import pytest

from harness.core.errors import HarnessError
from harness.core.options import Flag, parse_bool, parse_devices, parse_int_list


@pytest.mark.parametrize("text", ["1", "true", "TRUE", "yes", "On", " on "])
def test_parse_bool_true_words(text):
    assert parse_bool(text) is True


@pytest.mark.parametrize("text", ["0", "false", "No", "OFF"])
def test_parse_bool_false_words(text):
    assert parse_bool(text) is False


def test_parse_bool_passes_bools_and_refuses_other_words():
    assert parse_bool(True) is True and parse_bool(False) is False
    with pytest.raises(argparse.ArgumentTypeError, match=r"expected true/false, got 'maybe'"):
        parse_bool("maybe")


def test_parse_int_list():
    assert parse_int_list("8,16,32") == (8, 16, 32)
    assert parse_int_list(" 8 , 16 ,") == (8, 16)
    assert parse_int_list([1, 2]) == (1, 2)
    assert parse_int_list("") == ()
    for bad in ("8,x", [1, True], [1, None]):
        with pytest.raises(argparse.ArgumentTypeError, match="expected a comma list of integers"):
            parse_int_list(bad)


def test_parse_devices():
    assert parse_devices(None) is None
    assert parse_devices("") is None and parse_devices("all") is None and parse_devices([]) is None
    assert parse_devices("0,1") == ["0", "1"]
    assert parse_devices([0, " 1 "]) == ["0", "1"]
    with pytest.raises(HarnessError, match=r"^--devices=0,1,0: a device is listed twice\.$"):
        parse_devices("0,1,0")
    with pytest.raises(HarnessError, match=r"^gpu_devices=\[1, 1\]: a device is listed twice"):
        parse_devices([1, 1], what="gpu_devices")


def test_int_flag_types_and_bounds():
    flag = Flag("batch_size", int, None, "batch", min=1, max=256)
    assert flag.check(8, "--batch_size") == 8
    assert flag.check(8.0, "--batch_size") == 8 and isinstance(flag.check(8.0, "x"), int)
    assert flag.type_name == "int" and flag.allowed == "an integer >= 1 and <= 256"
    with pytest.raises(HarnessError, match=r"^--batch_size=0: expected an integer >= 1 and <= 256\.$"):
        flag.check(0, "--batch_size")
    with pytest.raises(HarnessError, match=r"^--batch_size=257: expected"):
        flag.check(257, "--batch_size")
    for bad in (True, "8", 8.5, float("nan")):
        with pytest.raises(HarnessError, match="expected an integer"):
            flag.check(bad, "--batch_size")


def test_float_flag_exclusive_bound_and_non_finite_values():
    flag = Flag("target", float, None, "qps", gt=0)
    assert flag.check(3, "--target") == 3.0 and isinstance(flag.check(3, "x"), float)
    assert flag.allowed == "a number > 0"
    with pytest.raises(HarnessError, match=r"^--target=0: expected a number > 0\.$"):
        flag.check(0, "--target")
    with pytest.raises(HarnessError, match=r"^--target=inf: expected a number > 0"):
        flag.check(math.inf, "--target")
    with pytest.raises(HarnessError, match="expected a number"):
        flag.check(False, "--target")


def test_choices_and_str_flags():
    flag = Flag("precision", str, "fp32", "precision", choices=("fp32", "fp16", "int8"))
    assert flag.check("int8", "--precision") == "int8"
    assert flag.allowed == "one of fp32, fp16, int8"
    with pytest.raises(HarnessError, match=r"^--precision=fp64: expected one of fp32, fp16, int8\.$"):
        flag.check("fp64", "--precision")
    with pytest.raises(HarnessError, match="expected one of"):
        flag.check(16, "--precision")
    plain = Flag("name", str, None, "a name")
    assert plain.allowed == "a string"
    with pytest.raises(HarnessError, match=r'^--name=\["a"\]: expected a string\.$'):
        plain.check(["a"], "--name")


def test_switches_and_bool_values():
    switch = Flag("fast", parse_bool, False, "fast", switch=True)
    assert switch.type_name == "bool" and switch.allowed == "true or false"
    assert switch.check(True, "--fast") is True
    assert switch.check("off", "--fast") is False
    with pytest.raises(HarnessError, match=r"^--fast=sometimes: expected true or false\.$"):
        switch.check("sometimes", "--fast")
    with pytest.raises(HarnessError, match="expected true or false"):
        switch.check(1, "--fast")
    assert Flag("verify", parse_bool, False, "v").type_name == "bool"


def test_int_list_flags_check_each_item():
    flag = Flag("batch_sizes", parse_int_list, None, "sizes", min=1)
    assert flag.type_name == "int list" and flag.allowed == "a list of integers, each >= 1"
    assert flag.check("1,2", "--batch_sizes") == (1, 2)
    assert flag.check([4, 8], "x") == (4, 8)
    with pytest.raises(HarnessError, match=r"^--batch_sizes=1,0: expected a list of integers, each >= 1\.$"):
        flag.check("1,0", "--batch_sizes")
    with pytest.raises(HarnessError, match=r"^--batch_sizes=1,x: expected"):
        flag.check("1,x", "--batch_sizes")


def test_the_where_name_of_a_config_value_leads_the_message():
    flag = Flag("workers", int, None, "workers", min=1, config_key="workers")
    where = "configs/resnet50/Offline/config.json, block 'CPU', key 'workers'"
    with pytest.raises(HarnessError) as e:
        flag.check(-2, where)
    assert str(e.value) == f"{where}=-2: expected an integer >= 1."


def test_flags_are_frozen():
    flag = Flag("x", int, 0, "x")
    with pytest.raises(Exception):
        flag.default = 1


def test_a_quoted_number_from_a_config_is_called_a_string():
    flag = Flag("offline_expected_qps", float, None, "x", gt=0)
    with pytest.raises(HarnessError) as e:
        flag.check("150", "f.json, block 'CPU', key 'offline_expected_qps'")
    assert "key 'offline_expected_qps'=\"150\": a string (in quotes); expected a number > 0" in str(e.value)
