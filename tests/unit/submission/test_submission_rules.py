"""harness/submission/rules.py, its pure functions (detect_round reads the installed LoadGen: tests/unit/submission/test_submission_units.py)."""
import os

import pytest

from harness.core.errors import HarnessError
from harness.submission import rules


def test_accuracy_target_and_constants():
    assert rules.ACCURACY_REFERENCE == 76.46 and rules.ACCURACY_TARGET == round(76.46 * 0.99, 4)
    assert rules.OFFLINE_MIN_SAMPLES_PER_QUERY == 24576 and rules.MULTISTREAM_SAMPLES_PER_QUERY == 8
    assert rules.SERVER_TARGET_LATENCY_NS == 15000000
    assert rules.SCENARIO_ORDER == ("SingleStream", "MultiStream", "Offline", "Server")
    assert rules.RESULT_KEY["Server"] == "result_completed_samples_per_sec"
    assert rules.UNITS["SingleStream"] == "Latency (ms)"


def test_get_round():
    assert rules.get_round("v6.1").layout == "v6" and rules.get_round("v6.1").code_dir == "src"
    assert rules.get_round("v5.0").code_dir == "code"
    assert rules.get_round("v4.1").name == "v4.1"
    with pytest.raises(HarnessError, match=r"^--round / --audit_version 'v9\.9': unknown round; known: v6\.1, v6\.0, "
                                           r"v5\.1, v5\.0, v4\.1\.$"):
        rules.get_round("v9.9")
    with pytest.raises(HarnessError, match=r"^Round v4\.1 cannot be staged by this harness"):
        rules.get_round("v4.1", for_staging=True)
    assert rules.get_round("v6.0", for_staging=True).stageable


def test_required_scenarios():
    assert rules.required_scenarios(rules.ROUNDS["v6.1"], "edge") == ("SingleStream", "MultiStream", "Offline")
    assert rules.required_scenarios(rules.ROUNDS["v5.0"], "datacenter") == ("Server", "Offline")
    with pytest.raises(HarnessError, match=r"^--category=cloud: expected one of edge, datacenter, datacenter,edge\.$"):
        rules.required_scenarios(rules.ROUNDS["v6.1"], "cloud")
    with pytest.raises(HarnessError, match=r"^ResNet50 is not part of the datacenter suite in v6\.1 \(the round's "
                                           r"checker lists it only for datacenter,edge and edge\)"):
        rules.required_scenarios(rules.ROUNDS["v6.1"], "datacenter")


def test_audit_tests_for():
    v61, v41 = rules.ROUNDS["v6.1"], rules.ROUNDS["v4.1"]
    assert rules.audit_tests_for(v61, None) == ["TEST01", "TEST04"]
    assert rules.audit_tests_for(v61, " test04, TEST01,test04") == ["TEST04", "TEST01"]
    assert rules.audit_tests_for(v41, "TEST05") == ["TEST05"]
    with pytest.raises(HarnessError, match=r"^--audit_test: unknown test 'TEST99'; known: TEST01, TEST04, TEST05\.$"):
        rules.audit_tests_for(v61, "TEST99")
    with pytest.raises(HarnessError, match=r"^--audit_test=TEST05: round v6\.1 has no TEST05 for ResNet50 \(it "
                                           r"requires TEST01, TEST04\)\. TEST05 was dropped after v4\.1"):
        rules.audit_tests_for(v61, "TEST05")


def test_describe_rule_and_tolerances():
    assert rules.describe_rule("within", 0.1) == "must be within 10% of the reference"
    assert rules.describe_rule("not_faster", 0.1) == "must not be over 10% faster"
    assert rules.describe_rule("not_slower", 0.05) == "must not be over 5% slower"
    assert rules.describe_rule("odd", None) == "rule odd 0%"
    t01 = rules.AUDIT_TESTS["TEST01"]
    assert rules.result_tolerance(t01, "SingleStream", 150000) == 0.20      # <= 0.2 ms: relaxed
    assert rules.result_tolerance(t01, "SingleStream", 300000) == 0.10
    assert rules.result_tolerance(t01, "MultiStream", 1600000) == 0.20
    assert rules.result_tolerance(t01, "Offline", 1) == 0.10 and rules.result_tolerance(t01, "SingleStream", None) == 0.10


def test_audit_configs():
    assert "*.*.accuracy_log_sampling_target = 4096" in rules.AUDIT_TESTS["TEST01"].config
    assert "*.Server.performance_issue_same_index = 3" in rules.AUDIT_TESTS["TEST04"].config
    assert rules.AUDIT_TESTS["TEST05"].sets_test05 and rules.AUDIT_TESTS["TEST05"].tolerance == 0.05


def test_layout_of_each_round():
    v6, v5 = rules.ROUNDS["v6.1"], rules.ROUNDS["v5.1"]
    here = os.path.join("results", "T4x1", "resnet50", "Offline")
    assert rules.scenario_dir(v6, "T4x1", "Offline") == here == rules.scenario_dir(v5, "T4x1", "Offline")
    assert rules.compliance_dir(v6, "T4x1", "Offline") == here
    assert rules.compliance_dir(v5, "T4x1", "Offline") == os.path.join("compliance", "T4x1", "resnet50", "Offline")
    assert rules.measurements_json(v6, "T4x1", "Offline") == os.path.join(here, "measurements.json")
    assert rules.measurements_json(v5, "T4x1", "Offline") == os.path.join("measurements", "T4x1", "resnet50",
                                                                          "Offline", "T4x1_Offline.json")


def _detail(**over):
    seeds = rules.ROUNDS["v6.1"].seeds
    d = {"effective_min_duration_ms": 600000, "effective_performance_sample_count": 1024,
         "effective_qsl_rng_seed": seeds[0], "effective_sample_index_rng_seed": seeds[1],
         "effective_schedule_rng_seed": seeds[2], "effective_samples_per_query": 24576,
         "effective_min_query_count": 1, "early_stopping_met": True, "effective_target_latency_ns": 15000000}
    d.update(over)
    return d


def test_a_run_by_the_rules_has_no_problems():
    v61 = rules.ROUNDS["v6.1"]
    assert rules.performance_rule_problems(_detail(), "Offline", "closed", v61) == []
    assert rules.performance_rule_problems(_detail(), "Server", "closed", v61) == []
    assert rules.performance_rule_problems(_detail(effective_samples_per_query=8), "MultiStream", "closed", v61) == []


def test_performance_rule_problems_in_words():
    v61 = rules.ROUNDS["v6.1"]
    got = rules.performance_rule_problems(_detail(effective_min_duration_ms=1000,
                                                  effective_performance_sample_count="x",
                                                  effective_samples_per_query=100, effective_min_query_count=0,
                                                  effective_qsl_rng_seed=1), "Offline", "closed", v61)
    assert got[0] == "min_duration 1000 ms is below the rules' 600000 ms"
    assert got[1] == "performance sample count None is below the rules' 1024"
    assert got[2].startswith(f"LoadGen seeds (1, {v61.seeds[1]}, {v61.seeds[2]}) are not v6.1's ")
    assert got[3:] == ["Offline query of 100 samples is below the rules' 24576", "Offline min_query_count is below 1"]
    open_div = rules.performance_rule_problems(_detail(effective_samples_per_query=100), "Offline", "open", v61)
    assert open_div == []
    assert rules.performance_rule_problems(_detail(effective_qsl_rng_seed=1), "Offline", "closed", v61,
                                           audit="TEST05") == []
    server = rules.performance_rule_problems(_detail(early_stopping_met=False, effective_target_latency_ns=20000000),
                                             "Server", "closed", v61)
    assert server == ["the early-stopping condition was not met (too few queries)",
                      "Server latency bound 20000000 ns is above the rules' 15000000 ns"]
    ms = rules.performance_rule_problems(_detail(effective_samples_per_query=4), "MultiStream", "closed", v61)
    assert ms == ["MultiStream uses 4 samples per query; the rules fix 8"]


def test_accuracy_rule_problems():
    full = {"qsl_reported_total_count": 50000}
    assert rules.accuracy_rule_problems(full, 76.0, "resnet50", "closed") == []
    assert rules.accuracy_rule_problems({"qsl_reported_total_count": 500}, 10.0, "effnet", "open") == [
        "the accuracy run covers a dataset of 500 images; the rules require all 50000 of the ImageNet 2012 "
        "validation set"]
    closed = rules.accuracy_rule_problems(full, 70.0, "efficientnet-lite0", "closed")
    assert closed[0].startswith("model 'efficientnet-lite0' is not the closed division's reference ResNet50-v1.5")
    assert closed[1] == f"top-1 70.0% is below the closed-division target {rules.ACCURACY_TARGET}% (99% of 76.46%)"
    assert rules.accuracy_rule_problems(full, None, None, "closed") == [
        f"top-1 None% is below the closed-division target {rules.ACCURACY_TARGET}% (99% of 76.46%)"]
