"""One scenario through the real LoadGen: settings (user.conf), log folders, the run, its summary and accuracy."""
from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

import numpy as np

from harness.core import interrupt
from harness.loadgen import limits as run_limits
from harness.core.errors import HarnessError
from harness.config.scenarios import get as get_scenario
from harness.config.scenarios import TestMode
from harness.core.paths import measurements_dir
from harness.core.storage import storage_errors
from harness.loadgen.lib import _lg, make_log_settings
from harness.loadgen.logs import (ACCURACY_LOG, DETAIL_LOG, SUMMARY_LOG, find_peak_result, read_accuracy_entries,
                                  read_detail, read_detail_log, response_label)
from harness.loadgen.settings import AUDIT_CONFIG, refuse_stray_audit_config, test_settings, user_conf_lines
from harness.loadgen.progress import ProgressLine  # the status line while LoadGen runs (off when stdout is no terminal)
from harness.loadgen import timing as sut_timing


def summarize(scenario, detail: dict[str, Any]) -> dict[str, Any]:
    """summary.json's figures: the scenario's headline (`metric`), the latency percentiles, and the figure the
    submission checker reads under LoadGen's own name (`checker_metric`; e.g. result_completed_samples_per_sec)."""
    sc = get_scenario(scenario)

    def ms(key):
        value = detail.get(key)
        return None if value is None else round(float(value) / 1e6, 4)

    out: dict[str, Any] = {"result_validity": detail.get("result_validity"), "metric": sc.summary_metric}
    out[sc.summary_metric] = ms(sc.summary_source) if sc.latency_bound else detail.get(sc.summary_source)
    for key, source, in_ms in sc.summary_extras:
        out[key] = ms(source) if in_ms else detail.get(source)
    out["checker_metric"] = sc.checker_key
    out[sc.checker_key] = detail.get(sc.checker_key)
    out[sc.summary_source] = detail.get(sc.summary_source)
    out["p50_latency_ms"] = ms("result_50.00_percentile_latency_ns")
    out["p90_latency_ms"] = out.get("p90_latency_ms") or ms("result_90.00_percentile_latency_ns")
    out["min_duration_ms"] = detail.get("effective_min_duration_ms")
    out["min_query_count"] = detail.get("effective_min_query_count")
    out["performance_sample_count"] = detail.get("effective_performance_sample_count")
    out["loadgen_errors"] = detail.get("_errors", [])
    return out


def evaluate_accuracy(accuracy_json: str, labels: np.ndarray, fp32_top1: float, model_key: str,
                      out_dir: str) -> dict[str, Any]:
    """Top-1 from mlperf_log_accuracy.json (int32 labels) against the val map; writes accuracy.txt and a JSON."""
    try:
        entries = read_accuracy_entries(accuracy_json)
    except ValueError as e:
        raise HarnessError(f"Cannot read {accuracy_json} ({e}); the accuracy run did not finish.") from None
    seen: dict[int, int] = {}
    for entry in entries:
        seen[int(entry["qsl_idx"])] = response_label(entry["data"])
    if not seen:
        raise HarnessError(f"{accuracy_json} holds no responses.")
    idx = np.fromiter(seen.keys(), dtype=np.int64)
    found = np.fromiter(seen.values(), dtype=np.int64)
    good = int((labels[idx] == found).sum())
    total = len(idx)
    top1 = 100.0 * good / total
    target = 0.99 * fp32_top1
    result = {"model": model_key, "top1": round(top1, 3), "good": good, "total": total,
              "dataset_size": int(len(labels)), "fp32_reference_top1": fp32_top1,
              "target_top1_99pct": round(target, 3), "pass": top1 >= target}
    with storage_errors():
        with open(os.path.join(out_dir, "accuracy.txt"), "w") as f:
            f.write(f"accuracy={top1:.3f}%, good={good}, total={total}\n")
        with open(os.path.join(out_dir, "accuracy_summary.json"), "w") as f:
            json.dump(result, f, indent=1)
    return result


def run_loadgen(scenario, test_mode: str, cfg: dict[str, Any], qsl, sut, out_dir: str,
                verbose: bool = False, audit=None) -> dict[str, Any]:
    """Run one scenario; returns the summary (without accuracy).

    `audit` (a harness.submission.rules.AuditTest) makes it a compliance run: its audit.config is written into
    out_dir, handed to LoadGen by path, and removed when the run ends, whatever happens."""
    lg = getattr(sut, "lg", None) or _lg()   # the native SUT brings its own LoadGen (harness/loadgen/sut.py)
    scenario = get_scenario(scenario)
    refuse_stray_audit_config()
    with storage_errors():    # a read-only or full log folder, a user.conf path that is a folder: named, no traceback
        user_conf = _write_user_conf(scenario, cfg, qsl.total, out_dir)
        settings = test_settings(lg, scenario, cfg, user_conf, test_mode)
        log_settings = make_log_settings(lg, out_dir, verbose)
        test = _Test(scenario, test_mode, out_dir, audit, settings)
    ended = test.run(lg, cfg, qsl, sut, settings, log_settings)
    wall = time.time() - test.start
    if ended == "interrupted":
        test.mark_interrupted(finished=True)
        raise interrupt.RunInterrupted(test.guard.signum, f"{scenario}: interrupted by "
                                       f"{interrupt.signal_name(test.guard.signum)}"
                                       f" after {wall:.1f} s; the logs in {out_dir} are marked INTERRUPTED (not a "
                                       "result).")
    if sut.errors:
        raise HarnessError(f"{scenario.name}: the backend failed during the run: {sut.errors[0]!r}")
    check_logs_complete(scenario.name, test_mode, out_dir)
    with storage_errors():
        return _run_summary(scenario, test_mode, cfg, sut, out_dir, ended, wall)


def check_logs_complete(scenario: str, test_mode: str, out_dir: str) -> None:
    """After LoadGen returns: its summary and detail logs exist and are not empty, the detail log ends with a whole
    entry (LoadGen cuts its logs silently when the disk fills), and an accuracy run's log is complete JSON."""
    problems = []
    for name in (SUMMARY_LOG, DETAIL_LOG):
        path = os.path.join(out_dir, name)
        size = os.path.getsize(path) if os.path.isfile(path) else None
        if size is None:
            problems.append(f"{name} is missing")
        elif size == 0:
            problems.append(f"{name} is empty (0 bytes)")
        elif name == DETAIL_LOG and not _ends_with_an_entry(path):
            problems.append(f"{name} is cut short ({size} bytes; its last line is not a whole LoadGen entry)")
        elif name == DETAIL_LOG and not read_detail(path).ok:
            problems.append(f"{name} {read_detail(path).problem} ({size} bytes)")
    if TestMode(test_mode).measures_accuracy and not problems:
        try:
            read_accuracy_entries(os.path.join(out_dir, ACCURACY_LOG))
        except ValueError as e:
            problems.append(f"{ACCURACY_LOG} is {e}")
    if problems:
        raise HarnessError(f"{scenario}: LoadGen's logs in {out_dir} are incomplete: {'; '.join(problems)}. "
                           f"{_free_space_note(out_dir)}LoadGen drops what it cannot write without saying so (a full "
                           "disk, a quota, a file size limit): free space (or pass another --log_dir), then run "
                           "again. This run is not a result.")


def _ends_with_an_entry(path: str) -> bool:
    """Whether the file's last line is a complete `:::MLLOG {json}` entry ending in a newline."""
    with open(path, "rb") as f:
        f.seek(max(0, os.path.getsize(path) - (1 << 16)))
        tail = f.read()
    if not tail.endswith(b"\n"):
        return False
    last = tail.rstrip(b"\n").rsplit(b"\n", 1)[-1]
    if not last.startswith(b":::MLLOG"):
        return False
    try:
        json.loads(last[len(b":::MLLOG"):])
    except ValueError:
        return False
    return True


def _free_space_note(folder: str) -> str:
    try:
        st = os.statvfs(folder)
    except OSError:
        return ""
    free = st.f_bavail * st.f_frsize
    return f"The disk holding it has {free / 2**20:.0f} MiB free. " if free < (256 << 20) else ""


def _write_user_conf(scenario, cfg: dict[str, Any], total: int, out_dir: str) -> str:
    """The run's user.conf, written into measurements/<system>/resnet50/<Scenario>/ (the path LoadGen reads) and
    into out_dir beside the logs; returns the first."""
    conf_dir = measurements_dir(cfg["system_id"], scenario.name)
    os.makedirs(conf_dir, exist_ok=True)
    os.makedirs(out_dir, exist_ok=True)
    user_conf = os.path.join(conf_dir, "user.conf")
    text = "\n".join(user_conf_lines(scenario, cfg, total)) + "\n"
    for path in (user_conf, os.path.join(out_dir, "user.conf")):
        with open(path, "w") as f:
            f.write(text)
    return user_conf


class _Test:
    """One StartTest, interruptible (harness/core/interrupt.py): the test runs on a worker thread so that Ctrl-C /
    SIGTERM reach Python; the first ends the run within seconds and marks it, a second exits at once. A compliance
    run's audit.config lives in out_dir for the test's length only."""

    def __init__(self, scenario, test_mode: str, out_dir: str, audit, settings):
        self.scenario, self.test_mode, self.out_dir, self.audit = scenario, test_mode, out_dir, audit
        self.guard = None
        self.start = None
        # A normal run never reads an audit.config: point LoadGen at a path that cannot exist.
        self.audit_path = os.path.join(out_dir, "no-audit.config")
        if audit is not None:
            self.audit_path = os.path.join(out_dir, AUDIT_CONFIG)
            with open(self.audit_path, "w") as f:
                f.write(audit.config)
            if audit.sets_test05:  # LoadGen 6 reads `test05` only from its built-in mlperf.conf, never an audit.config
                settings.test05 = True

    def remove_audit_config(self) -> None:
        if self.audit is not None and os.path.exists(self.audit_path):
            os.remove(self.audit_path)

    def mark_interrupted(self, finished: bool = False) -> None:
        self.remove_audit_config()
        interrupt.write_marker(self.out_dir, self.guard.signum,
                               _interrupted_info(self.scenario.name, self.test_mode, self.out_dir, finished,
                                                 time.time() - self.start))
        if not finished:
            print(f"ERROR: {self.scenario}: interrupted by {interrupt.signal_name(self.guard.signum)} after "
                  f"{time.time() - self.start:.1f} s; LoadGen was stopped mid-test: the logs in {self.out_dir} are "
                  "partial and marked INTERRUPTED (not a result).", file=sys.stderr, flush=True)

    def mark_stuck(self, max_ms: int) -> None:
        """The watchdog's abort did not end the test (a backend stuck in infer): mark the run; the process ends."""
        self.remove_audit_config()
        info = {"scenario": self.scenario.name, "test_mode": self.test_mode,
                "wall_seconds": round(time.time() - self.start, 2)}
        message = run_limits.mark_stuck(self.out_dir, info, max_ms)
        print(f"ERROR: {self.scenario}: {message} Logs: {self.out_dir}. Check the backend (a hung device or "
              "driver), or lower the target so that the run ends within --max_duration.", file=sys.stderr, flush=True)

    def run(self, lg, cfg: dict[str, Any], qsl, sut, settings, log_settings) -> str:
        """The test from the SUT's start to its destruction; how it ended (interrupt.run_interruptibly)."""
        try:
            sut_handle = sut.start()
            qsl_handle = qsl.construct(lg)
            self.start = time.time()
            progress = ProgressLine.for_run(self.scenario.name, settings, sut)
            try:
                with interrupt.SignalGuard(on_second=self.mark_interrupted) as self.guard:
                    return interrupt.run_interruptibly(
                        lambda: lg.StartTestWithLogSettings(sut_handle, qsl_handle, settings, log_settings,
                                                            self.audit_path),
                        self.guard, sut.abort, self.mark_interrupted,
                        # FindPeakPerformance runs many tests of min_duration in one StartTest: no watchdog there
                        time_limit_s=None if TestMode.of(self.test_mode) is TestMode.FIND_PEAK else
                        run_limits.watchdog_s(run_limits.max_duration_ms(cfg)),
                        on_stuck=lambda: self.mark_stuck(run_limits.max_duration_ms(cfg)),
                        stuck_grace_s=run_limits.STUCK_GRACE_S)
            finally:
                progress.stop()
                sut.stop()
                lg.DestroyQSL(qsl_handle)
                sut.destroy()
        finally:
            self.remove_audit_config()


def _run_summary(scenario, test_mode: str, cfg: dict[str, Any], sut, out_dir: str, ended: str,
                 wall: float) -> dict[str, Any]:
    """summary.json's run part, from LoadGen's detail log and the SUT; a run that hit max_duration is marked."""
    summary = summarize(scenario, read_detail_log(os.path.join(out_dir, "mlperf_log_detail.txt")))
    if TestMode.of(test_mode) is TestMode.FIND_PEAK:
        summary["find_peak"] = find_peak_result(os.path.join(out_dir, "mlperf_log_detail.txt"))
    summary["wall_seconds"] = round(wall, 2)
    if ended == "time_limit":
        run_limits.mark_ended_at_max_duration(out_dir, summary, run_limits.max_duration_ms(cfg))
        print(f"WARNING: {scenario}: LoadGen had not finished {run_limits.max_duration_ms(cfg)} ms (max_duration) "
              "after it started; the remaining queries were answered at once and the run is INVALID. Lower the "
              "target, or raise --max_duration.", file=sys.stderr)
    summary["sut"] = getattr(sut, "kind", "python")
    summary["sut_workers"] = [{k: round(v, 3) if isinstance(v, float) else v for k, v in st.items()}
                              for st in sut.stats]
    if getattr(sut, "timing", None):   # per-sample latency histogram and completion timeline (harness/report/page.py)
        sut_timing.write(out_dir, sut.timing)
    return summary


def _interrupted_info(scenario: str, test_mode: str, out_dir: str, finished: bool, wall: float) -> dict[str, Any]:
    """What an interrupted run's summary.json holds: LoadGen's own verdict when it got to write one."""
    info: dict[str, Any] = {"scenario": scenario, "test_mode": test_mode, "wall_seconds": round(wall, 2),
                            "loadgen_finished": finished}
    if finished:
        try:
            detail = summarize(scenario, read_detail_log(os.path.join(out_dir, "mlperf_log_detail.txt")))
            info["loadgen_result_validity"] = detail.pop("result_validity", None)
            info.update(detail)
        except HarnessError:
            pass
    return info
