#!/usr/bin/env python3
"""INT8 against FP32 on this CPU, side by side in one run, with EfficientNet-Lite0 (real weights) on val-1300.

Part 1, the Q/DQ forms (which one ONNX Runtime runs fastest here): every form of harness/artifacts/calibration.py FORMS is
written from the same kept ranges, built into an ONNX Runtime engine exactly as generate_engines builds one, and run
round-robin for --seconds each, --reps rounds (batch and threads of the CPU config); top-1 on val-1300 of each.
Part 2, through LoadGen: `code/main.py --action=run_harness` Offline PerformanceOnly with the fp32 and the int8
engines alternately, --reps runs each of --loadgen_seconds; the figures are medians.

    .venv/bin/python scripts/bench_int8.py [--reps 3] [--seconds 4] [--loadgen_seconds 15]

It calibrates first when needed (make calibrate with the lists below; the default calibration list is samples-250,
which shares no image with val-1300).
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "code"))
SHARED = os.path.abspath(os.environ.get("MLPERF_SHARED_DIR") or os.path.join(ROOT, "..", "shared"))
IMAGENET = os.path.join(SHARED, "data", "imagenet")
MAIN = os.path.join(ROOT, "code", "main.py")
MODEL = "efficientnet-lite0"


def main_py(*args: str) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, MAIN, *args], capture_output=True, text=True, cwd=ROOT)
    if result.returncode != 0:
        sys.exit(f"code/main.py {' '.join(args)} failed:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}")
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=4.0, help="per form and round in part 1")
    parser.add_argument("--loadgen_seconds", type=float, default=15.0, help="min_duration of each LoadGen run")
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--forms", default="", help="comma list (default: all of FORMS)")
    parser.add_argument("--skip_forms", action="store_true", help="only part 2")
    parser.add_argument("--map_path", default=os.path.join(IMAGENET, "val_map_1300.txt"))
    parser.add_argument("--data_dir", default=os.path.join(IMAGENET, "val-1300"))
    parser.add_argument("--calib_data_map", default=os.path.join(IMAGENET, "samples_250_map.txt"))
    parser.add_argument("--calib_data_dir", default=os.path.join(IMAGENET, "samples-250"))
    parser.add_argument("--preprocessed_data_dir", default=os.path.join(ROOT, "build", "preprocessed_data"))
    args = parser.parse_args()

    from harness.artifacts import calibration
    from harness.backends import get_backend
    from harness.backends.base import BuildRequest
    from harness.backends.onnxruntime.backend import session_options
    from resnet50.imagenet import read_map
    from resnet50.preprocessing import load_preprocessed
    from resnet50.model_files import ensure_model
    from resnet50.models import get_model

    spec = get_model(MODEL)
    ensure_model(spec)
    # A model path of its own, so the calibration beside it is the benchmark's and not the user's.
    model_path = os.path.join(ROOT, "build", "bench_int8", os.path.basename(spec.default_path))
    os.makedirs(os.path.dirname(model_path), exist_ok=True)
    if not os.path.exists(model_path):
        os.symlink(spec.default_path, model_path)
    common = ["--system_name=CPU", f"--model={MODEL}", f"--model_path={model_path}",
              f"--preprocessed_data_dir={args.preprocessed_data_dir}"]
    main_py("--action=preprocess_data", *common, "--val_only", f"--map_path={args.map_path}",
            f"--data_dir={args.data_dir}")
    main_py("--action=calibrate", *common, f"--calib_data_map={args.calib_data_map}",
            f"--data_dir={args.calib_data_dir}")
    with open(calibration.paths(model_path, "entropy")["record"]) as f:      # the record is the same for any method
        record = json.load(f)
    print(f"calibration: {record['ranges']['method']} on {record['ranges']['images']} images of "
          f"{record['ranges']['calibration_map']}")
    data = load_preprocessed(spec, read_map(args.map_path), args.preprocessed_data_dir)
    x = np.ascontiguousarray(data.array)
    cpu = os.popen("grep -m1 'model name' /proc/cpuinfo").read().split(":")[-1].strip()
    vnni = "avx512_vnni" in open("/proc/cpuinfo").read()
    print(f"CPU: {cpu}, {os.cpu_count()} cores, AVX512-VNNI: {vnni}; batch {args.batch_size}, "
          f"{args.threads} threads")

    if not args.skip_forms:
        bench_forms(args, spec, model_path, calibration, get_backend("onnxruntime"), BuildRequest, session_options, x,
                    data.labels)
    bench_loadgen(args, common)
    return 0


def bench_forms(args, spec, model_path, calibration, backend, BuildRequest, session_options, x, labels) -> None:
    import onnxruntime as ort
    with open(calibration.paths(model_path, "entropy")["record"]) as f:
        method = json.load(f)["ranges"]["method"]
    p = calibration.paths(model_path, method)
    out_dir = os.path.join(ROOT, "build", "bench_int8", "forms")
    os.makedirs(out_dir, exist_ok=True)
    forms = [f for f in (args.forms.split(",") if args.forms else calibration.FORMS) if f]
    engines = {}
    options = {"threads": args.threads, "batch_size": args.batch_size, "model": spec.key}
    engines["fp32"] = os.path.join(out_dir, "fp32.engine.onnx")
    backend.build(BuildRequest(model_path, engines["fp32"], spec.input_shape,
                               backend.options(dict(options, precision="fp32"))))
    for form in forms:
        qdq = os.path.join(out_dir, f"{form}.qdq.onnx")
        calibration.write_qdq(p["prepared"], p["ranges"], method, calibration.FORMS[form], qdq, "input_tensor:0",
                              spec.input_scale)
        engines[form] = os.path.join(out_dir, f"{form}.engine.onnx")
        backend.build(BuildRequest(qdq, engines[form], spec.input_shape,
                                   backend.options(dict(options, precision="int8"))))
    sessions = {k: ort.InferenceSession(v, session_options(args.threads), providers=["CPUExecutionProvider"])
                for k, v in engines.items()}
    accuracy = {}
    for name, s in sessions.items():
        top1 = np.concatenate([s.run(None, {"input_tensor:0": x[i:i + 100]})[0] for i in range(0, len(x), 100)])
        accuracy[name] = 100.0 * float((top1 == labels).mean())
    bs = args.batch_size
    rates = {k: [] for k in sessions}
    for rep in range(args.reps):
        for name, s in sessions.items():
            s.run(None, {"input_tensor:0": x[:bs]})
            n, start = 0, time.perf_counter()
            while time.perf_counter() - start < args.seconds:
                i = (n * bs) % (len(x) - bs)
                s.run(None, {"input_tensor:0": x[i:i + bs]})
                n += 1
            rates[name].append(n * bs / (time.perf_counter() - start))
        print(f"round {rep + 1}: " + ", ".join(f"{k} {v[-1]:.0f}" for k, v in rates.items()) + " images/s",
              flush=True)
    base = [r for r in rates["fp32"]]
    print("\n| engine | activations / weights | top-1 val-1300 | images/s (median) | x FP32 (median of rounds) |")
    print("| --- | --- | --- | --- | --- |")
    for name in sessions:
        form = calibration.FORMS.get(name)
        kind = "fp32" if form is None else (
            f"{'u' if form.activation_type == 'QUInt8' else 's'}8 {'sym' if form.activation_symmetric else 'asym'}"
            f" / s8 {'per-channel' if form.per_channel else 'per-tensor'}")
        ratio = statistics.median(r / b for r, b in zip(rates[name], base))
        print(f"| {name} | {kind} | {accuracy[name]:.3f}% | {statistics.median(rates[name]):.1f} | {ratio:.2f} |")
    print(f"(ONNX Runtime backend form: {calibration.backend_forms()['onnxruntime']})\n")


def bench_loadgen(args, common) -> None:
    log_dir = os.path.join(ROOT, "build", "bench_int8", "logs")
    for precision in ("fp32", "int8"):
        main_py("--action=generate_engines", *common, f"--precision={precision}", f"--batch_size={args.batch_size}",
                f"--threads={args.threads}")
    rates = {"fp32": [], "int8": []}
    for rep in range(args.reps):
        for precision in rates:
            before = set(glob.glob(os.path.join(log_dir, "*")))
            main_py("--action=run_harness", *common, f"--precision={precision}", f"--map_path={args.map_path}",
                    f"--batch_size={args.batch_size}", f"--threads={args.threads}", "--scenarios=Offline",
                    "--test_mode=PerformanceOnly", f"--min_duration={int(args.loadgen_seconds * 1000)}",
                    "--min_query_count=1", "--offline_expected_qps=400", f"--log_dir={log_dir}")
            (run_root,) = set(glob.glob(os.path.join(log_dir, "*"))) - before
            with open(os.path.join(run_root, "perf_harness_summary.json")) as f:
                summary = json.load(f)["CPU"]["resnet50"]["Offline"]
            rates[precision].append(float(summary["samples_per_second"]))
        print(f"LoadGen round {rep + 1}: fp32 {rates['fp32'][-1]:.1f}, int8 {rates['int8'][-1]:.1f} samples/s",
              flush=True)
    ratio = statistics.median(i / f for i, f in zip(rates["int8"], rates["fp32"]))
    print("\n| LoadGen Offline (PerformanceOnly) | samples/s (median) | all runs |")
    print("| --- | --- | --- |")
    for k, v in rates.items():
        print(f"| {k} | {statistics.median(v):.1f} | {' '.join(f'{r:.1f}' for r in v)} |")
    load = os.getloadavg()
    print(f"\nINT8 / FP32 through LoadGen: {ratio:.2f}x (median of per-round ratios; target >= 1.3x); "
          f"load average at the end {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


if __name__ == "__main__":
    sys.exit(main())
