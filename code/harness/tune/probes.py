"""The probes of a tune: each its own process, its outcome read back for the search (harness/tune/search.py).

LoadGen reads its config once per process (a second FromConfig marks the log not valid), so each probe is
`code/main.py --action=run_harness <the user's flags> <the probe's flags> --log_dir=<tune dir>/probes/NN-...`, whose
summary.json and mlperf_log_detail.txt are read back. A probe counts as VALID when LoadGen says so, or (Server) when
only its early stopping failed (p99 within the bound, as FindPeakPerformance judges its steps): a probe's thousand
queries tolerate two or three over the bound where a full run tolerates 1%. A Server probe also needs its p99 within
--tune_latency_margin (default 0.85) of the bound: on one H200 a probe VALID at 92% of the bound was INVALID in 2 of
3 confirming runs of 60 s (docs/performance.md); the margin moves the search below such a cliff before the long
confirming runs. A probe that is clearly INVALID stops early: LoadGen's own `server_max_async_queries` ends the
issuing once more queries are outstanding than a VALID run could have (search.max_async_queries).

Every probe is logged as a line of <tune dir>/tune_log.jsonl (harness/report/tune_log.py).
"""
from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from typing import Any, Optional

from harness.core import env as env_vars
from harness.config.flags import FLAG_BY_NAME
from harness.config.scenarios import TestMode
from harness.config.scenarios import get as get_scenario
from harness.core.errors import HarnessError
from harness.core.paths import BENCHMARK, REPO_ROOT
from harness.core.storage import read_json
from harness.loadgen.logs import read_detail_log
from harness.report.tune_log import PROBE, TUNE_LOG, TuneRecord, append as append_record
from harness.tune.overlay import rounded
from harness.tune.search import (OFFLINE_HEADROOM, Found, Outcome, adjust_rule, confirm, max_async_queries,
                                 probe_passes, run_search, within_margin)

# Flags of the user's command line that every child replaces (besides the ones a probe sets, and tune's own).
PROBE_OWNED = ("action", "scenarios", "log_dir", "test_mode")
SERVER_BOUND_FALLBACK_NS = 15_000_000   # mlperf.conf resnet50.Server.target_latency; read from LoadGen when possible


def child_argv(argv: list[str], scenario: str, log_dir: Optional[str], flags: dict[str, Any],
               action: str = "run_harness") -> list[str]:
    """The user's flags without the ones a probe owns or tune alone reads, then the probe's."""
    out, skip = [], False
    for word in argv:
        if skip:
            skip = False
            continue
        if word.startswith("--"):
            name, eq, _ = word[2:].partition("=")
            if name in PROBE_OWNED or name.startswith("tune_") or name in flags:
                flag = FLAG_BY_NAME.get(name)
                skip = not eq and flag is not None and not flag.switch
                continue
        out.append(word)
    out = [f"--action={action}", f"--scenarios={scenario}", f"--test_mode={TestMode.PERFORMANCE.value}"] + \
        ([f"--log_dir={log_dir}"] if log_dir else []) + out
    for name, value in flags.items():
        if value is not None:
            out.append(f"--{name}={str(value).lower() if isinstance(value, bool) else value}")
    return out


def _server_bound_ns(scenario: str) -> int:
    """resnet50's latency bound of a latency-constrained scenario (Server) as the installed LoadGen's mlperf.conf
    sets it."""
    try:
        import mlperf_loadgen as lg
        with tempfile.NamedTemporaryFile("w", suffix=".conf", delete=False) as f:
            f.write("# empty: only mlperf.conf\n")
        settings = lg.TestSettings()
        rc = settings.FromConfig(f.name, BENCHMARK, scenario)
        os.unlink(f.name)
        if rc == 0 and settings.server_target_latency_ns > 0:
            return int(settings.server_target_latency_ns)
    except Exception:
        pass
    return SERVER_BOUND_FALLBACK_NS


class Tuner:
    """Runs the probes of one scenario (each its own process) and logs them; `search` and `confirm` use them."""

    def __init__(self, args, argv: list[str], scenario: str, tune_dir: str, cfg: dict[str, Any],
                 stream=None):
        self.args, self.argv, self.scenario, self.dir, self.cfg = args, argv, scenario, tune_dir, cfg
        self.sc = get_scenario(scenario)
        self.key = self.sc.target_key
        self.stream = stream or sys.stdout
        self.tty = _isatty(self.stream)
        self.count = 0
        self.bound_ns = _server_bound_ns(scenario) if self.sc.latency_constrained else None
        os.makedirs(os.path.join(tune_dir, "probes"), exist_ok=True)
        self.log_path = os.path.join(tune_dir, TUNE_LOG)
        self.child: Optional[subprocess.Popen] = None

    # -- logging --------------------------------------------------------------------------------------------
    def log(self, record: TuneRecord) -> None:
        """One line of tune_log.jsonl (harness/report/tune_log.py), stamped now."""
        record.time = time.strftime("%Y-%m-%dT%H:%M:%S")
        append_record(self.log_path, record)

    def say(self, text: str) -> None:
        self.stream.write(("\r\033[K" if self.tty else "") + text + "\n")
        self.stream.flush()

    # -- one probe -----------------------------------------------------------------------------------------
    def probe(self, value: float, phase: str, params: dict[str, Any]) -> Outcome:
        self.count += 1
        key = self.key
        folder = os.path.join(self.dir, "probes", f"{self.count:02d}-{phase}-{_short(value)}")
        confirm_run = phase == "confirm"
        flags, est_s = self._probe_flags(value, params, confirm_run)
        argv = child_argv(self.argv, self.scenario, folder, flags)
        what = " ".join(f"{k}={v}" for k, v in params.items())
        head = f"[tune] {self.scenario} #{self.count} {phase:<7} {key}={flags[key]}" + (f" ({what})" if what else "")
        if not self.tty:
            self.say(head + " ...")
        start = time.monotonic()
        timeout_s = 3 * est_s + 300 if confirm_run else 2 * est_s + 90
        rc, note = self._run_child(argv, folder, timeout_s=timeout_s, head=head)
        seconds = time.monotonic() - start
        out = self._outcome(value, rc, note, folder, seconds, confirm_run)
        out.params = dict(params)
        self.say(f"{head} -> {self._describe(out)}")
        self._log_probe(out, phase, flags[key], params, seconds, folder, argv)
        if out.validity == "ERROR":     # a run that failed is no verdict on the value: stop and say why
            raise HarnessError(f"tune: the {self.scenario} probe at {key}={flags[key]} failed ({out.reason}); its "
                               f"output is in {os.path.join(folder, 'probe.log')}.")
        return out

    def _probe_flags(self, value: float, params: dict[str, Any], confirm_run: bool) -> tuple[dict[str, Any], float]:
        """The flags of one probe (the grid point's, the value, the run length; a Server probe's query counts) and
        how long it should take (s)."""
        flags: dict[str, Any] = dict(params)
        flags[self.key] = rounded(self.scenario, value)
        length_ms = self.args.tune_confirm_ms if confirm_run else self.args.tune_probe_ms
        if length_ms:
            flags["min_duration"] = int(length_ms)
        est_s = (length_ms or int(self.cfg.get("min_duration") or 600000)) / 1000.0
        if not confirm_run and self.sc.latency_constrained:
            queries = max(int(self.args.tune_probe_queries), int(value * est_s))
            flags["min_query_count"] = queries
            est_s = max(est_s, queries / value)
            batch = int(params.get("batch_size") or self.cfg.get("batch_size") or 1)
            slots = int(params.get("workers") or self.cfg.get("workers") or 1) * \
                int(params.get("gpu_inference_streams") or self.cfg.get("gpu_inference_streams") or 1)
            flags["server_max_async_queries"] = max_async_queries(value, self.bound_ns / 1e9, queries, batch, slots)
        elif not confirm_run and self.sc.one_query:
            flags["min_query_count"] = 1
            est_s *= OFFLINE_HEADROOM
        return flags, est_s

    def _log_probe(self, out: Outcome, phase: str, value: Any, params: dict[str, Any], seconds: float, folder: str,
                   argv: list[str]) -> None:
        self.log(TuneRecord(PROBE, self.scenario, self.key, phase=phase, value=value, valid=out.valid,
                            latency_ms=out.latency_ms, bound_ms=out.bound_ms, measured=out.measured,
                            extra={"index": self.count, "params": params, "validity": out.validity,
                                   "loadgen_validity": out.loadgen_validity, "reason": out.reason,
                                   "seconds": round(seconds, 1), "load_average": _load(),
                                   "folder": os.path.relpath(folder, self.dir),
                                   "command": "code/main.py " + shlex.join(argv)}))

    def build_engine(self, params: dict[str, Any]) -> None:
        """generate_engines for a grid point, once, in its own process (a build may take long: no probe timeout)."""
        argv = child_argv(self.argv, self.scenario, None, dict(params), action="generate_engines")
        result = subprocess.run([sys.executable, os.path.join(REPO_ROOT, "code", "main.py")] + argv,
                                capture_output=True, text=True)
        if result.returncode != 0:
            raise HarnessError(f"tune: generate_engines for {self.scenario} {params_text(params)} failed: "
                               f"{(result.stderr or result.stdout).strip()[-600:]}")

    def _run_child(self, argv: list[str], folder: str, timeout_s: float, head: str) -> tuple[int, str]:
        os.makedirs(folder, exist_ok=True)
        # No status line and no per-probe HTML report (the tune folder's report lists the probes).
        env = dict(os.environ, **{env_vars.HARNESS_PROGRESS.name: "0", env_vars.REPORT.name: "0"}, PYTHONUNBUFFERED="1")
        env.pop("MLPERF_HARNESS_RUN_ROOT", None)
        with open(os.path.join(folder, "probe.log"), "w") as log:
            self.child = subprocess.Popen([sys.executable, os.path.join(REPO_ROOT, "code", "main.py")] + argv,
                                          stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
            start = time.monotonic()
            try:
                while True:
                    try:
                        rc = self.child.wait(timeout=0.5)
                        return rc, ""
                    except subprocess.TimeoutExpired:
                        pass
                    elapsed = time.monotonic() - start
                    if self.tty:
                        self.stream.write(f"\r\033[K{head} ... {elapsed:.0f} s")
                        self.stream.flush()
                    if elapsed > timeout_s:
                        self._kill()
                        return -1, f"killed after {elapsed:.0f} s (limit {timeout_s:.0f} s)"
            except BaseException:       # Ctrl-C, or SIGTERM (main.py's handler raises): end the probe, then go on up
                self._kill()
                raise
            finally:
                self.child = None

    def _kill(self) -> None:
        child = self.child
        if child is None or child.poll() is not None:
            return
        try:
            os.killpg(child.pid, signal.SIGTERM)   # the probe's own process group (start_new_session)
            child.wait(timeout=10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(child.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            child.wait()

    def _outcome(self, value: float, rc: int, note: str, folder: str, seconds: float,
                 confirm_run: bool = False) -> Outcome:
        if rc == -1:
            return Outcome(value, "TIMEOUT", reason=note, seconds=seconds, folder=folder)
        summary_path = _find(folder, "summary.json")
        summary = read_json(summary_path, missing=None, invalid=None) if summary_path is not None else None
        if rc != 0 or not isinstance(summary, dict):
            tail = _tail(os.path.join(folder, "probe.log"))
            return Outcome(value, "ERROR", reason=f"exit {rc}: {tail}", seconds=seconds, folder=folder)
        detail = read_detail_log(os.path.join(os.path.dirname(summary_path), "mlperf_log_detail.txt"))
        validity, reason = self._verdict(summary, detail, confirm_run)
        out = Outcome(value, validity, reason=reason.strip(), seconds=seconds, folder=folder)
        out.loadgen_validity = str(summary.get("result_validity"))
        self._measure(out, summary, detail)
        return out

    def _verdict(self, summary: dict[str, Any], detail: dict[str, Any], confirm_run: bool) -> tuple[str, str]:
        """(validity, reason) of a probe for the search: LoadGen's, but STOPPED when it ended early; a Server probe
        judged by its p99 where only early stopping failed, and held to --tune_latency_margin."""
        validity = str(summary.get("result_validity") or "INVALID")
        errors = summary.get("loadgen_errors") or []
        reason = detail.get("result_invalid_reason") or ""
        if any("Too many outstanding queries" in e for e in errors):
            validity, reason = "STOPPED", "ended early: too many outstanding queries (clearly INVALID)"
        if validity == "INVALID" and not reason:
            reason = str(detail.get("early_stopping_result") or "").strip()
        if not self.sc.latency_constrained or confirm_run:
            return validity, reason
        if validity == "INVALID" and probe_passes(detail):
            # A probe has a thousand queries, where LoadGen's early stopping tolerates two or three over the bound
            # (a full-length run about 1%): judge it as FindPeakPerformance judges its steps, by the p99.
            validity, reason = "VALID", "p99 within the bound (LoadGen's early stopping wants a longer run)"
        bound_ms = float(detail.get("effective_target_latency_ns") or self.bound_ns or 0) / 1e6
        return within_margin(validity, reason, summary.get(self.sc.latency_key), bound_ms,
                             float(getattr(self.args, "tune_latency_margin", 1.0) or 1.0))

    def _measure(self, out: Outcome, summary: dict[str, Any], detail: dict[str, Any]) -> None:
        """What the probe measured, as the scenario's search reads it."""
        if self.sc.latency_constrained:
            out.latency_ms = summary.get(self.sc.latency_key)
            bound = detail.get("effective_target_latency_ns")
            if bound:
                self.bound_ns = int(bound)
            out.bound_ms = self.bound_ns / 1e6
            out.measured = summary.get("completed_samples_per_second")
        elif self.sc.one_query:
            out.measured = summary.get("samples_per_second")
        else:
            out.latency_ms = summary.get(self.sc.latency_key)
            mean = detail.get("result_mean_query_latency_ns") or detail.get("result_mean_latency_ns")
            out.measured = float(mean) if mean else None

    def _describe(self, out: Outcome) -> str:
        text = f"{out.validity:<7}"
        if self.sc.latency_constrained and out.latency_ms is not None:
            text += f" p99 {out.latency_ms:.2f} ms / bound {out.bound_ms:.0f} ms"
            if out.measured:
                text += f", completed {out.measured:,.1f}/s"
        elif self.sc.one_query and out.measured:
            text += f" {out.measured:,.1f} samples/s"
        elif out.latency_ms is not None:
            text += (f" p{self.sc.latency_percentile} {out.latency_ms:.3f} ms, mean "
                     f"{(out.measured or 0) / 1e6:.3f} ms")
        if out.reason and (not out.valid or out.loadgen_validity not in ("", "VALID")):
            text += f" ({out.reason.splitlines()[0][:120]})"
        return text + f" [{out.seconds:.0f} s]"

    # -- the search ----------------------------------------------------------------------------------------
    def search(self, params: dict[str, Any], start: float) -> Found:
        probe = lambda value, phase: self.probe(value, phase, params)   # noqa: E731
        return run_search(self.sc, probe, start, tolerance=float(self.args.tune_tolerance),
                          growth=float(self.args.tune_growth), max_probes=int(self.args.tune_max_probes))

    def confirm(self, params: dict[str, Any], value: float) -> tuple[Optional[float], list[Outcome]]:
        run = lambda v, phase: self.probe(v, phase, params)   # noqa: E731
        return confirm(run, value, adjust_rule(self.sc, float(self.args.tune_tolerance)),
                       runs=int(self.args.tune_confirm_runs))


def _load() -> Optional[float]:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def warn_if_busy(stream=None) -> None:
    """A tune measures the machine as it is: say so when other work is running on it."""
    load, cores = _load(), os.cpu_count() or 1
    if load is not None and load > 0.75 * cores:
        print(f"[tune] WARNING: load average {load} on {cores} core(s): other work is running here, and the values "
              "found will be what this machine gives while it does. Tune on a quiet machine for values to ship.",
              file=stream or sys.stdout, flush=True)


def _short(value: float) -> str:
    return f"{value:.4g}".replace("+", "")


def _isatty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def _find(folder: str, name: str) -> Optional[str]:
    for root, _, files in os.walk(folder):
        if name in files:
            return os.path.join(root, name)
    return None


def _tail(path: str, n: int = 3) -> str:
    try:
        with open(path, errors="replace") as f:
            lines = [line.strip() for line in f if line.strip()]
        return " | ".join(lines[-n:])
    except OSError:
        return "(no output)"




def params_text(params: dict[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in params.items()) or "(configured settings)"
