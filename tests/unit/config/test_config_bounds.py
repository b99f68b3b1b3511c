"""Upper bounds from the machine and LoadGen (harness/config/bounds.py), checked when the RunConfig is built.

Each number that sizes LoadGen's schedule, the SUT's buffers or its threads is refused past what this machine can
hold, naming the flag (or file + block + key), the value and the limit, before LoadGen starts (issue 19). The values
used are far past any machine (1e9 q/s for 600 s, 4e9 samples a batch), so the tests do not depend on this one.
"""
import json

import pytest

from conftest import run_main
from harness.actions import parse_args
from harness.config import bounds, runconfig
from harness.core.errors import HarnessError


def _build(*argv, scenario="Offline", config_dir=None):
    return runconfig.build(parse_args(["--action=run", *argv]), scenario, "CPU", "default", config_dir)


@pytest.mark.parametrize("argv, scenario, needles", [
    (["--batch_size=4000000000"], "Offline", ["--batch_size=4000000000", "one batch of the model's input",
                                              "Use a batch_size up to"]),
    (["--offline_expected_qps=1e9"], "Offline", ["--offline_expected_qps=1e+09", "Offline would schedule",
                                                 "Set offline_expected_qps to at most", "or shorten min_duration"]),
    (["--server_target_qps=1e9"], "Server", ["--server_target_qps=1e+09", "Server would schedule",
                                             "Set server_target_qps to at most"]),
    (["--single_stream_expected_latency_ns=1"], "SingleStream",
     ["--single_stream_expected_latency_ns=1", "SingleStream would schedule",
      "Set single_stream_expected_latency_ns to at least"]),
    (["--multi_stream_expected_latency_ns=1"], "MultiStream", ["MultiStream would schedule"]),
    (["--performance_sample_count=1000000000000"], "Offline",
     ["--performance_sample_count=1000000000000", "more than the 50,000 samples of the data set", "val_map.txt",
      "Use at most 50,000"]),
    (["--workers=30000"], "Offline", ["--workers=30000", "x the", "cores of this machine"]),
    (["--threads=100000"], "Offline", ["--threads=100000", "cores of this machine"]),
    (["--min_query_count=100000000000"], "Offline", ["--min_query_count=100000000000", "Use a min_query_count up to"]),
])
def test_numbers_past_the_machine_are_refused_naming_flag_value_and_limit(argv, scenario, needles):
    with pytest.raises(HarnessError) as e:
        _build(*argv, scenario=scenario)
    for needle in needles:
        assert needle in str(e.value)


def test_workers_times_threads_is_bounded_too():
    limit = bounds.THREADS_PER_CORE * bounds.cores()
    with pytest.raises(HarnessError, match="so that their product is at most"):
        _build(f"--workers={limit}", f"--threads={limit}")


def test_a_shorter_run_or_a_lower_rate_is_accepted():
    """Sane values of the same flags pass: the bounds sit far above what a real system reaches."""
    assert _build("--offline_expected_qps=5000").loadgen.offline_expected_qps == 5000
    assert _build("--server_target_qps=1000", scenario="Server").loadgen.server_target_qps == 1000
    assert _build("--workers=2", "--threads=2").workers == 2
    assert _build("--performance_sample_count=50000").loadgen.performance_sample_count == 50000


def test_max_query_count_caps_the_schedule():
    rc = _build("--single_stream_expected_latency_ns=1", "--max_query_count=1000", "--min_query_count=100",
                scenario="SingleStream")
    assert rc.loadgen.max_query_count == 1000


def test_a_config_value_past_the_bound_names_file_block_and_key(tmp_path):
    (tmp_path / "Offline").mkdir()
    (tmp_path / "Offline" / "config.json").write_text(json.dumps({"default": {"batch_size": 1e20}, "CPU": {}}))
    with pytest.raises(HarnessError) as e:
        _build(config_dir=str(tmp_path))
    assert "config.json, block 'default', key 'batch_size'=100000000000000000000" in str(e.value)


def test_multistream_batch_below_samples_per_query_is_refused():
    with pytest.raises(HarnessError) as e:
        _build("--batch_size=4", scenario="MultiStream")
    assert "--batch_size=4: MultiStream issues 8 samples per query" in str(e.value)
    assert "at least 8" in str(e.value)
    assert _build("--batch_size=16", scenario="MultiStream").batch_size == 16


def test_main_exits_2_with_one_line_before_loadgen_starts(tmp_path):
    r = run_main("--action=run_harness", "--scenarios=Server", "--server_target_qps=1e9",
                 f"--log_dir={tmp_path / 'logs'}")
    assert r.returncode == 2, r.stderr
    assert "ERROR: --server_target_qps=1e+09: Server would schedule" in r.stderr
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "logs").exists()


def test_actions_that_do_not_run_here_are_held_to_the_largest_host():
    """generate_conf_files / info name other systems' blocks (a DGX's 989,280 q/s): only what no host holds is
    refused there; the bounds of this machine apply where LoadGen starts here."""
    argv = ["--offline_expected_qps=5000000", "--min_duration=600000"]
    rc = runconfig.build(parse_args(["--action=generate_conf_files", *argv]), "Offline", "CPU")
    assert rc.loadgen.offline_expected_qps == 5e6
    with pytest.raises(HarnessError, match="the largest host this harness plans for"):
        runconfig.build(parse_args(["--action=info", "--offline_expected_qps=1e9"]), "Offline", "CPU")
    if bounds.memory_bytes() < 5e6 * 660 * bounds.BYTES_PER_SCHEDULED_SAMPLE * 2:
        with pytest.raises(HarnessError, match="of this machine"):
            _build(*argv)
