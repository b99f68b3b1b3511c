"""Submission and audit logic without LoadGen runs: verdicts, truncation, rules, the official checker's wiring."""
import json
import os

import pytest

from harness.core.errors import HarnessError
from harness.submission import audit, rules, truncate
from harness.loadgen.logs import DetailLog


def _log(scenario, metric=None, validity="VALID", **extra):
    values = {"effective_scenario": scenario, "result_validity": validity, **extra}
    if metric is not None:
        values[rules.RESULT_KEY[scenario]] = metric
    return DetailLog(f"/logs/2026.01.01-00.00.00/CPU/resnet50/{scenario}/mlperf_log_detail.txt", values)


@pytest.mark.parametrize("test,scenario,ref,got,passed", [
    ("TEST01", "Offline", 100.0, 109.0, True),
    ("TEST01", "Offline", 100.0, 89.0, False),           # two-sided: slower by more than 10%
    ("TEST01", "Offline", 100.0, 111.0, False),          # two-sided: faster by more than 10%
    ("TEST01", "SingleStream", 10e6, 10.9e6, True),      # latency in ns
    ("TEST01", "SingleStream", 10e6, 11.2e6, False),
    ("TEST01", "SingleStream", 150e3, 175e3, True),      # <= 0.2 ms reference: 20%
    ("TEST01", "MultiStream", 1.5e6, 1.75e6, True),      # <= 1.6 ms reference: 20%
    ("TEST04", "Offline", 100.0, 50.0, True),            # slower is fine
    ("TEST04", "Offline", 100.0, 111.0, False),          # more than 10% faster: caching?
    ("TEST04", "SingleStream", 10e6, 9.2e6, True),       # 8.7% faster
    ("TEST04", "SingleStream", 10e6, 8.9e6, False),      # 12.4% faster
    ("TEST04", "Server", 100.0, 105.0, True),
    ("TEST05", "Offline", 100.0, 96.0, True),
    ("TEST05", "Offline", 100.0, 94.0, False),           # more than 5% slower with other seeds
    ("TEST05", "MultiStream", 10e6, 10.6e6, False),
])
def test_performance_verdicts(test, scenario, ref, got, passed):
    extra = {"effective_target_latency_ns": 15000000} if scenario == "Server" else {}
    ok, lines, numbers = audit.compare_performance(rules.AUDIT_TESTS[test], _log(scenario, ref, **extra),
                                                   _log(scenario, got, **extra))
    assert ok is passed, lines
    assert lines[-1] == "TEST PASS" if passed else lines[-1].startswith("TEST FAIL")
    assert f"reference score = {ref:g}" in lines and f"test score = {got:g}" in lines
    assert "2026.01.01-00.00.00/CPU/resnet50" in lines[1] and not lines[1].startswith("reference log = /")


def test_performance_verdict_needs_valid_runs_of_the_same_scenario():
    t = rules.AUDIT_TESTS["TEST04"]
    ok, lines, _ = audit.compare_performance(t, _log("Offline", 100.0, validity="INVALID"), _log("Offline", 90.0))
    assert not ok and lines[-1] == "TEST FAIL: the reference run is INVALID"
    ok, lines, _ = audit.compare_performance(t, _log("Offline", 100.0), _log("Server", 90.0))
    assert not ok and "scenarios differ" in lines[-1]
    ok, lines, _ = audit.compare_performance(t, _log("Server", 100.0, effective_target_latency_ns=15000000),
                                             _log("Server", 90.0, effective_target_latency_ns=10000000))
    assert not ok and "target latency differs" in lines[-1]


def _entries(pairs):
    return [{"seq_id": i, "qsl_idx": idx, "data": int(v).to_bytes(4, "little").hex().upper()}
            for i, (idx, v) in enumerate(pairs)]


def test_response_comparison():
    ref = _entries([(0, 5), (1, 7), (2, 9)])
    same = audit.compare_responses(ref, _entries([(1, 7), (1, 7), (2, 9)]))
    assert same["passed"] and same["matched"] == 3
    differ = audit.compare_responses(ref, _entries([(1, 8), (2, 9)]))
    assert not differ["passed"] and differ["mismatched"] == 1 and "sample 1" in differ["mismatch_examples"][0]
    missing = audit.compare_responses(ref, _entries([(3, 1)]))
    assert not missing["passed"] and missing["missing_in_accuracy_run"] == 1
    assert not audit.compare_responses(ref, [])["passed"]        # nothing logged proves nothing


def test_truncation_keeps_head_and_tail():
    data = b"[\n" + b"".join(b'{"seq_id": %d, "qsl_idx": %d, "data": "00000000"},\n' % (i, i) for i in range(2000))
    out = truncate.truncate_bytes(data)
    assert out.startswith(data[:4096]) and out.endswith(data[-4096:])
    assert len(out) == 2 * 4096 + len("\n\n...\n\n") <= rules.MAX_ACCURACY_LOG_BYTES
    assert truncate.truncate_bytes(data[:5000]) == data[:5000]   # already small enough to read whole


def test_round_matches_the_installed_loadgen():
    # LoadGen 6.0.17 carries the seeds of the v6.1 checker; the v6.0 checker would reject its logs.
    assert rules.detect_round() == "v6.1"
    # The rule values of the table are the installed LoadGen's built-in mlperf.conf values.
    builtin = {s: rules.loadgen_builtin(s) for s in ("Offline", "MultiStream", "Server")}
    assert builtin["Offline"]["min_duration_ms"] == rules.MIN_DURATION_MS
    assert builtin["MultiStream"]["min_duration_ms"] == rules.MIN_DURATION_MS
    assert builtin["Offline"]["min_query_count"] == rules.OFFLINE_MIN_SAMPLES_PER_QUERY
    assert builtin["Offline"]["performance_sample_count_override"] == rules.PERFORMANCE_SAMPLE_COUNT
    assert builtin["MultiStream"]["multi_stream_samples_per_query"] == rules.MULTISTREAM_SAMPLES_PER_QUERY
    assert builtin["Server"]["server_target_latency_ns"] == rules.SERVER_TARGET_LATENCY_NS


def test_round_tables():
    v61 = rules.get_round("v6.1")
    assert rules.required_scenarios(v61, "edge") == ("SingleStream", "MultiStream", "Offline")
    assert rules.required_scenarios(v61, "datacenter,edge") == ("SingleStream", "MultiStream", "Offline", "Server")
    with pytest.raises(HarnessError, match="not part of the datacenter suite in v6.1"):
        rules.required_scenarios(v61, "datacenter")
    assert rules.required_scenarios(rules.get_round("v5.0"), "datacenter") == ("Server", "Offline")
    assert rules.audit_tests_for(v61, None) == ["TEST01", "TEST04"]
    with pytest.raises(HarnessError, match="--audit_version=v4.1"):
        rules.audit_tests_for(v61, "TEST05")
    assert rules.audit_tests_for(rules.get_round("v4.1"), "test05") == ["TEST05"]
    with pytest.raises(HarnessError, match="cannot be staged"):
        rules.get_round("v4.1", for_staging=True)
    assert rules.compliance_dir(v61, "CPU", "Offline") == os.path.join("results", "CPU", "resnet50", "Offline")
    assert rules.compliance_dir(rules.get_round("v5.1"), "CPU", "Offline").startswith("compliance")
    assert rules.measurements_json(rules.get_round("v5.1"), "CPU", "Offline").endswith("CPU_Offline.json")


def test_rule_problems_of_a_short_run():
    r = rules.get_round("v6.1")
    short = _log("Offline", 100.0, effective_min_duration_ms=1000, effective_performance_sample_count=256,
                 effective_samples_per_query=110, effective_min_query_count=1, effective_qsl_rng_seed=r.seeds[0],
                 effective_sample_index_rng_seed=r.seeds[1], effective_schedule_rng_seed=1)
    problems = " | ".join(rules.performance_rule_problems(short, "Offline", "closed", r))
    for needle in ("min_duration 1000 ms", "performance sample count 256", "Offline query of 110 samples",
                   "LoadGen seeds"):
        assert needle in problems
    assert "Offline query" not in " ".join(rules.performance_rule_problems(short, "Offline", "open", r))


def test_official_checker_wiring(tmp_path, monkeypatch):
    from harness.submission import official
    repo = tmp_path / "inference"
    assert official.run_official(str(tmp_path), str(repo), "v6.1").returncode is None   # no checkout
    pkg = repo / "tools" / "submission" / "submission_checker"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "main.py").write_text("import json, sys\nprint(json.dumps(sys.argv[1:]))\nsys.exit(3)\n")
    monkeypatch.setattr(official.importlib.util, "find_spec", lambda name: object())   # pretend PyYAML is there
    verdict = official.run_official(str(tmp_path), str(repo), "v6.1")
    assert verdict.returncode == 3 and verdict.errors[official.OTHER]   # a crash is never "short run"
    args = json.loads(open(str(tmp_path) + ".records/official_checker.log").read())   # outside the root
    assert args[:2] == ["--input", str(tmp_path)] and args[args.index("--version") + 1] == "v6.1"


def test_summary_and_detail_must_agree(tmp_path):
    from harness.submission.integrity import summary_detail_problems
    from harness.loadgen.logs import read_detail
    detail = tmp_path / "mlperf_log_detail.txt"
    detail.write_text("".join(f':::MLLOG {json.dumps({"key": k, "value": v})}\n' for k, v in (
        ("effective_scenario", "Offline"), ("effective_test_mode", "PerformanceOnly"), ("result_validity", "VALID"),
        ("result_samples_per_second", 323828.0), ("result_min_duration_met", True),
        ("result_90.00_percentile_latency_ns", 1234567))))
    log = read_detail(str(detail))
    summary = tmp_path / "mlperf_log_summary.txt"
    good = ("Scenario : Offline\nMode     : PerformanceOnly\nSamples per second: 323828\nResult is : VALID\n"
            "  Min duration satisfied : Yes\n90.00 percentile latency (ns)   : 1234567\n")
    summary.write_text(good)
    assert summary_detail_problems(str(summary), log) == []
    summary.write_text(good.replace("323828", "999999").replace("VALID", "INVALID").replace(": Yes", ": NO"))
    problems = " | ".join(summary_detail_problems(str(summary), log))
    for needle in ("Samples per second '999999' disagrees", "Result is 'INVALID' disagrees",
                   "Min duration satisfied 'NO' disagrees"):
        assert needle in problems, problems
    summary.write_text("")
    assert "no `Result is :` line" in summary_detail_problems(str(summary), log)[0]
    # The summary rounds: "QPS w/ loadgen overhead : 21.24" for 21.2354 agrees; 21.25 does not.
    from harness.submission.integrity import _same
    assert _same("21.24", 21.2354) and _same("819.08", 819.078) and not _same("21.25", 21.2354)
    assert not _same("1234568", 1234567)
    # SingleStream's lines: "90.0th percentile latency (ns)" and "* Early stopping 90.0th percentile estimate: N"
    entry = json.dumps({"key": "early_stopping_latency_ss", "value": 19910})
    detail.write_text(detail.read_text() + f":::MLLOG {entry}\n")
    log = read_detail(str(detail))
    summary.write_text(good + "90.0th percentile latency (ns) : 1234567\n"
                       " * Early stopping 90.0th percentile estimate: 9\n")
    assert summary_detail_problems(str(summary), log) == [
        "Early stopping 90.0th percentile estimate '9' disagrees with mlperf_log_detail.txt early_stopping_latency_ss "
        "= 19910"]


@pytest.mark.parametrize("name", ["..", ".", "../x", "a/b", "a\\b", "", "-x", "a..b", "x" * 65, "Org name", "Org\n"])
def test_unsafe_submitter_names_are_refused(name):
    from harness.core.names import check_safe_name
    with pytest.raises(HarnessError, match="without '..' or path separators"):
        check_safe_name(name)


def test_safe_submitter_names_pass():
    from harness.core.names import check_safe_name
    for name in ("TestOrg", "Alibaba", "my-org_2.0", "A"):
        assert check_safe_name(name) == name
