"""RunConfig (code/harness/config/runconfig.py): built once, frozen, every value checked before anything runs.

Every bad value the issue lists (issue 9, "Why") exits 2 with one line naming the flag or the config file + block +
key, the value and the allowed range, and writes nothing: no log folder, no engine, no user.conf.
"""
import dataclasses
import json
import os
import shutil

import pytest

from conftest import ROOT, VAL_MAP_1300, run_main
from harness.config import runconfig
from harness.core.errors import HarnessError
from harness.actions import parse_args
from harness.config.scenarios import SCENARIOS

WATCHED = [os.path.join(ROOT, "build", "engines"), os.path.join(ROOT, "measurements")]


def _snapshot(*folders):
    out = {}
    for folder in folders:
        for base, dirs, files in os.walk(folder):
            for name in dirs + files:
                path = os.path.join(base, name)
                out[path] = os.stat(path).st_mtime_ns
    return out


def _refused(tmp_path, *argv, action="run"):
    """code/main.py with a bad value: exit 2, one line on stderr, nothing written. Returns that line."""
    log_dir = tmp_path / "logs"
    before = _snapshot(*WATCHED)
    result = run_main(f"--action={action}", "--system_name=CPU", f"--log_dir={log_dir}", f"--map_path={VAL_MAP_1300}",
                      *argv)
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ERROR: "), result.stderr
    assert not log_dir.exists(), "a log folder was written"
    assert _snapshot(*WATCHED) == before, "an engine or user.conf was written"
    return lines[0]


@pytest.mark.parametrize("argv,needle", [
    (["--scenarios=Server", "--server_target_qps=0"], "--server_target_qps=0.0: expected a number > 0."),
    (["--scenarios=Server", "--server_target_qps=-5"], "--server_target_qps=-5.0: expected a number > 0."),
    (["--scenarios=Server", "--server_target_qps=nan"], "--server_target_qps=nan: expected a number > 0."),
    (["--scenarios=Server", "--server_target_qps=inf"], "--server_target_qps=inf: expected a number > 0."),
    (["--min_duration=-1000"], "--min_duration=-1000: expected an integer >= 0."),
    (["--batch_size=-4"], "--batch_size=-4: expected an integer >= 1."),
    (["--workers=0"], "--workers=0: expected an integer >= 1."),
    (["--performance_sample_count=0"], "--performance_sample_count=0: expected an integer >= 1."),
    (["--scenarios=SingleStream", "--batch_size=64"], "--batch_size=64: SingleStream issues one sample per query"),
    (["--offline_expected_qps=0"], "--offline_expected_qps=0.0: expected a number > 0."),
    (["--max_duration=-1"], "--max_duration=-1: expected an integer >= 0."),
    (["--min_duration=2000", "--max_duration=1000"], "--max_duration=1000: max_duration 1000 ms must be 0 (no limit) "
                                                     "or at least min_duration (2000 ms)"),
    (["--min_query_count=10", "--max_query_count=5"], "--max_query_count=5: below min_query_count 10"),
    (["--backend=torch", "--threads=4"], "--threads: the torch backend does not read it"),
    (["--config_ver=nope"], "--config_ver=nope: block 'CPU'"),
    (["--precision=fp16"], "--precision=fp16: the onnxruntime backend builds fp32, int8 engines."),
])
def test_bad_flag_values_exit_2_in_one_line_writing_nothing(tmp_path, argv, needle):
    assert needle in _refused(tmp_path, *argv)


def _configs_with(tmp_path, scenario, block, values):
    """A copy of configs/resnet50 with `values` added to one block."""
    folder = tmp_path / "configs"
    shutil.copytree(os.path.join(ROOT, "configs", "resnet50"), folder)
    path = folder / scenario / "config.json"
    data = json.loads(path.read_text())
    data[block].update(values)
    path.write_text(json.dumps(data))
    return folder, path


@pytest.mark.parametrize("values,needle", [
    ({"ofline_expected_qps": 10}, "key 'ofline_expected_qps': unknown config key; did you mean "
                                  "'offline_expected_qps'?"),
    ({"use_deque_limit": True}, "key 'use_deque_limit': this harness does not implement it"),
    ({"offline_expected_qps": 0}, "key 'offline_expected_qps'=0: expected a number > 0."),
    ({"batch_size": -4}, "key 'batch_size'=-4: expected an integer >= 1."),
])
def test_bad_config_values_exit_2_naming_file_block_and_key(tmp_path, values, needle):
    folder, path = _configs_with(tmp_path, "Offline", "CPU", values)
    line = _refused(tmp_path, f"--config_dir={folder}")
    assert f"{path}, block 'CPU', " in line and needle in line


def test_single_stream_batch_from_a_config_names_the_file(tmp_path):
    folder, path = _configs_with(tmp_path, "SingleStream", "CPU", {"batch_size": 64})
    line = _refused(tmp_path, f"--config_dir={folder}", "--scenarios=SingleStream")
    assert f"{path}, block 'CPU', key 'batch_size'=64: SingleStream issues one sample per query" in line


def test_a_bad_value_in_a_later_scenario_stops_the_first_too(tmp_path):
    # Offline is fine, SingleStream is not: nothing runs, not even Offline.
    _refused(tmp_path, "--scenarios=Offline,SingleStream", "--batch_size=64")


def _rc(*argv, scenario="Offline", system="CPU", ver="default"):
    return runconfig.build(parse_args(["--action=run"] + list(argv)), scenario, system, ver)


def test_run_config_is_frozen_and_typed():
    rc = _rc("--batch_size=16", "--offline_expected_qps=123")
    assert rc.batch_size == 16 and rc.loadgen.offline_expected_qps == 123.0
    assert rc.scenario is SCENARIOS["Offline"] and rc.backend.name == "onnxruntime"
    assert rc.backend.get("threads") == 2 and "gpu_copy_streams" not in rc.backend.as_dict()
    assert rc.source("batch_size") == "--batch_size"
    assert rc.source("threads").endswith("config.json, block 'CPU', key 'threads'")
    with pytest.raises(dataclasses.FrozenInstanceError):
        rc.batch_size = 3


def test_batch_rules_and_fast():
    assert _rc(scenario="SingleStream").batch_size == 1
    assert _rc("--batch_size=1", scenario="SingleStream").batch_size == 1
    assert _rc(scenario="MultiStream").batch_size == 8
    fast = _rc("--fast")
    assert fast.loadgen.min_duration_ms == 60000 and fast.loadgen.min_query_count == 1
    assert _rc("--fast", scenario="Server").loadgen.min_query_count is None
    assert _rc("--fast", "--min_duration=500").loadgen.min_duration_ms == 500


def test_settings_keep_the_keys_backends_and_summaries_read():
    s = _rc(scenario="Server").settings()
    for key in ("system_id", "config_block", "config_ver", "scenario", "backend", "model", "precision", "batch_size",
                "server_target_qps", "server_batch_timeout_us", "threads", "workers"):
        assert key in s, key
    assert s["scenario"] == "Server"


def test_new_keys_of_other_issues_are_in_the_schema():
    rc = _rc("--scenarios=Server", "--server_coalesce_queries", "--min_duration=500", "--max_duration=1000",
             scenario="Server")
    assert rc.loadgen.server_coalesce_queries is True and rc.loadgen.max_duration_ms == 1000
    args = parse_args(["--action=generate_engines", "--onnx_only", "--verify", "--tune_probe_ms=500",
                       "--tune_confirm_runs=2", "--tune_confirm_ms=1000", "--tune_write", "--report",
                       "--test_mode=FindPeakPerformance"])
    assert args.onnx_only and args.verify and args.tune_write and args.report
    for action in ("tune", "report", "generate_conf_files", "info"):
        assert parse_args([f"--action={action}"]).action == action
    with pytest.raises(HarnessError, match="--tune_confirm_runs=0: expected an integer >= 1"):
        parse_args(["--tune_confirm_runs=0"])


def test_config_ver_list_builds_one_run_config_each(tmp_path):
    from harness.config.context import run_configs
    folder, _ = _configs_with(tmp_path, "Offline", "CPU", {"config_ver": {"small": {"batch_size": 2}}})
    args = parse_args(["--action=run", "--system_name=CPU", f"--config_dir={folder}", "--config_ver=default,small",
                       "--scenarios=Offline,SingleStream"])
    with pytest.raises(HarnessError, match="--config_ver=small: block 'CPU' .*SingleStream"):
        run_configs(args)          # SingleStream has no `small`: named before anything runs
    args = parse_args(["--action=run", "--system_name=CPU", f"--config_dir={folder}", "--config_ver=all"])
    rcs = run_configs(args)
    assert [(rc.config_ver, rc.batch_size) for rc in rcs] == [("default", 8), ("small", 2)]
    assert rcs[1].source("batch_size").endswith("block 'CPU.config_ver.small', key 'batch_size'")
