"""MLCommons' checker output sorted into short-run / not-ready / other; the staged README's Reproduce section."""
from harness.submission import official
from harness.loadgen.logs import DetailLog
from harness.submission.reproduce import reproduce_lines
from harness.submission.runs import Run

# Lines as the official checker (mlcommons/inference tools/submission, v6.1) prints them for a dry-run tree.
OUTPUT = """[2026-12-01 11:57:55,101 main.py:120 INFO] Working on closed/TestOrg
[2026-12-01 11:57:55,200 performance_check.py:230 ERROR] /s/closed/T/results/CPU/resnet50/Offline/performance/run_1/mlperf_log_detail.txt performance_sample_count, found 128, needs to be >= 1024
[2026-12-01 11:57:55,201 performance_check.py:400 ERROR] /s/closed/T/results/CPU/resnet50/Offline/TEST04 Test duration less than 600s in user config. expected=600000, found=300
[2026-12-01 11:57:55,202 accuracy_check.py:140 ERROR] /s/closed/T/results/CPU/resnet50/Offline/accuracy/mlperf_log_detail.txt accurcy run does not cover all dataset, accuracy samples: 128, dataset size: 50000
[2026-12-01 11:57:55,203 compliance_check.py:500 ERROR] Compliance test performance check in /s/closed/T/results/CPU/resnet50/Offline/TEST01 failed
[2026-12-01 11:57:55,204 base.py:50 ERROR] Some performance checks Checks failed for: /s/closed/T/results/CPU/resnet50/Offline/TEST01
[2026-12-01 11:57:55,205 system_check.py:70 ERROR] /s/closed/T/results/CPU has invalid status (todo: available, preview or rdi)
[2026-12-01 11:57:55,300 main.py:236 ERROR] NoResults /s/closed/T/results/CPU/resnet50/Offline/performance/run_1/mlperf_log_detail.txt
[2026-12-01 11:57:55,301 accuracy_check.py:120 WARNING] /s/accuracy/mlperf_log_detail.txt accuracy not met: expected=75.695400, found=0.000
[2026-12-01 11:57:55,588 main.py:361 ERROR] SUMMARY: submission has errors
"""


def test_checker_errors_are_sorted():
    errors = official.classify(OUTPUT)
    assert len(errors[official.SHORT_RUN]) == 4
    assert errors[official.NOT_READY] == ["/s/closed/T/results/CPU has invalid status (todo: available, preview or rdi)"]
    assert len(errors[official.FOLLOW_ON]) == 3
    # A failed accuracy check is only a warning in the checker's log, but a real problem.
    assert errors[official.OTHER] == ["(logged as a warning) /s/accuracy/mlperf_log_detail.txt accuracy not met: "
                                      "expected=75.695400, found=0.000"]
    errors = official.classify("\n".join(line for line in OUTPUT.splitlines() if "accuracy not met" not in line))
    assert official.OTHER not in errors
    # A check that failed with no reason above it is not explained by the short-run errors.
    unexplained = official.classify(OUTPUT.replace("Checks failed for: /s/closed/T/results/CPU/resnet50/Offline/TEST01",
                                                   "Checks failed for: /s/closed/T/results/CPU/resnet50/Server/TEST01"))
    assert any("Server/TEST01 (no reason given above it)" in e for e in unexplained[official.OTHER])
    verdict = official.Verdict(1, "log", errors)
    assert not verdict.only_short_run
    text = "\n".join(official.describe(verdict, "/nowhere"))
    assert "FAIL (exit status 1" in text and "not ready (placeholders): 1" in text and "short-run errors" in text
    del errors[official.NOT_READY]
    assert official.Verdict(1, "log", errors).only_short_run
    errors[official.OTHER] = ["x"]
    assert official.classify_line("/s/closed/T/systems/CPU.json, field framework is missing") == official.OTHER
    assert not official.Verdict(1, "log", errors).only_short_run


def test_no_checkout_is_said_plainly(tmp_path):
    verdict = official.run_official(str(tmp_path), str(tmp_path / "no-checkout"), "v6.1")
    assert verdict.returncode is None and "no checkout of mlcommons/inference" in verdict.note
    assert "--inference_repo" in official.describe(verdict, str(tmp_path))[0]


def _run(kind, command, precision="fp32"):
    fp = {"model": "resnet50", "precision": precision}
    return Run(dir="/l/r/CPU/resnet50/Offline", log_dir="/l", root="r", system="CPU", scenario="Offline", kind=kind,
               summary={"fingerprint": fp, "command": command, "dataset": {"map": "data_maps/imagenet/val_map.txt"}},
               detail=DetailLog("/l/x"))


def test_reproduce_lists_every_step_in_order():
    base = "code/main.py --action=run_harness --system_name=A10x2 --scenarios=Offline --precision=int8"
    runs = {"performance": _run("performance", base, "int8"),
            "accuracy": _run("accuracy", base + " --test_mode=AccuracyOnly", "int8"),
            "TEST04": _run("TEST04", "code/main.py --action=run_audit_harness --system_name=A10x2 --scenarios=Offline "
                                     "--audit_test=TEST04", "int8")}
    text = "\n".join(reproduce_lines(runs, "src"))
    order = ["make venv", "make download_model RUN_ARGS=\"--model=resnet50\"",
             "make preprocess_data RUN_ARGS=\"--system_name=A10x2 --scenarios=Offline --precision=int8 --data_dir=",
             "make calibrate RUN_ARGS=", "make generate_engines RUN_ARGS=\"--system_name=A10x2 --scenarios=Offline "
             "--precision=int8\"", "make run_harness RUN_ARGS=\"--system_name=A10x2 --scenarios=Offline "
             "--precision=int8\"   # performance", "--test_mode=AccuracyOnly\"   # accuracy",
             "make run_audit_harness", "accuracy-imagenet.py --mlperf-accuracy-file accuracy/mlperf_log_accuracy.json "
             "--imagenet-val-file data_maps/imagenet/val_map.txt --dtype int32"]
    positions = [text.index(needle) for needle in order]
    assert positions == sorted(positions), text
    fp32 = "\n".join(reproduce_lines({"performance": _run("performance", base)}, "src"))
    assert "# make calibrate: only INT8 engines need it (this one is fp32)" in fp32
