"""harness/loadgen/limits.py: max_duration, the watchdog, the far-above-capacity warning, empty run folders."""
import json
import os

import pytest

from harness.core.errors import HarnessError
from harness.loadgen import limits


def test_default_max_duration():
    assert limits.default_max_duration_ms(None) == 2400000          # 600 s -> 40 min
    assert limits.default_max_duration_ms(600000) == 2400000
    assert limits.default_max_duration_ms(1000) == 601000            # short runs are never cut
    assert limits.default_max_duration_ms(1000000) == 4000000


def test_max_duration_from_the_config():
    assert limits.max_duration_ms({}) == 2400000
    assert limits.max_duration_ms({"min_duration": 10000}) == 610000
    assert limits.max_duration_ms({"max_duration": 0}) == 0
    assert limits.max_duration_ms({"max_duration": 700000}) == 700000
    assert limits.max_duration_ms({"max_duration": 2000, "min_duration": 2000}) == 2000
    with pytest.raises(HarnessError, match=r"^max_duration 1999 ms .* at least min_duration \(2000 ms\): a shorter "
                                           r"run can never be VALID\.$"):
        limits.max_duration_ms({"max_duration": 1999, "min_duration": 2000})
    with pytest.raises(HarnessError, match=r"^max_duration -1 ms"):
        limits.max_duration_ms({"max_duration": -1})


def test_watchdog():
    assert limits.watchdog_s(0) is None and limits.watchdog_s(-5) is None
    assert limits.watchdog_s(10000) == pytest.approx(21.0)
    assert limits.watchdog_s(2400000) == pytest.approx(2650.0)


def test_mark_ended_at_max_duration(tmp_path):
    summary = {"result_validity": "VALID"}
    limits.mark_ended_at_max_duration(str(tmp_path), summary, 1234)
    assert summary == {"result_validity": "INVALID", "loadgen_result_validity": "VALID", "ended_at_max_duration": 1234}
    assert (tmp_path / limits.MARKER).read_text().startswith("LoadGen had not finished 1234 ms (max_duration)")


def _summary(log_base, stamp, scenario, validity="VALID", system="CPU", **fields):
    folder = os.path.join(log_base, stamp, system, "resnet50", scenario)
    os.makedirs(folder)
    settings = {"backend": "onnxruntime", "model": "resnet50", "precision": "fp32", "config_ver": "default",
                "batch_size": 8, "null_latency_us": None, **fields.pop("settings", {})}
    with open(os.path.join(folder, "summary.json"), "w") as f:
        json.dump({"result_validity": validity, "test_mode": "PerformanceOnly", "settings": settings, **fields}, f)
    return folder


CFG = {"system_id": "CPU", "backend": "onnxruntime", "model": "resnet50", "precision": "fp32",
       "config_ver": "default", "batch_size": 8, "null_latency_us": None}


def test_no_warning_without_a_measurement_or_a_rate_target(tmp_path):
    base = str(tmp_path)
    assert limits.target_warning({**CFG, "offline_expected_qps": 1e6}, "Offline", base) is None
    assert limits.target_warning({**CFG, "offline_expected_qps": 1e6}, "Offline", str(tmp_path / "none")) is None
    _summary(base, "2026.01.01-00.00.00", "SingleStream", p90_latency_ms=1.0)
    assert limits.target_warning({**CFG, "single_stream_expected_latency_ns": 1}, "SingleStream", base) is None
    assert limits.target_warning(dict(CFG), "Offline", base) is None


def test_a_target_far_above_the_newest_valid_run_warns(tmp_path):
    base = str(tmp_path)
    _summary(base, "2026.01.01-00.00.00", "Offline", samples_per_second=50.0)
    newest = _summary(base, "2026.01.02-00.00.00", "Offline", samples_per_second=100.0)
    _summary(base, "2026.01.03-00.00.00", "Offline", validity="INVALID", samples_per_second=1.0)
    _summary(base, "2026.01.04-00.00.00", "Offline", samples_per_second=1.0, settings={"batch_size": 64})
    assert limits.target_warning({**CFG, "offline_expected_qps": 200}, "Offline", base) is None   # 2x: fine
    text = limits.target_warning({**CFG, "offline_expected_qps": 1000}, "Offline", base)
    assert text.startswith("WARNING: Offline offline_expected_qps 1000 is 10x the 100/s this system measured in its "
                           f"newest VALID run with the same backend, model, precision and batch size ({newest}): "
                           "LoadGen will issue one query sized for that rate")
    assert "it will end INVALID at max_duration (2400 s)" in text
    assert text.endswith("Lower --offline_expected_qps (or the config's), or pass it on purpose.")
    unbounded = limits.target_warning({**CFG, "offline_expected_qps": 1000, "max_duration": 0}, "Offline", base)
    assert "and --max_duration=0 leaves it unbounded" in unbounded


def test_server_falls_back_to_offline_of_any_batch_size_and_skips_excluded_runs(tmp_path):
    base = str(tmp_path)
    offline = _summary(base, "2026.01.01-00.00.00", "Offline", samples_per_second=100.0, settings={"batch_size": 64})
    text = limits.target_warning({**CFG, "server_target_qps": 500}, "Server", base)
    assert text.startswith("WARNING: Server server_target_qps 500 is 5x the 100/s") and offline in text
    assert "LoadGen will queue far more queries than the system answers" in text
    assert limits.target_warning({**CFG, "server_target_qps": 500}, "Server", base,
                                 exclude=os.path.join(base, "2026.01.01-00.00.00")) is None
    _summary(base, "2026.01.02-00.00.00", "Offline", samples_per_second=100.0, interrupted=True)
    _summary(base, "2026.01.03-00.00.00", "Offline", samples_per_second=100.0, audit="TEST04")
    _summary(base, "2026.01.04-00.00.00", "Offline", samples_per_second=100.0, test_mode="AccuracyOnly")
    assert limits.measured_capacity(CFG, "Server", base) == (100.0, offline)


def test_remove_if_empty(tmp_path):
    empty = tmp_path / "run1"
    (empty / "CPU" / "resnet50" / "Offline").mkdir(parents=True)
    limits.remove_if_empty(str(empty))
    assert not empty.exists()
    kept = tmp_path / "run2"
    (kept / "CPU" / "resnet50").mkdir(parents=True)
    (kept / "CPU" / "resnet50" / "user.conf").write_text("x")
    limits.remove_if_empty(str(kept))
    assert (kept / "CPU" / "resnet50" / "user.conf").exists()
    limits.remove_if_empty(str(tmp_path / "missing"))
