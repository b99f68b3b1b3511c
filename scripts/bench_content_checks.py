"""What the content checks of issue 19 (part 2) cost on load, on val-1300 (ResNet50 recipe, fp32_nchw, ~746 MiB):

1. every load with the file's stamp unchanged: header, shape, CRC list vs checksum, labels vs their digest and vs
   the map, a stat (size, mtime, inode, ctime), CRC-32 of VERIFY_SAMPLE_ROWS rows;
2. a load after the stamp changed (a write, even with the mtime restored): CRC-32 of every row;
3. preprocess_data's up-to-date check with --data_dir: the source digest (one stat per image of the map) on top of 1.
Page cache warm; medians of --rounds. Each is extrapolated to 50,000 rows.

    .venv/bin/python scripts/bench_content_checks.py [--rounds 3] [--base /tmp/bench_verify]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "code"))
SHARED = os.environ.get("MLPERF_SHARED_DIR") or os.path.join(ROOT, "..", "shared")
VAL = os.path.join(SHARED, "data", "imagenet", "val-1300")
VAL_MAP = os.path.join(SHARED, "data", "imagenet", "val_map_1300.txt")


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--base", default="/tmp/bench_verify")
    a = ap.parse_args()

    from resnet50 import imagenet, manifest, preprocessing
    from resnet50.models import get_model
    spec = get_model("resnet50")
    image_map = imagenet.read_map(VAL_MAP)
    preprocessing.preprocess(spec, image_map, VAL, a.base, progress=True)
    npy, _ = preprocessing.array_paths(a.base, spec, "fp32_nchw", image_map)
    n, size = len(image_map.files), os.path.getsize(npy)
    preprocessing.load_preprocessed(spec, image_map, a.base, verify=True)             # warm the page cache
    sampled, changed, uptodate, source = [], [], [], []
    for _ in range(a.rounds):
        sampled.append(timed(lambda: preprocessing.load_preprocessed(spec, image_map, a.base)))
        os.utime(npy, ns=(os.stat(npy).st_atime_ns, os.stat(npy).st_mtime_ns))       # ctime moves: stamp changes
        changed.append(timed(lambda: preprocessing.load_preprocessed(spec, image_map, a.base)))
        uptodate.append(timed(lambda: manifest.is_up_to_date(spec, "fp32_nchw", image_map, a.base, say=None,
                                                            data_dir=VAL)))             # verifies, restamps
        source.append(timed(lambda: manifest.source_identity(image_map, VAL)))
    scale = 50000 / n
    m = statistics.median(sampled)
    print(f"{'every load, stamp unchanged (sampled)':<66} {m * 1e3:8.1f} ms   50k rows: about the same plus parsing "
          "the 50k-row manifest and comparing its labels (tens of ms)")
    for what, v, extra in (
                           ("a load after the stamp changed (every row)", changed, "scales with rows"),
                           ("preprocess_data up-to-date after a change (every row + source)", uptodate, "scales"),
                           ("the source digest alone (one stat per image)", source, "scales")):
        m = statistics.median(v)
        print(f"{what:<66} {m * 1e3:8.1f} ms   50k rows ~{m * scale:7.2f} s ({extra})")
    print(f"array: {n} rows, {size / 2**20:.0f} MiB; full check {size / statistics.median(changed) / 2**30:.2f} GiB/s")


if __name__ == "__main__":
    main()
