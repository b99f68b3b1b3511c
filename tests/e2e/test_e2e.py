"""End to end through code/main.py and the real LoadGen, on real ImageNet images from ../shared."""
import json
import os

import numpy as np
import pytest

from conftest import VAL_1300, VAL_MAP_1300, run_main

pytestmark = pytest.mark.slow
SYSTEM = "CPU"
SCENARIOS = ("Offline", "Server", "SingleStream", "MultiStream")


def _common(prep_dir, log_dir, *extra):
    return ("--system_name=" + SYSTEM, "--model=efficientnet-lite0", f"--map_path={VAL_MAP_1300}",
            f"--preprocessed_data_dir={prep_dir}", f"--log_dir={log_dir}", *extra)


def _run_root(log_dir):
    (stamp,) = os.listdir(log_dir)
    return os.path.join(log_dir, stamp)


def _summary(log_dir):
    with open(os.path.join(_run_root(log_dir), "perf_harness_summary.json")) as f:
        return json.load(f)[SYSTEM]["resnet50"]


def test_every_scenario_on_onnxruntime(prep_dir, tmp_path):
    log_dir = tmp_path / "logs"
    # 64 queries: LoadGen's minimum for SingleStream early stopping, whatever the load on the machine.
    args = _common(prep_dir, log_dir, "--scenarios=" + ",".join(SCENARIOS), "--min_duration=1500",
                   "--min_query_count=64", "--offline_expected_qps=400", "--server_target_qps=10",
                   "--single_stream_expected_latency_ns=1000000", "--multi_stream_expected_latency_ns=10000000")
    result = run_main("--action=run", *args)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = _summary(log_dir)
    assert set(summary) == set(SCENARIOS)
    for scenario in SCENARIOS:
        folder = os.path.join(_run_root(log_dir), SYSTEM, "resnet50", scenario)
        for name in ("mlperf_log_summary.txt", "mlperf_log_detail.txt", "mlperf_log_accuracy.json", "user.conf"):
            assert os.path.exists(os.path.join(folder, name)), (scenario, name)
        assert summary[scenario]["result_validity"] in ("VALID", "INVALID")
        assert not summary[scenario]["loadgen_errors"], summary[scenario]["loadgen_errors"]
    assert summary["Offline"]["result_validity"] == "VALID"
    assert summary["Offline"]["samples_per_second"] > 10
    assert summary["SingleStream"]["result_validity"] == "VALID"
    assert 1 < summary["SingleStream"]["p90_latency_ms"] < 100
    with open(os.path.join(_run_root(log_dir), SYSTEM, "resnet50", "Offline", "user.conf")) as f:
        assert "resnet50.Offline.target_qps = 400.0" in f.read()
    assert "VALID" in result.stdout and "samples_per_second=" in result.stdout


def test_null_backend_every_scenario_valid(prep_dir, tmp_path):
    log_dir = tmp_path / "logs"
    args = _common(prep_dir, log_dir, "--backend=null", "--scenarios=" + ",".join(SCENARIOS), "--min_duration=1000",
                   "--min_query_count=100", "--offline_expected_qps=4000000", "--server_target_qps=2000",
                   "--single_stream_expected_latency_ns=4000", "--multi_stream_expected_latency_ns=8000")
    # Latency hints at or below the native SUT's (p90 about 7 us): LoadGen pregenerates min_duration / hint queries,
    # and a SUT faster than the hint runs out of them before min_duration (INVALID).
    result = run_main("--action=run_harness", *args)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = _summary(log_dir)
    assert {s: summary[s]["result_validity"] for s in SCENARIOS} == {s: "VALID" for s in SCENARIOS}


def test_accuracy_run_matches_direct_evaluation(prep_dir, effnet_path, tmp_path):
    import onnxruntime as ort
    from resnet50.imagenet import read_map
    from resnet50.preprocessing import load_preprocessed
    from resnet50.models import get_model

    log_dir = tmp_path / "logs"
    result = run_main("--action=run", *_common(prep_dir, log_dir, "--test_mode=AccuracyOnly", "--batch_size=32"))
    assert result.returncode == 0, result.stderr[-3000:]
    folder = os.path.join(_run_root(log_dir), SYSTEM, "resnet50", "Offline")
    with open(os.path.join(folder, "accuracy.txt")) as f:
        line = f.read().strip()
    with open(os.path.join(folder, "accuracy_summary.json")) as f:
        acc = json.load(f)
    assert line == f"accuracy={acc['top1']:.3f}%, good={acc['good']}, total=1300"
    # The same model evaluated directly, without the harness.
    data = load_preprocessed(get_model("efficientnet-lite0"), read_map(VAL_MAP_1300), prep_dir)
    session = ort.InferenceSession(effnet_path)
    found = np.concatenate([session.run(None, {"input_tensor:0": np.asarray(data.array[i:i + 100])})[0].argmax(1)
                            for i in range(0, len(data.array), 100)])
    direct = 100.0 * float((found == data.labels).mean())
    assert abs(acc["top1"] - direct) <= 0.5, (acc["top1"], direct)
    assert acc["top1"] > 75            # real weights on real images (about 82-83% on val-1300)
    assert acc["pass"] is True


# ------------------------------------------------------------------------------------------------------------
# Bad input: a clear message and a non-zero exit, never a traceback.
def _fails(result, *needles):
    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr
    for needle in needles:
        assert needle in result.stderr, result.stderr


def test_unknown_scenario():
    _fails(run_main("--action=run_harness", "--scenarios=Offline,Sever"), "unknown scenario 'Sever'")


def test_unknown_system():
    _fails(run_main("--action=run_harness", "--system_name=Z100x3"), "Unknown system 'Z100x3'", "FAQ.md")


def test_missing_model_file(tmp_path):
    _fails(run_main("--action=generate_engines", "--system_name=CPU", f"--model_path={tmp_path}/nope.onnx"),
           "nope.onnx does not exist", "download_model")


def test_model_that_does_not_fit_the_registry(effnet_path):
    # A 224x224 network handed in as Alibaba's 176x176 one.
    _fails(run_main("--action=generate_engines", "--system_name=CPU", "--model=ofa-autosinian-is176",
                    f"--model_path={effnet_path}"), "expect [N, 3, 176, 176]")


def test_missing_preprocessed_data(tmp_path, effnet_path):
    _fails(run_main("--action=run", "--system_name=CPU", f"--preprocessed_data_dir={tmp_path}",
                    f"--map_path={VAL_MAP_1300}", f"--log_dir={tmp_path}/logs"),
           "No preprocessed data", "make preprocess_data")


def test_val_map_naming_missing_images(tmp_path):
    m = tmp_path / "map.txt"
    m.write_text("ILSVRC2012_val_00000001.JPEG 65\n")   # not among the 1300
    _fails(run_main("--action=preprocess_data", "--system_name=CPU", f"--map_path={m}", f"--data_dir={VAL_1300}",
                    f"--preprocessed_data_dir={tmp_path}"), "1 of 1 images", "ILSVRC2012_val_00000001.JPEG",
           "--allow_missing")


def test_stray_audit_config_is_refused(prep_dir, tmp_path):
    (tmp_path / "audit.config").write_text("*.*.mode = 2\n")
    result = run_main("--action=run_harness", *_common(prep_dir, tmp_path / "logs", "--backend=null",
                                                        "--min_duration=100"), cwd=str(tmp_path))
    _fails(result, "audit.config", "compliance run")


def test_each_config_ver_runs_and_logs_apart(prep_dir, tmp_path):
    import shutil
    from conftest import ROOT
    configs = tmp_path / "configs"
    shutil.copytree(os.path.join(ROOT, "configs", "resnet50"), configs)
    path = configs / "Offline" / "config.json"
    data = json.loads(path.read_text())
    data["CPU"]["config_ver"] = {"small": {"batch_size": 2}}
    path.write_text(json.dumps(data))
    log_dir = tmp_path / "logs"
    result = run_main("--action=run_harness", *_common(prep_dir, log_dir, "--backend=null", f"--config_dir={configs}",
                                                       "--config_ver=default,small", "--min_duration=200",
                                                       "--offline_expected_qps=100000"))
    assert result.returncode == 0, result.stderr[-3000:]
    roots = sorted(os.listdir(log_dir))
    assert [r.rsplit("-", 1)[1] for r in roots] == ["default", "small"], roots
    batches = []
    for root in roots:
        with open(os.path.join(log_dir, root, SYSTEM, "resnet50", "Offline", "summary.json")) as f:
            summary = json.load(f)
        batches.append((summary["settings"]["config_ver"], summary["fingerprint"]["batch_size"]))
    assert batches == [("default", 8), ("small", 2)]
