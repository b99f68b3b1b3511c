"""Submission and audit end to end through code/main.py and the real LoadGen, plus the bad inputs staging refuses.

The end-to-end flow runs the CPU embedded default (ONNX Runtime + EfficientNet-Lite0 on real ImageNet images) in
every scenario the edge category requires, in short mode: performance, AccuracyOnly, TEST01 and TEST04 for each,
then stages them as a dry run, truncates, summarizes and checks. To stay short on 2 shared cores it uses the first
128 images of val-1300, one intra-op thread, and MultiStream queries of 1 sample (the rules fix 8: a dry-run
exception, like the short durations). Bad-input cases use the null backend, which answers instantly.
"""
import csv
import glob
import hashlib
import json
import os
import shutil

import pytest

from conftest import VAL_1300, VAL_MAP_1300, run_main

pytestmark = pytest.mark.slow
SYSTEM = "CPU"
EDGE = ("SingleStream", "MultiStream", "Offline")
SUBSET = 128


@pytest.fixture(scope="module")
def subset(tmp_path_factory, imagenet, effnet_path):
    """The first SUBSET images of val-1300, preprocessed for EfficientNet-Lite0."""
    from resnet50.imagenet import read_map
    from resnet50.preprocessing import preprocess
    from resnet50.models import get_model
    base = tmp_path_factory.mktemp("subset")
    map_path = base / "val_map_subset.txt"
    with open(VAL_MAP_1300) as f:
        map_path.write_text("".join(f.readlines()[:SUBSET]))
    preprocess(get_model("efficientnet-lite0"), read_map(str(map_path)), VAL_1300, str(base / "prep"),
               progress=False)
    return str(map_path), str(base / "prep")


def _common(subset, log_dir, *extra):
    map_path, prep = subset
    return (f"--system_name={SYSTEM}", "--model=efficientnet-lite0", f"--map_path={map_path}",
            f"--preprocessed_data_dir={prep}", f"--log_dir={log_dir}", *extra)


# ONNX Runtime on one thread; settings that give VALID short runs on a busy 2-core machine.
ORT = ("--threads=1", "--workers=1")
STREAMS = ("--scenarios=SingleStream,MultiStream", "--min_duration=300", "--single_stream_expected_latency_ns=4000000",
           "--multi_stream_expected_latency_ns=4000000", "--multi_stream_samples_per_query=1")
OFFLINE = ("--scenarios=Offline", "--min_duration=300", "--min_query_count=1", "--offline_expected_qps=400")


def _ok(result, *codes):
    assert result.returncode in (codes or (0,)), result.stdout[-3000:] + result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr
    return result


@pytest.fixture(scope="module")
def flow(subset, tmp_path_factory):
    base = tmp_path_factory.mktemp("flow")
    logs, sub = base / "logs", base / "submission"
    out = {"logs": str(logs), "sub": str(sub)}
    _ok(run_main("--action=run", *_common(subset, logs, *ORT, *STREAMS)))
    _ok(run_main("--action=run", *_common(subset, logs, *ORT, *OFFLINE)))
    _ok(run_main("--action=run_harness", *_common(subset, logs, *ORT, "--test_mode=AccuracyOnly",
                                                  "--scenarios=" + ",".join(EDGE), "--multi_stream_samples_per_query=1")))
    # rc 1: a performance comparison of sub-second runs on a shared machine may fall outside its tolerance.
    out["audit_streams"] = _ok(run_main("--action=run_audit_harness", *_common(subset, logs, *ORT, *STREAMS)), 0, 1)
    out["audit_offline"] = _ok(run_main("--action=run_audit_harness", *_common(subset, logs, *ORT, *OFFLINE)), 0, 1)
    stage = ("--system_name=" + SYSTEM, f"--log_dir={logs}", f"--results_dir={sub}", "--submitter=TestOrg")
    out["refused"] = run_main("--action=update_results", *stage)
    out["stage"] = _ok(run_main("--action=update_results", *stage, "--dry_run"))
    out["check_before_truncation"] = run_main("--action=check_submission", f"--results_dir={sub}", "--structure_only")
    out["truncate"] = _ok(run_main("--action=truncate_results", f"--results_dir={sub}"))
    out["truncate_again"] = _ok(run_main("--action=truncate_results", f"--results_dir={sub}"))
    out["summarize"] = _ok(run_main("--action=summarize_results", f"--results_dir={sub}"))
    out["check_structure"] = run_main("--action=check_submission", f"--results_dir={sub}", "--structure_only")
    out["check_full"] = run_main("--action=check_submission", f"--results_dir={sub}",
                                 f"--inference_repo={base}/no-checkout")
    return out


def _scenario_dir(flow, scenario):
    return os.path.join(flow["sub"], "closed", "TestOrg", "results", SYSTEM, "resnet50", scenario)


def test_audit_runs_write_verdicts_and_remove_their_audit_config(flow):
    assert not glob.glob(os.path.join(flow["logs"], "**", "audit.config"), recursive=True)
    for scenario in EDGE:
        folders = {}
        for test in ("TEST01", "TEST04"):
            (folders[test],) = glob.glob(os.path.join(flow["logs"], "*", SYSTEM, "resnet50", scenario, test))
            perf = open(os.path.join(folders[test], "verify_performance.txt")).read()
            assert "reference score = " in perf and "test score = " in perf
            assert perf.rstrip().splitlines()[-1] in ("TEST PASS", "TEST FAIL: test score outside the tolerance")
            summary = json.load(open(os.path.join(folders[test], "summary.json")))
            assert summary["audit"]["test"] == test and "mode = 2" in summary["audit"]["config"]
        acc = open(os.path.join(folders["TEST01"], "verify_accuracy.txt")).read()
        # The responses logged in performance mode are the accuracy run's, byte for byte.
        assert acc.rstrip().endswith("TEST PASS"), acc
        assert "mismatched = 0" in acc
    detail = open(glob.glob(os.path.join(flow["logs"], "*", SYSTEM, "resnet50", "Offline", "TEST04",
                                         "mlperf_log_detail.txt"))[0]).read()
    assert '"effective_performance_issue_same", "value": true' in detail
    assert "Found Audit Config file" in detail


def test_staging_refuses_short_runs_without_dry_run(flow):
    result = flow["refused"]
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "do not meet the v6.1 rules" in result.stderr
    assert "min_duration 300 ms is below the rules' 600000 ms" in result.stderr
    assert "performance sample count 128 is below the rules' 1024" in result.stderr
    assert "MultiStream uses 1 samples per query; the rules fix 8" in result.stderr
    assert "--dry_run" in result.stderr


def test_dry_run_tree_has_the_round_layout(flow):
    assert "DRY RUN" in flow["stage"].stdout
    base = os.path.join(flow["sub"], "closed", "TestOrg")
    for scenario in EDGE:
        d = _scenario_dir(flow, scenario)
        for rel in ("README.md", "user.conf", "measurements.json", "performance/run_1/mlperf_log_detail.txt",
                    "performance/run_1/mlperf_log_summary.txt", "accuracy/mlperf_log_detail.txt",
                    "accuracy/mlperf_log_summary.txt", "accuracy/mlperf_log_accuracy.json", "accuracy/accuracy.txt",
                    "TEST01/verify_accuracy.txt", "TEST01/verify_performance.txt",
                    "TEST01/accuracy/mlperf_log_accuracy.json", "TEST01/accuracy/baseline_accuracy.txt",
                    "TEST01/accuracy/compliance_accuracy.txt", "TEST01/performance/run_1/mlperf_log_detail.txt",
                    "TEST04/verify_performance.txt", "TEST04/performance/run_1/mlperf_log_summary.txt"):
            assert os.path.isfile(os.path.join(d, rel)), (scenario, rel)
        m = json.load(open(os.path.join(d, "measurements.json")))
        assert m["starting_weights_filename"] == "efficientnet_lite0.onnx" and m["weight_data_types"] == "fp32"
        readme = open(os.path.join(d, "README.md")).read()
        for step in ("make download_model RUN_ARGS=", "make preprocess_data RUN_ARGS=", "--data_dir=",
                     "# make calibrate", "make generate_engines RUN_ARGS=", "make run_harness RUN_ARGS=",
                     "make run_audit_harness RUN_ARGS=", "accuracy-imagenet.py", "--dtype int32"):
            assert step in readme, (scenario, step)
    desc = json.load(open(os.path.join(base, "systems", f"{SYSTEM}.json")))
    from harness.submission.rules import SYSTEM_REQUIRED_FIELDS
    assert set(SYSTEM_REQUIRED_FIELDS) <= set(desc)
    assert desc["submitter"] == "TestOrg" and desc["division"] == "closed" and desc["system_type"] == "edge"
    assert desc["framework"].startswith("ONNX Runtime ") and desc["accelerators_per_node"] == "0"
    assert desc["host_processor_core_count"] >= 1 and desc["status"].startswith("TODO")   # from the template
    assert os.path.isfile(os.path.join(base, "src", "code", "main.py"))
    records = flow["sub"] + ".records"   # the harness's own files, outside the submission root
    for marker in (os.path.join(records, "DRY_RUN.txt"), os.path.join(base, "DRY_RUN.txt")):
        assert "NOT a valid MLPerf submission" in open(marker).read()
    assert sorted(os.listdir(flow["sub"])) == ["closed"]
    record = json.load(open(os.path.join(records, "staging_record.json")))
    entry = record["systems"][f"closed/TestOrg/{SYSTEM}"]
    assert record["round"] == "v6.1" and entry["dry_run"] is True and entry["dry_run_exceptions"]


def test_truncation_records_the_hash(flow):
    assert "already truncated" in flow["truncate_again"].stdout
    backup = os.path.join(flow["sub"] + ".records", "accuracy_log_backup")
    for scenario in EDGE:
        for folder in ("accuracy", "TEST01/accuracy"):
            d = os.path.join(_scenario_dir(flow, scenario), folder)
            log = os.path.join(d, "mlperf_log_accuracy.json")
            assert os.path.getsize(log) <= 10 * 1024
            full = os.path.join(backup, os.path.relpath(log, flow["sub"]))
            digest = hashlib.sha256(open(full, "rb").read()).hexdigest()
            assert f"hash={digest}" in open(os.path.join(d, "accuracy.txt")).read().splitlines()
            json.load(open(full))     # the backup is the whole log


def test_summary_csv_and_table(flow):
    out = flow["summarize"].stdout
    assert "| Platform | Model | Scenario |" in out
    assert sorted(os.listdir(flow["sub"])) == ["closed"]
    with open(os.path.join(flow["sub"] + ".records", "results_summary.csv")) as f:
        rows = list(csv.DictReader(f))
    assert [r["Scenario"] for r in rows] == list(EDGE)
    assert all(r["Validity"] == "VALID" and r["DryRun"] == "yes" and r["Accuracy"].startswith("acc: ") for r in rows)
    assert float(rows[2]["Result"]) > 1 and rows[2]["Units"] == "Samples/s"


def test_check_passes_the_structure_and_fails_the_dry_run_as_a_submission(flow):
    before = flow["check_before_truncation"]
    assert before.returncode == 1 and "not truncated yet (make truncate_results)" in before.stdout
    structure = flow["check_structure"]
    assert structure.returncode == 0, structure.stdout
    assert "Project check: PASS (0 structural" in structure.stdout
    full = flow["check_full"]
    assert full.returncode == 1
    assert "Project check: FAIL" in full.stdout
    assert "NOT READY  DRY_RUN.txt: closed/TestOrg/CPU was staged with --dry_run" in full.stdout
    assert "RULE" in full.stdout and "min_duration 300 ms" in full.stdout
    assert "official checker: not run: no checkout of mlcommons/inference" in full.stdout


INFERENCE_REPO = os.environ.get("MLPERF_INFERENCE_REPO")


@pytest.mark.skipif(not INFERENCE_REPO, reason="MLPERF_INFERENCE_REPO is not set: no local checkout of "
                    "mlcommons/inference to run its submission checker and accuracy script (code/README.md)")
def test_official_checker_passes_the_dry_run_except_for_short_runs(flow, tmp_path):
    import subprocess
    import sys
    sub = str(tmp_path / "filled")
    shutil.copytree(flow["sub"], sub)
    # What a submitter fills in configs/systems/<system>.json before staging: no TODO placeholders left.
    desc_path = os.path.join(sub, "closed", "TestOrg", "systems", f"{SYSTEM}.json")
    desc = json.load(open(desc_path))
    for key, value in desc.items():
        if isinstance(value, str) and value.startswith("TODO"):
            desc[key] = {"status": "available", "cooling": "air"}.get(key, "N/A")
    json.dump(desc, open(desc_path, "w"), indent=1)
    result = run_main("--action=check_submission", f"--results_dir={sub}", f"--inference_repo={INFERENCE_REPO}")
    out = result.stdout
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert "official checker: FAIL (exit status 1" in out, out[-3000:]
    assert "short-run errors (what a dry run of short runs must show)" in out
    assert "other errors" not in out and "not ready (placeholders)" not in out, out[-5000:]
    assert "=> only short-run errors" in out and "official FAIL (short-run errors only)" in out
    log = open(os.path.join(sub, "official_checker.log")).read()
    assert "Test duration less than 600s" in log and "performance_sample_count, found 128" in log

    # MLCommons' accuracy script agrees with accuracy.txt on our log with --dtype int32, and not without it.
    script = os.path.join(INFERENCE_REPO, "vision", "classification_and_detection", "tools", "accuracy-imagenet.py")
    acc_dir = os.path.join(_scenario_dir(flow, "Offline"), "accuracy")
    full = os.path.join(flow["sub"], "accuracy_log_backup", os.path.relpath(acc_dir, flow["sub"]),
                        "mlperf_log_accuracy.json")
    log_path = full if os.path.exists(full) else os.path.join(acc_dir, "mlperf_log_accuracy.json")
    summary = glob.glob(os.path.join(flow["logs"], "*", SYSTEM, "resnet50", "Offline", "summary.json"))[0]
    map_path = json.load(open(summary))["dataset"]["map"]
    ours = open(os.path.join(acc_dir, "accuracy.txt")).read().splitlines()[0]
    for dtype, expect_same in (("int32", True), ("float32", False)):
        got = subprocess.run([sys.executable, script, "--mlperf-accuracy-file", log_path, "--imagenet-val-file",
                              map_path, "--dtype", dtype], capture_output=True, text=True, check=True).stdout.strip()
        assert (got == ours) is expect_same, (dtype, got, ours)


def test_tampered_tree_fails_the_check(flow, tmp_path):
    sub = str(tmp_path / "tampered")
    shutil.copytree(flow["sub"], sub)
    shutil.copytree(flow["sub"] + ".records", sub + ".records")
    scen = os.path.join(sub, "closed", "TestOrg", "results", SYSTEM, "resnet50")
    detail = os.path.join(scen, "Offline", "performance", "run_1", "mlperf_log_detail.txt")
    text = open(detail).read()
    with open(detail, "w") as f:     # a better Offline result than the run measured
        f.write(text.replace('"key": "result_samples_per_second", "value": ',
                             '"key": "result_samples_per_second", "value": 9'))
    os.remove(os.path.join(scen, "MultiStream", "TEST04", "verify_performance.txt"))
    acc_txt = os.path.join(scen, "SingleStream", "accuracy", "accuracy.txt")
    with open(acc_txt) as f:
        lines = f.read().splitlines()
    with open(acc_txt, "w") as f:
        f.write("\n".join(l if not l.startswith("hash=") else "hash=" + "0" * 64 for l in lines) + "\n")
    verify = os.path.join(scen, "SingleStream", "TEST01", "verify_accuracy.txt")
    with open(verify, "w") as f:
        f.write(open(verify.replace(sub, flow["sub"])).read().replace("TEST PASS", "TEST FAIL: tampered"))
    open(os.path.join(scen, "Offline", "extra.txt"), "w").write("added later\n")
    os.rename(os.path.join(sub, "closed", "TestOrg", "systems", f"{SYSTEM}.json"),
              os.path.join(sub, "closed", "TestOrg", "systems", "CPU-renamed.json"))

    result = run_main("--action=check_submission", f"--results_dir={sub}", "--structure_only")
    out = result.stdout
    assert result.returncode == 1 and "Project check: FAIL" in out
    expect = [
        "Offline/performance/run_1/mlperf_log_detail.txt: changed since it was staged",
        "MultiStream/TEST04/verify_performance.txt: missing",
        "SingleStream/accuracy/accuracy.txt: hash=0000",
        "SingleStream/TEST01/verify_accuracy.txt: the logged responses do not match the accuracy run",
        "Offline/extra.txt: not staged by this harness",
        "systems/CPU-renamed.json: describes a system with no results/CPU-renamed",
        f"systems/{SYSTEM}.json: missing",
    ]
    for needle in expect:
        assert any(needle in line and line.startswith("ERROR") for line in out.splitlines()), (needle, out)


# ------------------------------------------------------------------------------------------------------------
# Bad input, with the null backend
NULL = ("--backend=null", "--scenarios=Offline", "--min_duration=300", "--offline_expected_qps=6000000")  # above the null rate (native SUT: ~2M/s)


@pytest.fixture(scope="module")
def null_logs(subset, tmp_path_factory):
    """A PerformanceOnly and an AccuracyOnly Offline run with the null backend (same engine and config)."""
    logs = tmp_path_factory.mktemp("null") / "logs"
    _ok(run_main("--action=run_harness", *_common(subset, logs, *NULL)))
    # exit 3: the null backend's answers are below the accuracy target; the logs are kept and staged as a dry run
    _ok(run_main("--action=run_harness", *_common(subset, logs, *NULL, "--test_mode=AccuracyOnly")), 3)
    return str(logs)


def _runs(logs):
    """{kind: run root name} of a null_logs-like folder."""
    out = {}
    for root in sorted(os.listdir(logs)):
        summary = json.load(open(os.path.join(logs, root, SYSTEM, "resnet50", "Offline", "summary.json")))
        out[summary["test_mode"]] = root
    return out


def _stage(logs, tmp_path, *extra, system=SYSTEM):
    """update_results of the Offline runs in logs, as an open-division dry run (the audits are optional there)."""
    scenarios = [] if any(w.startswith("--scenarios=") for w in extra) else ["--scenarios=Offline"]
    return run_main("--action=update_results", f"--system_name={system}", f"--log_dir={logs}",
                    f"--results_dir={tmp_path}/sub", "--submitter=TestOrg", "--division=open", *scenarios,
                    "--dry_run", *extra)


def _refused(result, *needles):
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    for needle in needles:
        assert needle in result.stderr, (needle, result.stderr)


def test_null_runs_stage_as_an_open_dry_run(null_logs, tmp_path):
    result = _ok(_stage(null_logs, tmp_path))
    assert "Staged CPU (v6.1, open, edge)" in result.stdout


def test_half_finished_run_is_refused(null_logs, tmp_path):
    logs = tmp_path / "logs"
    shutil.copytree(null_logs, logs)
    perf = _runs(null_logs)["PerformanceOnly"]
    crashed = logs / "9999.12.31-23.59.59" / SYSTEM / "resnet50" / "Offline"
    shutil.copytree(logs / perf / SYSTEM / "resnet50" / "Offline", crashed)
    os.remove(crashed / "summary.json")
    detail = crashed / "mlperf_log_detail.txt"
    detail.write_text("".join(l for l in open(detail) if "result_" not in l))
    _refused(_stage(logs, tmp_path), "the newest performance run 9999.12.31-23.59.59/CPU/resnet50/Offline is refused",
             "half-finished: it has no summary.json", "has no result (the run did not finish)")
    _refused(run_main("--action=run_audit_harness", f"--system_name={SYSTEM}", f"--log_dir={logs}",
                      "--scenarios=Offline", "--audit_test=TEST04", "--backend=null"),
             "cannot be the reference", "half-finished")


def test_missing_accuracy_run_is_refused(null_logs, tmp_path):
    logs = tmp_path / "logs"
    perf = _runs(null_logs)["PerformanceOnly"]
    shutil.copytree(os.path.join(null_logs, perf), logs / perf)
    _refused(_stage(logs, tmp_path), "missing accuracy run: no AccuracyOnly run of system 'CPU'",
             "--test_mode=AccuracyOnly")


def test_performance_run_from_another_engine_or_config_is_refused(null_logs, subset, tmp_path):
    logs = tmp_path / "logs"
    shutil.copytree(null_logs, logs)
    _ok(run_main("--action=run_harness", *_common(subset, logs, *NULL, "--batch_size=16")))
    _refused(_stage(logs, tmp_path), "come from a different engine or config", "batch size 16 vs 8",
             "efficientnet-lite0-Offline-cpu-b8-fp32.default.null.json")


def test_mismatched_system_name_is_refused(null_logs, tmp_path):
    _refused(_stage(null_logs, tmp_path, system="T4x1"), "No runs of system 'T4x1'", "runs there are of: CPU",
             "mismatched system name")
    logs = tmp_path / "logs"
    for kind, root in _runs(null_logs).items():
        shutil.copytree(os.path.join(null_logs, root, SYSTEM), logs / root / "CPU-other")
    _refused(_stage(logs, tmp_path, system="CPU-other"),
             "mismatched system name: it is filed under 'CPU-other' but its summary.json says system 'CPU'")


def test_invalid_run_is_refused_even_as_a_dry_run(null_logs, subset, tmp_path):
    logs = tmp_path / "logs"
    shutil.copytree(null_logs, logs)
    # An Offline target far below the real rate: LoadGen issues too few samples to fill the duration.
    _ok(run_main("--action=run_harness", *_common(subset, logs, "--backend=null", "--scenarios=Offline",
                                                  "--min_duration=2000", "--offline_expected_qps=10")))
    _refused(_stage(logs, tmp_path), "LoadGen judged it INVALID: min duration not met")


def test_datacenter_category_and_unknown_round_are_refused(null_logs, tmp_path):
    _refused(_stage(null_logs, tmp_path, "--category=datacenter"), "ResNet50 is not part of the datacenter suite in v6.1")
    _refused(_stage(null_logs, tmp_path, "--round=v7.3"), "unknown round")
    _refused(_stage(null_logs, tmp_path, "--category=edge", "--scenarios=Server"),
             "not a ResNet50 scenario of the edge category")


def test_audit_needs_its_reference_runs(null_logs, tmp_path):
    empty = tmp_path / "logs"
    empty.mkdir()
    _refused(run_main("--action=run_audit_harness", f"--system_name={SYSTEM}", f"--log_dir={empty}",
                      "--scenarios=Offline", "--backend=null"),
             "TEST01 Offline: no PerformanceOnly run of system 'CPU'")
    _refused(run_main("--action=run_audit_harness", f"--log_dir={null_logs}", "--audit_test=TEST05",
                      f"--system_name={SYSTEM}"), "--audit_version=v4.1")


def test_test05_runs_with_audit_version_v41(null_logs, subset, tmp_path):
    logs = tmp_path / "logs"
    shutil.copytree(null_logs, logs)
    result = run_main("--action=run_audit_harness", *_common(subset, logs, *NULL, "--audit_version=v4.1",
                                                             "--audit_test=TEST05"))
    _ok(result, 0, 1)
    (folder,) = glob.glob(os.path.join(logs, "*", SYSTEM, "resnet50", "Offline", "TEST05"))
    assert not os.path.exists(os.path.join(folder, "audit.config"))
    text = open(os.path.join(folder, "verify_performance.txt")).read()
    assert "TEST05 performance verification" in text
    assert "rule = the test run not more than 5% slower than the reference run" in text
    from harness.loadgen.logs import read_detail
    got = read_detail(os.path.join(folder, "mlperf_log_detail.txt"))
    ref = read_detail(os.path.join(logs, _runs(null_logs)["PerformanceOnly"], SYSTEM, "resnet50", "Offline",
                                   "mlperf_log_detail.txt"))
    assert got.get("effective_qsl_rng_seed") != ref.get("effective_qsl_rng_seed")   # test05 seeds were used
