"""Staged trees that stay honest: the harness's files outside the submission root, logs that must agree with each
other, safe submitter names. Null-backend Offline runs on 16 real ImageNet images, staged as an open dry run."""
import hashlib
import json
import os
import shutil

import pytest

from conftest import run_main

pytestmark = pytest.mark.slow
SYSTEM = "CPU"
SCEN = os.path.join("open", "TestOrg", "results", SYSTEM, "resnet50", "Offline")


def _ok(result):
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def staged(val16, tmp_path_factory):
    map_path, prep = val16
    base = tmp_path_factory.mktemp("integrity")
    logs, sub = str(base / "logs"), str(base / "sub")
    run = ("--action=run_harness", f"--system_name={SYSTEM}", "--model=efficientnet-lite0", "--backend=null",
           f"--map_path={map_path}", f"--preprocessed_data_dir={prep}", f"--log_dir={logs}", "--scenarios=Offline",
           "--min_duration=300", "--offline_expected_qps=6000000")
    _ok(run_main(*run))
    assert run_main(*run, "--test_mode=AccuracyOnly").returncode == 3     # the null backend's answers are wrong
    _ok(run_main("--action=update_results", f"--system_name={SYSTEM}", f"--log_dir={logs}", f"--results_dir={sub}",
                 "--submitter=TestOrg", "--division=open", "--scenarios=Offline", "--dry_run"))
    _ok(run_main("--action=truncate_results", f"--results_dir={sub}"))
    _ok(run_main("--action=summarize_results", f"--results_dir={sub}"))
    return {"logs": logs, "sub": sub}


def _copy(staged, tmp_path):
    sub = str(tmp_path / "sub")
    shutil.copytree(staged["sub"], sub)
    shutil.copytree(staged["sub"] + ".records", sub + ".records")
    return sub


def _rehash(sub):
    """What a tamperer would do: make the staging record match the edited files."""
    path = os.path.join(sub + ".records", "staging_record.json")
    record = json.load(open(path))
    for entry in record["systems"].values():
        for rel in entry["files"]:
            entry["files"][rel] = hashlib.sha256(open(os.path.join(sub, rel), "rb").read()).hexdigest()
    json.dump(record, open(path, "w"))


def _check(sub):
    return run_main("--action=check_submission", f"--results_dir={sub}", "--structure_only")


def test_submission_root_holds_only_what_the_checker_reads(staged):
    assert os.listdir(staged["sub"]) == ["open"]
    records = sorted(os.listdir(staged["sub"] + ".records"))
    assert records == ["DRY_RUN.txt", "accuracy_log_backup", "results_summary.csv", "staging_record.json"]
    result = _ok(_check(staged["sub"]))
    assert "Project check: PASS (0 structural" in result.stdout


def test_edited_summary_and_detail_with_a_rehashed_record_fail(staged, tmp_path):
    sub = _copy(staged, tmp_path)
    run1 = os.path.join(sub, SCEN, "performance", "run_1")
    summary = os.path.join(run1, "mlperf_log_summary.txt")
    text = open(summary).read()
    shown = [l for l in text.splitlines() if l.startswith("Samples per second")][0]
    open(summary, "w").write(text.replace(shown, "Samples per second: 999999"))
    detail = os.path.join(run1, "mlperf_log_detail.txt")   # an edit of the detail log elsewhere (its latency)
    dtext = open(detail).read()
    open(detail, "w").write(dtext.replace('"key": "result_min_latency_ns", "value": ',
                                          '"key": "result_min_latency_ns", "value": 1'))
    _rehash(sub)
    result = _check(sub)
    assert result.returncode == 1, result.stdout
    errors = [l for l in result.stdout.splitlines() if l.startswith("ERROR")]
    assert any("mlperf_log_summary.txt: Samples per second '999999' disagrees with mlperf_log_detail.txt "
               "result_samples_per_second" in l for l in errors), result.stdout
    assert any("Min latency (ns)" in l and "disagrees" in l for l in errors), result.stdout
    assert not any("changed since it was staged" in l for l in errors)   # the record was re-hashed


def test_edited_accuracy_with_a_rehashed_record_fails(staged, tmp_path):
    sub = _copy(staged, tmp_path)
    txt = os.path.join(sub, SCEN, "accuracy", "accuracy.txt")
    lines = open(txt).read().splitlines()
    lines[0] = "accuracy=81.250%, good=13, total=16"     # consistent in itself, not with the accuracy log
    open(txt, "w").write("\n".join(lines) + "\n")
    _rehash(sub)
    result = _check(sub)
    assert result.returncode == 1
    assert "good=13, but the accuracy log has 0 correct answers against the val map" in result.stdout, result.stdout


def test_leftovers_at_the_root_fail_and_staging_moves_them_out(staged, tmp_path):
    sub = _copy(staged, tmp_path)
    os.rename(os.path.join(sub + ".records", "accuracy_log_backup"), os.path.join(sub, "accuracy_log_backup"))
    open(os.path.join(sub, "notes.txt"), "w").write("x\n")
    result = _check(sub)
    assert result.returncode == 1
    assert "ERROR      accuracy_log_backup: at the submission root" in result.stdout, result.stdout
    assert "ERROR      notes.txt: at the submission root" in result.stdout
    from harness.submission.integrity import move_legacy_files
    assert move_legacy_files(sub) == ["accuracy_log_backup"]     # what update_results does first
    assert sorted(os.listdir(sub)) == ["notes.txt", "open"]
    assert os.path.isdir(os.path.join(sub + ".records", "accuracy_log_backup"))


@pytest.mark.parametrize("name", ["..", "../evil", "a/b", ".hidden"])
def test_unsafe_submitter_is_refused_before_anything_is_written(staged, tmp_path, name):
    result = run_main("--action=update_results", f"--system_name={SYSTEM}", f"--log_dir={staged['logs']}",
                      f"--results_dir={tmp_path}/sub", f"--submitter={name}", "--division=open",
                      "--scenarios=Offline", "--dry_run")
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert "without '..' or path separators" in result.stderr
    assert not os.path.exists(tmp_path / "sub") and not os.path.exists(f"{tmp_path}/sub.records")


def _errors(result):
    assert result.returncode == 1, result.stdout
    return [line for line in result.stdout.splitlines() if line.startswith("ERROR")]


def test_links_stray_files_and_an_edited_src_are_reported(staged, tmp_path):
    """A log replaced by a symlink to an identical copy outside the tree (its sha256 still matches), a link to /etc,
    stray files in open/ and open/TestOrg/, and an edited src/ file: each is an ERROR naming the path."""
    sub = _copy(staged, tmp_path)
    detail = os.path.join(sub, SCEN, "performance", "run_1", "mlperf_log_detail.txt")
    outside = str(tmp_path / "outside_detail.txt")
    shutil.copyfile(detail, outside)
    os.remove(detail)
    os.symlink(outside, detail)
    os.symlink("/etc", os.path.join(sub, SCEN, "etc"))
    open(os.path.join(sub, "open", "stray.txt"), "w").write("x\n")
    open(os.path.join(sub, "open", "TestOrg", "notes.md"), "w").write("x\n")
    src = os.path.join(sub, "open", "TestOrg", "src", "Makefile")
    open(src, "a").write("\n# edited\n")
    errors = _errors(_check(sub))
    rel = os.path.relpath(detail, sub)
    assert any(l.startswith(f"ERROR      {rel}: a symbolic link (to {outside})") for l in errors), errors
    assert any(f"{os.path.join(SCEN, 'etc')}: a symbolic link (to /etc)" in l for l in errors), errors
    assert any("open/stray.txt: a file in open/, which holds only <submitter>/ folders" in l for l in errors), errors
    assert any("open/TestOrg/notes.md: not part of a submission" in l for l in errors), errors
    assert any("open/TestOrg/src/Makefile: changed since it was staged" in l for l in errors), errors


def test_runs_of_another_machine_are_refused_at_staging_and_reported(staged, tmp_path):
    """A run whose summary.json says it ran on a machine detected as H200x1 cannot be staged as the CPU system;
    a record that says so (an older harness staged it) is reported by check_submission."""
    logs = str(tmp_path / "logs")
    shutil.copytree(staged["logs"], logs)
    for root, _, files in os.walk(logs):
        if "summary.json" in files:
            path = os.path.join(root, "summary.json")
            summary = json.load(open(path))
            summary["detected_system"] = "H200x1"
            json.dump(summary, open(path, "w"))
    result = run_main("--action=update_results", f"--system_name={SYSTEM}", f"--log_dir={logs}",
                      f"--results_dir={tmp_path}/sub2", "--submitter=TestOrg", "--division=open",
                      "--scenarios=Offline", "--dry_run")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "ran on a machine detected as 'H200x1', but would be staged as system 'CPU'" in result.stderr
    assert "Stage it as --system_name=H200x1" in result.stderr
    sub = _copy(staged, tmp_path)
    path = os.path.join(sub + ".records", "staging_record.json")
    record = json.load(open(path))
    record["systems"][f"open/TestOrg/{SYSTEM}"]["scenarios"]["Offline"]["detected_system"] = "H200x1"
    json.dump(record, open(path, "w"))
    assert any("ran on a machine detected as 'H200x1'" in l for l in _errors(_check(sub)))


def test_the_same_runs_under_two_submitters_are_refused_and_reported(staged, tmp_path):
    sub = _copy(staged, tmp_path)
    result = run_main("--action=update_results", f"--system_name={SYSTEM}", f"--log_dir={staged['logs']}",
                      f"--results_dir={sub}", "--submitter=OtherOrg", "--division=open", "--scenarios=Offline",
                      "--dry_run")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "is already staged as open/TestOrg/results/CPU/resnet50/Offline/performance/run_1/" in result.stderr
    assert not os.path.exists(os.path.join(sub, "open", "OtherOrg"))
    # what a hand-made copy looks like: the other submitter's folder and a record entry for it
    shutil.copytree(os.path.join(sub, "open", "TestOrg"), os.path.join(sub, "open", "OtherOrg"))
    path = os.path.join(sub + ".records", "staging_record.json")
    record = json.load(open(path))
    entry = json.loads(json.dumps(record["systems"][f"open/TestOrg/{SYSTEM}"]).replace("open/TestOrg/",
                                                                                         "open/OtherOrg/"))
    record["systems"][f"open/OtherOrg/{SYSTEM}"] = entry
    json.dump(record, open(path, "w"))
    errors = _errors(_check(sub))
    assert any("open/TestOrg/results/CPU/resnet50/Offline/performance/run_1/mlperf_log_detail.txt: the same run as "
               "open/OtherOrg/" in l for l in errors), errors
