"""The scenario table (code/harness/config/scenarios.py) and the code that reads it."""
import pytest

from harness.config import scenarios
from harness.core.errors import HarnessError
from harness.loadgen.run import summarize
from harness.loadgen.settings import user_conf_lines
from harness.core.isolation import run_isolated
from harness.actions.run_harness import summary_line
from harness.submission import rules


def test_each_scenario_is_a_loadgen_enum():
    import mlperf_loadgen as lg
    for sc in scenarios.SCENARIOS.values():
        assert sc.loadgen_enum(lg) == getattr(lg.TestScenario, sc.name)


def test_the_checker_reads_the_table():
    assert rules.RESULT_KEY == {"Offline": "result_samples_per_second", "Server": "result_completed_samples_per_sec",
                                "SingleStream": "early_stopping_latency_ss", "MultiStream": "early_stopping_latency_ms"}
    assert [s.name for s in scenarios.SCENARIOS.values() if s.latency_bound] == ["SingleStream", "MultiStream"]
    assert rules.result_tolerance(rules.AUDIT_TESTS["TEST04"], "SingleStream", 150000) == 0.20
    assert rules.result_tolerance(rules.AUDIT_TESTS["TEST04"], "Offline", None) == 0.10


def test_one_accuracy_reference():
    from resnet50.models import get_model
    assert rules.ACCURACY_REFERENCE == get_model("resnet50").fp32_top1 == 76.46   # the checker's ("acc", 76.46 * .99)


@pytest.mark.parametrize("name,expected", [
    ("Offline", ["resnet50.Offline.target_qps = 400.0"]),
    ("Server", ["resnet50.Server.target_qps = 10.0", "resnet50.Server.max_async_queries = 50"]),
    ("SingleStream", ["resnet50.SingleStream.target_latency = 2"]),   # 1.5 ms -> whole ms, rounded up
    ("MultiStream", ["resnet50.MultiStream.target_latency = 2", "resnet50.MultiStream.samples_per_query = 8"]),
])
def test_user_conf_keys_per_scenario(name, expected):
    cfg = {"system_id": "CPU", "config_block": "CPU", "config_ver": "default", "offline_expected_qps": 400.0,
           "server_target_qps": 10.0, "single_stream_expected_latency_ns": 1500000,
           "multi_stream_expected_latency_ns": 1500000, "multi_stream_samples_per_query": 8, "min_duration": 1000,
           "server_max_async_queries": 50}
    lines = user_conf_lines(name, cfg, 5000)
    assert lines[1:] == expected + [f"resnet50.{name}.min_duration = 1000", f"resnet50.{name}.max_duration = 601000"]


def test_summary_shows_both_figures_where_the_checker_reads_another():
    detail = {"result_validity": "VALID", "result_scheduled_samples_per_sec": 2000.0,
              "result_completed_samples_per_sec": 1990.0, "result_99.00_percentile_latency_ns": 3e6}
    s = summarize("Server", detail)
    assert s["metric"] == "scheduled_queries_per_second" and s["scheduled_queries_per_second"] == 2000.0
    assert s["checker_metric"] == "result_completed_samples_per_sec" and s["result_completed_samples_per_sec"] == 1990
    line = summary_line("Server", s)
    assert "scheduled_queries_per_second=2000.0 (result_scheduled_samples_per_sec)" in line
    assert "checker: result_completed_samples_per_sec=1990" in line
    ss = summarize("SingleStream", {"result_90.00_percentile_latency_ns": 2e6, "early_stopping_latency_ss": 2.5e6})
    assert ss["p90_latency_ms"] == 2.0 and "checker: early_stopping_latency_ss=2.500 ms" in summary_line("SingleStream",
                                                                                                          ss)
    off = summarize("Offline", {"result_samples_per_second": 100.0})
    assert "checker" not in summary_line("Offline", off)      # the same figure: shown once


def test_batch_rules():
    assert scenarios.SINGLE_STREAM.batch_size(None, {}) == 1
    assert scenarios.MULTI_STREAM.batch_size(None, {"multi_stream_samples_per_query": 4}) == 4
    assert scenarios.MULTI_STREAM.batch_size(None, {}) == 8
    assert scenarios.OFFLINE.batch_size(32, {}) == 32 and scenarios.OFFLINE.batch_size(None, {}) == 1


def test_run_isolated_returns_the_result_and_raises_harness_errors():
    assert run_isolated(len, [1, 2, 3]) == 3
    with pytest.raises(HarnessError, match="Unknown scenario 'Sever'"):
        run_isolated(scenarios.get, "Sever")
