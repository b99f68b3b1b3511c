#!/usr/bin/env python3
"""The torch backend on any CUDA GPU host, everything in one call (scripts/gpu/bench_torch.sh runs it and keeps the log).

Steps: set up the models (EfficientNet-Lite0 from $BENCH_DATA/efficientnet_lite0.onnx when there, else exported with
`make download_model`; ResNet50-synthetic built there), preprocess the val-1300 images ($BENCH_DATA/val-1300 and
val_map_1300.txt) for both, then through the real harness and LoadGen: Offline (with the
backend's raw loop measured in the same run), Server, SingleStream and MultiStream with ResNet50-synthetic, an
AccuracyOnly run with EfficientNet-Lite0, and, on a machine with two GPUs, Offline on both. Prints a table last
and writes results.json to $OUT (or build/).

Usage (on the GPU host): BENCH_DATA=<folder with val-1300/ and val_map_1300.txt> python3 scripts/gpu/bench_torch.py
[--seconds 10] [--only Offline,raw,...]
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "code"))
MAIN = [sys.executable, os.path.join(ROOT, "code", "main.py")]
DATA = os.path.abspath(os.environ.get("BENCH_DATA") or os.path.join(ROOT, ".devdata"))
MAP = os.path.join(DATA, "val_map_1300.txt")
OUT = os.environ.get("OUT") or os.path.join(ROOT, "build")
RESULTS: list[dict] = []


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def main_py(*args, timeout=300) -> tuple[int, str]:
    start = time.time()
    try:
        out = subprocess.run(MAIN + list(args), capture_output=True, text=True, timeout=timeout)
        text = out.stdout + out.stderr
        rc = out.returncode
    except subprocess.TimeoutExpired as e:
        text, rc = f"TIMEOUT after {timeout}s\n{(e.stdout or b'')[-3000:]!r}", 124
    log(f"main.py {' '.join(a for a in args if not a.startswith('--map_path'))} -> rc {rc} in {time.time() - start:.0f}s")
    if rc != 0:
        print(text[-4000:], flush=True)
    return rc, text


def summary_of(log_dir: str, system: str) -> dict:
    (stamp,) = os.listdir(log_dir)
    with open(os.path.join(log_dir, stamp, "perf_harness_summary.json")) as f:
        return json.load(f)[system]["resnet50"]


def scenario(name: str, system: str, model: str, extra: list, seconds: float, timeout=300) -> dict:
    log_dir = os.path.join(ROOT, "build", "gpu_logs", f"{name}-{system}-{model}-{time.time():.0f}")
    args = ["--action=run", f"--scenarios={name}", f"--system_name={system}", "--config_ver=torch", "--backend=torch",
            f"--model={model}", f"--map_path={MAP}", f"--log_dir={log_dir}",
            f"--min_duration={int(seconds * 1000)}", *extra]
    rc, text = main_py(*args, timeout=timeout)
    if rc != 0:
        return {"scenario": name, "system": system, "error": text[-500:]}
    result = summary_of(log_dir, system)[name]
    result.update(scenario=name, system=system, model=model)
    for line in text.splitlines():
        if line.startswith(name):
            log(line)
    log(f"  SUT workers: {result.get('sut_workers')}, wall {result.get('wall_seconds')} s")
    return result


def raw_loop(model: str, system: str, seconds: float, extra: list) -> dict:
    """The backend alone: the same engine, batch size and settings, one runner, rows already on the GPU."""
    import numpy as np
    from harness.artifacts.engines import engine_path
    from harness.config.context import run_config
    from harness.backends import get_backend
    from harness.actions import parse_args
    from resnet50.imagenet import read_map
    from resnet50.preprocessing import default_preprocessed_dir, load_preprocessed
    from resnet50.models import get_model
    args = parse_args([f"--system_name={system}", "--config_ver=torch", "--backend=torch", f"--model={model}",
                       f"--map_path={MAP}", *extra])
    rc = run_config(args, "Offline", system)
    options = rc.options()
    backend = get_backend("torch")
    spec = get_model(model)
    data = load_preprocessed(spec, read_map(MAP), default_preprocessed_dir())
    array = np.ascontiguousarray(data.array[:1024])
    runner = backend.load(engine_path(rc, spec, backend), "0", options)
    runner.load_samples(array)
    bs = int(options.batch_size)
    rows = np.arange(1024) % len(array)
    for _ in range(3):
        runner.infer(rows[:bs])
    done, start, i = 0, time.perf_counter(), 0
    while time.perf_counter() - start < seconds:
        runner.infer(rows[i:i + bs] if i + bs <= len(rows) else rows[:bs])
        done += bs
        i = (i + bs) % len(rows)
    rate = done / (time.perf_counter() - start)
    log(f"raw loop {model} b{bs}: {rate:.0f} samples/s")
    return {"scenario": "raw loop (1 stream)", "system": system, "model": model, "samples_per_second": rate,
            "batch_size": bs}


def setup() -> None:
    eff = os.path.join(ROOT, "build", "models", "efficientnet-lite0", "efficientnet_lite0.onnx")
    if not os.path.exists(eff) and os.path.exists(os.path.join(DATA, "efficientnet_lite0.onnx")):
        os.makedirs(os.path.dirname(eff), exist_ok=True)
        shutil.copy(os.path.join(DATA, "efficientnet_lite0.onnx"), eff)
    main_py("--action=download_model", "--model=efficientnet-lite0")
    main_py("--action=download_model", "--model=resnet50-synthetic")
    for model in ("resnet50-synthetic", "efficientnet-lite0"):
        main_py("--action=preprocess_data", f"--model={model}", f"--map_path={MAP}",
                f"--data_dir={os.path.join(DATA, 'val-1300')}", "--system_name=H200x1", "--config_ver=torch",
                "--val_only")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--only", default="Offline,raw,Server,SingleStream,MultiStream,accuracy,x2")
    parser.add_argument("--extra", default="", help="extra RUN_ARGS for every harness run")
    opts = parser.parse_args()
    only = set(opts.only.split(","))
    extra = opts.extra.split() if opts.extra else []
    import torch
    gpus = torch.cuda.device_count()
    log(f"torch {torch.__version__}, {gpus} GPU(s): {torch.cuda.get_device_name(0) if gpus else '-'}")
    setup()
    syn = "resnet50-synthetic"
    if "Offline" in only:
        RESULTS.append(scenario("Offline", "H200x1", syn, ["--devices=0"] + extra, opts.seconds))
    if "Offline1" in only:
        RESULTS.append(scenario("Offline", "H200x1", syn, ["--devices=0", "--gpu_inference_streams=1"] + extra,
                                opts.seconds))
    if "raw" in only:
        try:
            RESULTS.append(raw_loop(syn, "H200x1", opts.seconds, extra))
        except Exception as e:  # keep going: the table is the point of the call
            RESULTS.append({"scenario": "raw loop", "error": repr(e)})
    for name in ("Server", "SingleStream", "MultiStream"):
        if name in only:
            RESULTS.append(scenario(name, "H200x1", syn, ["--devices=0"] + extra, opts.seconds))
    if "accuracy" in only:
        RESULTS.append(scenario("Offline", "H200x1", "efficientnet-lite0",
                                ["--devices=0", "--test_mode=AccuracyOnly", "--batch_size=256", "--torch_compile=false"]
                                + extra, opts.seconds))
    if "x2" in only and gpus >= 2:
        RESULTS.append(scenario("Offline", "H200x2", syn, ["--devices=0,1"] + extra, opts.seconds))
    with open(os.path.join(OUT, "results.json"), "w") as f:
        json.dump(RESULTS, f, indent=1)
    print("\n| scenario | system | model | validity | metric | value | p99 ms |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in RESULTS:
        if "error" in r:
            print(f"| {r.get('scenario')} | {r.get('system')} | | ERROR | {r['error'][-120:]!r} | | |")
            continue
        if r.get("accuracy"):
            print(f"| accuracy | {r['system']} | {r['model']} | {r['accuracy']['pass']} | top1 % | "
                  f"{r['accuracy']['top1']} | |")
            continue
        metric = r.get("metric", "samples_per_second")
        value = r.get(metric)
        print(f"| {r['scenario']} | {r['system']} | {r['model']} | {r.get('result_validity', '-')} | {metric} | "
              f"{value:.4g} | {r.get('p99_latency_ms') or ''} |" if isinstance(value, (int, float)) else
              f"| {r['scenario']} | {r['system']} | {r['model']} | {r.get('result_validity')} | {metric} | {value} | |")


if __name__ == "__main__":
    main()
