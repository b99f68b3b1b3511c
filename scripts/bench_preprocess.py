#!/usr/bin/env python3
"""Preprocessing speed, side by side in one run: the harness's `preprocess` (all cores, and one process) against a
plain one-process PIL loop doing the same work, on the full-size images of ../shared/data/imagenet/samples-250.

The same work: decode the JPEG, convert to RGB, resize the shorter side to 256 (PIL's BOX filter, its area
average), centre-crop 224, float32, subtract the RGB means, transpose to CHW, one array of all images saved as .npy.
The harness runs the MLPerf ResNet50 recipe (OpenCV, INTER_AREA) end to end: worker start, the memory-mapped array,
fsync before it records progress, the md5 and the rename included.

    .venv/bin/python scripts/bench_preprocess.py [--reps 5] [--repeat 4] [--images DIR --map FILE]

Each repetition runs the three one after the other (order rotated), each into an empty folder; the figures are
medians over repetitions. A second table lists the images --repeat times over (1000 rows by default), so the fixed
costs of a run (starting the workers, the fsync of the finished array, the manifest) weigh as little as they do on
50,000 images.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "code"))
SHARED = os.path.abspath(os.environ.get("MLPERF_SHARED_DIR") or os.path.join(ROOT, "..", "shared"))

from resnet50.imagenet import RECIPES, read_map

from resnet50.preprocessing import available_cores, preprocess  # noqa: E402
from resnet50.models import get_model  # noqa: E402


def pil_loop(paths: list[str], out_path: str) -> None:
    """The plain loop: one process, PIL."""
    from PIL import Image
    r = RECIPES["mlperf_resnet50"]
    crop, short = r["crop"], r["resize_shorter"]
    mean = np.asarray(r["mean"], np.float32)
    out = np.empty((len(paths), 3, crop, crop), np.float32)
    for i, path in enumerate(paths):
        with Image.open(path) as im:
            im = im.convert("RGB")
        w, h = im.size
        nh, nw = (int(short * h / w), short) if h > w else (short, int(short * w / h))
        im = im.resize((nw, nh), Image.BOX)
        top, left = int((nh - crop) / 2), int((nw - crop) / 2)
        img = np.asarray(im.crop((left, top, left + crop, top + crop)), dtype=np.float32)
        img -= mean
        out[i] = img.transpose(2, 0, 1)
    np.save(out_path, out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", default=os.path.join(SHARED, "data", "imagenet", "samples-250"))
    parser.add_argument("--map", default=os.path.join(SHARED, "data", "imagenet", "samples_250_map.txt"))
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=4, help="second table: the images listed this many times")
    args = parser.parse_args()

    spec = get_model("resnet50")           # the MLPerf ResNet50 recipe; no model file is needed to preprocess
    cores = available_cores()
    tmp = tempfile.mkdtemp(prefix="bench_preprocess.")
    try:
        for times in (1, args.repeat):
            bench(spec, args, cores, tmp, times)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


def bench(spec, args, cores: int, tmp: str, times: int) -> None:
    """The three runs side by side over the map's images listed `times` times over (fixed costs amortised)."""
    with open(args.map) as f:
        lines = f.read().splitlines()
    map_path = os.path.join(tmp, f"map_x{times}.txt")
    with open(map_path, "w") as f:
        f.write("\n".join(lines * times) + "\n")
    image_map = read_map(map_path)
    paths = [os.path.join(args.images, name) for name in image_map.files]
    n = len(paths)
    for p in paths[:len(lines)]:            # warm the page cache: the three read the same files
        with open(p, "rb") as f:
            f.read()
    runs = {
        "pil_loop_1proc": lambda out: pil_loop(paths, os.path.join(out, "pil.npy")),
        f"harness_{cores}proc": lambda out: preprocess(spec, image_map, args.images, out, progress=False),
        "harness_1proc": lambda out: preprocess(spec, image_map, args.images, out, workers=1, progress=False),
    }
    names = list(runs)
    rates: dict[str, list[float]] = {name: [] for name in names}
    for rep in range(args.reps):
        order = names[rep % len(names):] + names[:rep % len(names)]
        for name in order:
            out = os.path.join(tmp, name)
            shutil.rmtree(out, ignore_errors=True)     # every run starts from nothing (untimed)
            os.makedirs(out)
            start = time.perf_counter()
            runs[name](out)
            rates[name].append(n / (time.perf_counter() - start))
        print(f"rep {rep + 1}: " + ", ".join(f"{k} {rates[k][-1]:.0f}" for k in names) + " images/s", flush=True)
    med = {k: statistics.median(v) for k, v in rates.items()}
    load = os.getloadavg()
    what = f"{len(lines)} images of {args.images}" + (f", each listed {times} times ({n} rows)" if times > 1 else "")
    print(f"\n{what}; {cores} cores, {args.reps} repetitions (medians), load average at the end "
          f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print("| run | images/s (median) | images/s per core | all repetitions |")
    print("| --- | --- | --- | --- |")
    for k in names:
        per_core = med[k] / (cores if k.startswith("harness_") and not k.endswith("_1proc") else 1)
        print(f"| {k} | {med[k]:.0f} | {per_core:.0f} | {' '.join(f'{r:.0f}' for r in rates[k])} |")
    ratio = [a / b for a, b in zip(rates[f"harness_{cores}proc"], rates["pil_loop_1proc"])]
    print(f"\nharness on {cores} cores / PIL loop: {statistics.median(ratio):.2f}x (median of per-repetition ratios; "
          f"target >= 1.8x); harness per core: {med['harness_1proc']:.0f} images/s in one process, "
          f"{med[f'harness_{cores}proc'] / cores:.0f} with all {cores} (target >= 300)\n", flush=True)


if __name__ == "__main__":
    sys.exit(main())
