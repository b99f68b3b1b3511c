#!/usr/bin/env python3
"""AccuracyOnly through both SUTs (native and python), on the same samples: the accuracy logs must be identical.

The samples are val-1300 (preprocessed for EfficientNet-Lite0, `make demo` or `make preprocess_data` makes them)
repeated up to --samples (50,000 by default, ImageNet's validation size). The backend is a stand-in whose answer
depends on each sample's data (the argmax of its first 1000 values), so a response sent for the wrong sample, lost
or duplicated shows as a difference; it runs in microseconds, so the run measures the SUT and LoadGen. Each run is a
child process (LoadGen reads its mlperf.conf once per process) through harness.loadgen_run.run_loadgen, as
`code/main.py` runs a scenario.

    .venv/bin/python scripts/check_sut_accuracy.py --samples 50000 --repeat 3

Exit status 0 when every run completed all samples, every response is the expected label of its sample, and every
run's log (entries sorted by LoadGen's sequence id) is identical to the first.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "code"))
SHARED = os.path.abspath(os.environ.get("MLPERF_SHARED_DIR") or os.path.join(ROOT, "..", "shared"))
MAP = os.path.join(SHARED, "data", "imagenet", "val_map_1300.txt")

import numpy as np  # noqa: E402

from harness.backends.base import Runner  # noqa: E402


def sample_labels(array) -> np.ndarray:
    """The stand-in backend's answer for each row: argmax of its first 1000 values."""
    flat = np.asarray(array).reshape(len(array), -1)
    return flat[:, :1000].argmax(axis=1).astype(np.int64)


class DataLabelRunner(Runner):
    takes_rows = True

    def load_samples(self, array) -> None:
        self.labels = None if array is None else sample_labels(array)

    def infer(self, rows):
        return self.labels[rows]


class Repeated:
    """n samples: the base array's rows repeated (what QSL.load indexes)."""

    def __init__(self, base, n):
        self.base, self.n = base, n

    def __len__(self):
        return self.n

    def __getitem__(self, order):
        return self.base[np.asarray(order) % len(self.base)]


def base_array(prep_dir):
    from resnet50.imagenet import read_map
    from resnet50.preprocessing import default_preprocessed_dir, load_preprocessed
    from resnet50.models import get_model
    return load_preprocessed(get_model("efficientnet-lite0"), read_map(MAP), prep_dir or default_preprocessed_dir()).array


def child(kind: str, out_dir: str, samples: int, prep_dir: str, scenario: str, batch: int) -> None:
    from harness.loadgen.run import run_loadgen
    from harness.loadgen.sut import QSL, make_sut
    base = base_array(prep_dir)
    runner = DataLabelRunner()
    qsl = QSL(Repeated(base, samples), 1024, [runner])
    sut = make_sut(kind, qsl, [runner], batch, 0, 0.0005 if scenario == "Server" else 0.0)
    if sut.kind != kind:
        sys.exit(f"asked for the {kind} SUT, got {sut.kind}")
    cfg = {"system_id": "CPU", "config_block": "CPU", "config_ver": "sut-accuracy-check",
           "offline_expected_qps": 1000000, "server_target_qps": 20000, "performance_sample_count": 1024,
           "server_coalesce_queries": True}
    summary = run_loadgen(scenario, "AccuracyOnly", cfg, qsl, sut, out_dir)
    with open(os.path.join(out_dir, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)


def read_log(out_dir):
    with open(os.path.join(out_dir, "mlperf_log_accuracy.json")) as f:
        entries = json.load(f)
    return sorted((int(e["seq_id"]), int(e["qsl_idx"]), e["data"]) for e in entries)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=50000)
    parser.add_argument("--repeat", type=int, default=3, help="runs per SUT, alternated native/python")
    parser.add_argument("--suts", default="native,python")
    parser.add_argument("--scenario", default="Offline", choices=("Offline", "Server"))
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--preprocessed_data_dir", help="where val-1300 for EfficientNet-Lite0 is preprocessed")
    parser.add_argument("--child", nargs=2, metavar=("SUT", "OUT_DIR"), help=argparse.SUPPRESS)
    opts = parser.parse_args()
    if opts.child:
        child(opts.child[0], opts.child[1], opts.samples, opts.preprocessed_data_dir, opts.scenario,
              opts.batch_size)
        return 0

    expected_by_row = sample_labels(base_array(opts.preprocessed_data_dir))
    work = tempfile.mkdtemp(prefix="sut-accuracy-", dir=os.path.join(ROOT, "build") if os.path.isdir(
        os.path.join(ROOT, "build")) else None)
    reference, failures = None, []
    for rep in range(opts.repeat):
        for kind in opts.suts.split(","):
            out_dir = os.path.join(work, f"{kind}-{rep}")
            cmd = [sys.executable, os.path.abspath(__file__), "--child", kind, out_dir, "--samples", str(opts.samples),
                   "--scenario", opts.scenario, "--batch_size", str(opts.batch_size)]
            if opts.preprocessed_data_dir:
                cmd.append(f"--preprocessed_data_dir={opts.preprocessed_data_dir}")
            start = time.time()
            result = subprocess.run(cmd, capture_output=True, text=True)
            wall = time.time() - start
            if result.returncode != 0:
                failures.append(f"{kind} run {rep}: exit {result.returncode}: {result.stderr[-1500:]}")
                print(f"  {kind:<7} run {rep}: FAILED (exit {result.returncode})", flush=True)
                continue
            log = read_log(out_dir)
            idx = np.array([e[1] for e in log], dtype=np.int64)
            got = np.array([np.frombuffer(bytes.fromhex(e[2]), dtype=np.int32)[0] for e in log], dtype=np.int64)
            wrong = int((got != expected_by_row[idx % len(expected_by_row)]).sum())
            complete = len(log) == opts.samples and len(set(idx.tolist())) == opts.samples
            same = reference is None or log == reference
            reference = reference if reference is not None else log
            print(f"  {kind:<7} run {rep}: {len(log)} responses, {wrong} wrong, "
                  f"{'identical to the first run' if same else 'DIFFERS from the first run'}, {wall:.1f} s",
                  flush=True)
            if wrong or not complete or not same:
                failures.append(f"{kind} run {rep}: {len(log)} responses of {opts.samples}, {wrong} wrong labels, "
                                f"identical={same} ({out_dir})")
    if failures:
        print("FAILED:\n  " + "\n  ".join(failures))
        return 1
    print(f"OK: {opts.repeat} x {opts.suts} runs of {opts.samples} samples ({opts.scenario} AccuracyOnly), "
          f"identical accuracy logs. Logs: {work}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
