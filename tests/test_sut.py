"""The SUT at rate: LoadGen's query coalescing in Server, the Python fast path and the native core."""
import json
import os

import pytest

from conftest import VAL_MAP_1300, run_main
from harness.loadgen_run import parse_detail

SYSTEM = "CPU"


def _run(prep_dir, log_dir, *extra):
    args = ("--action=run_harness", f"--system_name={SYSTEM}", "--model=efficientnet-lite0", "--backend=null",
            f"--map_path={VAL_MAP_1300}", f"--preprocessed_data_dir={prep_dir}", f"--log_dir={log_dir}", *extra)
    result = run_main(*args)
    assert result.returncode == 0, result.stderr[-3000:]
    (stamp,) = os.listdir(log_dir)
    return os.path.join(log_dir, stamp)


def _scenario(run_root, scenario):
    folder = os.path.join(run_root, SYSTEM, "resnet50", scenario)
    with open(os.path.join(folder, "summary.json")) as f:
        summary = json.load(f)
    with open(os.path.join(folder, "mlperf_log_detail.txt")) as f:
        detail, errors = parse_detail(f)
    return summary, detail, errors


@pytest.mark.slow
def test_null_server_at_rate_is_valid_with_coalescing(prep_dir, tmp_path):
    """Coalescing is on by default in Server (configs/resnet50/Server/config.json), and LoadGen received it."""
    root = _run(prep_dir, tmp_path / "logs", "--scenarios=Server", "--min_duration=2000", "--min_query_count=100",
                "--server_target_qps=20000", "--batch_size=64", "--server_batch_timeout_us=1000")
    summary, detail, errors = _scenario(root, "Server")
    assert detail["requested_server_coalesce_queries"] is True
    assert summary["server_coalesce_queries"] is True
    assert summary["settings"]["server_coalesce_queries"] is True
    assert summary["result_validity"] == "VALID", (summary, errors)
    assert detail["result_scheduled_samples_per_sec"] > 10000
    assert not errors


@pytest.mark.slow
def test_coalescing_can_be_turned_off(prep_dir, tmp_path):
    root = _run(prep_dir, tmp_path / "logs", "--scenarios=Server", "--min_duration=300", "--min_query_count=100",
                "--server_target_qps=2000", "--server_coalesce_queries=false")
    summary, detail, _ = _scenario(root, "Server")
    assert detail["requested_server_coalesce_queries"] is False
    assert summary["server_coalesce_queries"] is False
