"""What the integrity checks of issue 11 cost, measured side by side (alternating rounds, medians):

1. Loading a preprocessed array: the check every load runs (header, shape, CRC list vs checksum, CRC-32 of
   VERIFY_SAMPLE_ROWS rows) against `--verify` (CRC-32 of every row), on val-1300 in fp32_nchw and int8_linear
   (page cache warm), and both extrapolated to the 50,000-row validation set.
2. Preprocessing: the libjpeg-warning capture around each OpenCV decode (and the 1/8-scale check of the Pillow
   recipe) against the bare decode, per image.
3. The workers' read-back of each row (pread + byte comparison) against the bare pwrite, per row.

    .venv/bin/python scripts/bench_verify.py [--rounds 5] [--base /tmp/bench_verify]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import zlib

import numpy as np

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
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--base", default="/tmp/bench_verify")
    ap.add_argument("--images", type=int, default=200, help="images for the decode comparison")
    a = ap.parse_args()

    from resnet50 import imagenet, preprocessing
    from resnet50.models import get_model
    spec = get_model("resnet50")
    image_map = imagenet.read_map(VAL_MAP)
    formats = ["fp32_nchw", "int8_linear"]
    preprocessing.preprocess(spec, image_map, VAL, a.base, formats=formats, progress=True)
    n = len(image_map.files)

    print(f"\n1. Loading val-1300 ({n} rows), {a.rounds} alternating rounds, page cache warm")
    for fmt in formats:
        npy, _ = preprocessing.array_paths(a.base, spec, fmt, image_map)
        size = os.path.getsize(npy)
        sample, full = [], []
        preprocessing.load_preprocessed(spec, image_map, a.base, fmt, verify=True)        # warm the cache
        for _ in range(a.rounds):
            sample.append(timed(lambda: preprocessing.load_preprocessed(spec, image_map, a.base, fmt)))
            full.append(timed(lambda: preprocessing.load_preprocessed(spec, image_map, a.base, fmt, verify=True)))
        ms, mf = statistics.median(sample), statistics.median(full)
        print(f"   {fmt:<12} {size / 2**20:7.0f} MiB  every load (sampled): {ms * 1e3:7.1f} ms   --verify: "
              f"{mf * 1e3:7.0f} ms ({size / mf / 2**30:.2f} GiB/s)   50k rows: sampled ~{ms * 1e3:.0f} ms + the "
              f"manifest's size, --verify ~{mf * 50000 / n:.0f} s")

    print(f"\n2. Decoding {a.images} images of val-1300, {a.rounds} alternating rounds (ms per image, median)")
    files = [os.path.join(VAL, f) for f in image_map.files[:a.images]]
    real = imagenet._with_libjpeg_messages
    bare = lambda fn: (fn(), [])   # noqa: E731
    results = {k: [] for k in ("opencv bare", "opencv checked", "pil bare", "pil checked")}
    real_check = imagenet.check_jpeg_data
    for _ in range(a.rounds):
        for name, wrap, check, recipe in (("opencv bare", bare, real_check, "mlperf_resnet50"),
                                          ("opencv checked", real, real_check, "mlperf_resnet50"),
                                          ("pil bare", real, lambda d: None, "ofa_autosinian"),
                                          ("pil checked", real, real_check, "ofa_autosinian")):
            imagenet._with_libjpeg_messages, imagenet.check_jpeg_data = wrap, check
            results[name].append(timed(lambda: [imagenet.preprocess_file(f, recipe) for f in files]) / len(files))
    imagenet._with_libjpeg_messages, imagenet.check_jpeg_data = real, real_check
    for name, v in results.items():
        print(f"   {name:<15} {statistics.median(v) * 1e3:6.3f} ms")
    o = statistics.median(results["opencv checked"]) / statistics.median(results["opencv bare"])
    p = statistics.median(results["pil checked"]) / statistics.median(results["pil bare"])
    print(f"   ratio checked / bare: OpenCV recipe {o:.3f}, Pillow recipe {p:.3f}")

    print("\n3. Writing one row as a worker does: pwrite alone, and pwrite + pread + byte comparison (the read-back),"
          " alternating; CRC-32 of one row for scale (microseconds per row, median)")
    from harness.core.storage import pwrite_all
    for fmt in formats:
        npy, _ = preprocessing.array_paths(a.base, spec, fmt, image_map)
        rows = np.load(npy, mmap_mode="r")
        buf = np.ascontiguousarray(rows[0])
        scratch = os.path.join(a.base, "scratch.bin")
        fd = os.open(scratch, os.O_RDWR | os.O_CREAT)

        def write(readback):
            for i in range(100):
                pwrite_all(fd, buf, i * buf.nbytes, scratch)
                if readback and os.pread(fd, buf.nbytes, i * buf.nbytes) != buf.tobytes():
                    raise SystemExit("read-back differs")

        plain, back, crc = [], [], []
        for _ in range(a.rounds):
            plain.append(timed(lambda: write(False)) / 100)
            back.append(timed(lambda: write(True)) / 100)
            crc.append(timed(lambda: [zlib.crc32(buf) for _ in range(100)]) / 100)
        os.close(fd)
        os.remove(scratch)
        mp, mb, mc = (statistics.median(v) * 1e6 for v in (plain, back, crc))
        print(f"   {fmt:<12} {buf.nbytes} bytes: pwrite {mp:5.0f} us, pwrite + read-back {mb:5.0f} us "
              f"(+{mb - mp:.0f} us), CRC-32 {mc:5.0f} us")

if __name__ == "__main__":
    main()
