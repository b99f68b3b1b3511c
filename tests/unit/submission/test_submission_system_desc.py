"""harness/submission/system_desc.py: systems/<system>.json from the template, detection and the user's file."""
import json

import pytest

from harness.core.errors import HarnessError
from harness.submission import rules, system_desc


def test_placeholders():
    assert system_desc.is_placeholder("TODO: fill in") and system_desc.is_placeholder("  todo")
    assert not system_desc.is_placeholder("") and not system_desc.is_placeholder(3)
    assert not system_desc.is_placeholder("Tesla T4")


def test_read(tmp_path):
    assert system_desc._read(str(tmp_path / "missing.json")) == {}
    (tmp_path / "ok.json").write_text(json.dumps({"comment": "x", "cooling": "air"}))
    assert system_desc._read(str(tmp_path / "ok.json")) == {"cooling": "air"}
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(HarnessError, match=r"bad\.json is not valid JSON"):
        system_desc._read(str(tmp_path / "bad.json"))
    (tmp_path / "list.json").write_text("[]")
    with pytest.raises(HarnessError, match=r"list\.json must be a JSON object of system description fields\.$"):
        system_desc._read(str(tmp_path / "list.json"))


def test_detect_on_a_cpu_backend():
    got = system_desc.detect("CPU-x-2c", {"null"})
    assert got["number_of_nodes"] == 1 and got["host_processor_core_count"] >= 1
    assert got["accelerators_per_node"] == "0" and got["accelerator_model_name"] == "N/A"
    assert got["other_software_stack"].startswith("Python ")
    assert got["system_name"].startswith("CPU-x-2c: ") and got["system_name"].endswith("CPU only")


def test_build_needs_a_safe_submitter():
    system = "NoSuchSystem-for-tests"
    with pytest.raises(HarnessError, match=r"^No submitter: pass --submitter=<organisation> or set \"submitter\" in "
                                           r"configs/systems/NoSuchSystem-for-tests\.json\.$"):
        system_desc.build(system, None, "closed", "edge", {"null"})
    with pytest.raises(HarnessError, match=r"^--submitter='a/b': use 1-64 letters"):
        system_desc.build(system, "a/b", "closed", "edge", {"null"})
    desc = system_desc.build(system, "Org", "open", "datacenter,edge", {"null"})
    assert (desc["submitter"], desc["division"], desc["system_type"]) == ("Org", "open", "datacenter,edge")
    assert set(rules.SYSTEM_REQUIRED_FIELDS) <= set(desc)
