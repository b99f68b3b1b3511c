#!/usr/bin/env python3
"""Self-test of a built `loadgen_native`: a short Server and Offline run through the native SUT, the way a run uses it.

    python native/selftest.py [--duration_ms 1000] [--scenarios Server,Offline]

native/build.py runs it in a child process after installing the module: a module that crashes (a segfault), hangs or
answers wrongly here would crash a user's run, so build.py records the outcome next to the module
(loadgen_native.selftest.json) and harness/loadgen/sut.py uses the native SUT only where that record says it passed with the
same module, source and numpy (`--sut=auto` falls back to the Python SUT with a warning otherwise).

It takes the harness's own code path: harness/loadgen/sut.py's QSL (LoadSamplesToRam runs np.unique & co. on LoadGen's
StartTest thread) and NativeSUT, harness/core/interrupt.py's run_interruptibly (StartTest on a Python worker thread while
the main thread joins), a null runner (no data, no model), LoadGen writing its logs into a temporary folder.
Exit 0 and a last line `SELFTEST OK {...}` when every scenario ran and answered every sample.
"""
import argparse
import json
import os
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "code"))

import numpy as np  # noqa: E402

SAMPLES = 512           # a small QSL: 512 samples of 3x8x8 float32
LABEL = 7


def run_scenario(lg, scenario: str, duration_ms: int, out_dir: str) -> dict:
    from harness.core import interrupt
    from harness.backends.base import Runner
    from harness.loadgen.lib import make_log_settings
    from harness.loadgen.sut import QSL, NativeSUT

    class Runner7(Runner):     # the null backend's shape: takes row numbers, answers a fixed label
        takes_rows = True

        def infer(self, rows):
            return np.full(len(rows), LABEL, dtype=np.int64)

    array = np.random.default_rng(0).random((SAMPLES, 3, 8, 8), dtype=np.float32)
    qsl = QSL(array, SAMPLES, [Runner7()])
    sut = NativeSUT(lg, qsl, [Runner7(), Runner7()], batch_size=8, output_offset=0,
                    batch_timeout_s=0.0005 if scenario == "Server" else 0.0)
    settings = lg.TestSettings()
    settings.scenario = getattr(lg.TestScenario, scenario)
    settings.mode = lg.TestMode.PerformanceOnly
    settings.min_duration_ms = duration_ms
    settings.max_duration_ms = duration_ms * 20
    settings.min_query_count = 100
    if scenario == "Server":
        settings.server_target_qps = 2000
        settings.server_target_latency_ns = 50_000_000
    else:
        settings.offline_expected_qps = 20000
    log_settings = make_log_settings(lg, out_dir)
    started = time.monotonic()
    sut_handle = sut.start()
    qsl_handle = qsl.construct(lg)
    try:
        with interrupt.SignalGuard() as guard:
            ended = interrupt.run_interruptibly(
                lambda: lg.StartTestWithLogSettings(sut_handle, qsl_handle, settings, log_settings,
                                                    os.path.join(out_dir, "no-audit.config")),
                guard, sut.abort, lambda: None, time_limit_s=60 + duration_ms / 1000 * 20)
    finally:
        sut.stop()
        lg.DestroyQSL(qsl_handle)
        sut.destroy()
    if ended != "done":
        raise SystemExit(f"selftest: {scenario}: LoadGen did not finish by itself ({ended}).")
    if sut.errors:
        raise SystemExit(f"selftest: {scenario}: the callback failed: {sut.errors[0]}")
    done = sut.completed()
    with open(os.path.join(out_dir, "mlperf_log_summary.txt")) as f:
        summary = f.read()
    if done <= 0 or "Result is" not in summary:
        raise SystemExit(f"selftest: {scenario}: {done} samples completed; LoadGen's summary has no result.")
    return {"scenario": scenario, "samples": int(done), "seconds": round(time.monotonic() - started, 2),
            "workers": sut.stats}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration_ms", type=int, default=1000)
    parser.add_argument("--scenarios", default="Server,Offline")
    opts = parser.parse_args()
    import faulthandler
    faulthandler.enable()       # a crash prints every thread's Python stack to stderr (build.py shows it)
    import loadgen_native as lg
    result = {"module": lg.__file__, "python": sys.version.split()[0], "numpy": np.__version__,
              "source_sha256": getattr(lg, "__source_sha256__", "unknown"),
              "pybind11": getattr(lg, "__pybind11_version__", "unknown"),
              "threads_before": threading.active_count(), "scenarios": []}
    with tempfile.TemporaryDirectory(prefix="loadgen-native-selftest-") as tmp:
        for scenario in [s for s in opts.scenarios.split(",") if s]:
            out_dir = os.path.join(tmp, scenario)
            os.makedirs(out_dir)
            result["scenarios"].append(run_scenario(lg, scenario, opts.duration_ms, out_dir))
    print("SELFTEST OK " + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
