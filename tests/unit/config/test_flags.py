import os

import pytest

from conftest import ROOT, run_main
from harness.core import env
from harness.core.errors import HarnessError
from harness.actions import FLAGS, markdown_table, parse_args
from harness.config.flags import overrides


ENV_HEADING = "## Environment variables"


def _table_rows(after_env_heading: bool) -> str:
    """The `|` rows of command_flags.md before (the flags) or after (the environment) its environment heading."""
    with open(os.path.join(ROOT, "command_flags.md")) as f:
        text = f.read()
    assert ENV_HEADING in text, f"command_flags.md has no {ENV_HEADING!r} section"
    part = text.split(ENV_HEADING, 1)[1 if after_env_heading else 0]
    return "\n".join(line for line in part.splitlines() if line.startswith("|"))


def test_command_flags_md_matches_the_flag_table():
    assert _table_rows(after_env_heading=False) == markdown_table(), \
        "command_flags.md has drifted from code/harness/config/flags.py: regenerate its table from markdown_table()"


def test_command_flags_md_matches_the_environment_table():
    assert _table_rows(after_env_heading=True) == env.markdown_table(), \
        "command_flags.md has drifted from code/harness/core/env.py: regenerate its table from env.markdown_table()"


def test_required_flags_exist():
    names = {f.name for f in FLAGS}
    for name in ("benchmarks", "scenarios", "test_mode", "config_ver", "system_name", "backend", "model",
                 "model_path", "precision", "data_dir", "map_path", "preprocessed_data_dir", "log_dir", "fast",
                 "min_duration", "min_query_count", "batch_size", "devices", "offline_expected_qps",
                 "server_target_qps", "single_stream_expected_latency_ns", "multi_stream_samples_per_query",
                 "verbose"):
        assert name in names


def test_parse_types_and_overrides():
    args = parse_args(["--action=run_harness", "--scenarios=offline,Server", "--batch_size=16", "--fast",
                       "--server_target_qps=12.5"])
    assert args.scenarios == ["Offline", "Server"]
    assert args.fast is True
    assert overrides(args) == {"batch_size": 16, "server_target_qps": 12.5}


@pytest.mark.parametrize("argv,needle", [
    (["--bogus=1"], "unrecognized arguments: --bogus=1"),
    (["--scenarios=Offlne"], "unknown scenario 'Offlne'"),
    (["--test_mode=Fast"], "invalid choice: 'Fast'"),
    (["--batch_size=big"], "invalid int value: 'big'"),
    (["--benchmarks=bert"], "only resnet50"),
    (["--batch"], "unrecognized arguments"),  # no abbreviations
])
def test_bad_flags_are_errors(argv, needle):
    with pytest.raises(HarnessError, match=needle.replace("(", r"\(")):
        parse_args(argv)


def test_unknown_flag_from_the_command_line_exits_non_zero_without_traceback():
    result = run_main("--action=run_harness", "--scenario=Offline")
    assert result.returncode == 2
    assert "unrecognized arguments: --scenario=Offline" in result.stderr
    assert "command_flags.md" in result.stderr
    assert "Traceback" not in result.stderr
