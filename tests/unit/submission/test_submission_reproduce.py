"""harness/submission/reproduce.py: the README's "Reproduce" section from the recorded commands."""
import shlex
from types import SimpleNamespace

from harness.submission import reproduce


def test_run_args_drops_action_and_test_mode():
    assert reproduce.run_args("code/main.py --action=run_harness --scenarios=Offline --test_mode=AccuracyOnly "
                              "--audit_test=TEST01 --fast") == ["--scenarios=Offline", "--fast"]
    assert reproduce.run_args("/x/code/main.py --action=run") == []
    for not_recorded in (None, "", "python foo.py --action=run", "code/main.py --scenarios=Offline"):
        assert reproduce.run_args(not_recorded) is None


def _run(command, precision="fp32", dataset=None):
    summary = {"command": command} if command else {}
    if dataset:
        summary["dataset"] = dataset
    return SimpleNamespace(summary=summary, fingerprint={"model": "resnet50", "precision": precision})


def test_every_step_in_order_for_an_int8_run():
    perf = "code/main.py --action=run_harness --scenarios=Offline --precision=int8 --data_dir=/old"
    acc = "code/main.py --action=run_harness --scenarios=Offline --test_mode=AccuracyOnly"
    lines = reproduce.reproduce_lines({"performance": _run(perf, "int8", {"map": "maps/val.txt"}),
                                       "accuracy": _run(acc, "int8")}, "src")
    assert lines[:6] == ["## Reproduce", "", "From the harness (`src/` of this submission; code/README.md there "
                         "explains each step):", "", "```sh", "make venv"]
    data = f'--scenarios=Offline --precision=int8 --data_dir={reproduce.DATA_DIR_PLACEHOLDER}'
    assert lines[6:12] == [
        'make download_model RUN_ARGS="--model=resnet50"',
        f'make preprocess_data RUN_ARGS="{data}"',
        f'make calibrate RUN_ARGS="{data}"',
        'make generate_engines RUN_ARGS="--scenarios=Offline --precision=int8 --data_dir=/old"',
        'make run_harness RUN_ARGS="--scenarios=Offline --precision=int8 --data_dir=/old"   # performance',
        'make run_harness RUN_ARGS="--scenarios=Offline --test_mode=AccuracyOnly"   # accuracy']
    check = [line for line in lines if reproduce.ACCURACY_SCRIPT in line]
    assert check == [f"python3 <mlcommons/inference>/{reproduce.ACCURACY_SCRIPT} --mlperf-accuracy-file "
                     "accuracy/mlperf_log_accuracy.json --imagenet-val-file maps/val.txt --dtype int32"]
    assert lines[-2:] == ["```", ""]


def test_fp32_skips_calibration_and_the_model_flag_wins():
    perf = "code/main.py --action=run_harness --model=efficientnet-lite0"
    lines = reproduce.reproduce_lines({"performance": _run(perf)}, "code")
    assert 'make download_model RUN_ARGS="--model=efficientnet-lite0"' in lines
    assert "# make calibrate: only INT8 engines need it (this one is fp32)" in lines
    assert any("--imagenet-val-file data_maps/imagenet/val_map.txt" in line for line in lines)


def test_runs_without_a_recorded_command():
    lines = reproduce.reproduce_lines({"performance": _run(None), "TEST04": _run("something else")}, "src")
    assert "# the performance run recorded no command; see the table above" in lines
    assert "# (not recorded)   # performance" in lines
    assert "# (not recorded) something else   # TEST04" in lines
    assert not any(line.startswith("make download_model") for line in lines)


def test_recorded_flags_are_shell_quoted_in_every_step():
    """A recorded `--log_dir=$(touch pwned)` (shlex.join'd by run_harness) is pasted as a literal, not run."""
    perf = "code/main.py --action=run_harness " + shlex.join(["--log_dir=$(touch pwned)", "--map_path=a b"])
    lines = reproduce.reproduce_lines({"performance": _run(perf)}, "src")
    steps = [line for line in lines if line.startswith("make ") and "RUN_ARGS" in line and "log_dir" in line]
    assert len(steps) == 3      # preprocess_data, generate_engines, the run itself
    for line in steps:
        assert "$(touch" not in line.replace("$$(touch", "")
        value = shlex.split(line.split("   #")[0])[2][len("RUN_ARGS="):].replace("$$", "$")
        assert "--log_dir=$(touch pwned)" in shlex.split(value) and "--map_path=a b" in shlex.split(value)


def test_an_unrecorded_command_stays_one_comment_line():
    lines = reproduce.reproduce_lines({"performance": _run(None), "TEST04": _run("x\ntouch pwned")}, "src")
    assert "# (not recorded) x touch pwned   # TEST04" in lines
