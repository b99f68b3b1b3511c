"""`make tune`: find by running it the value a scenario's config should hold, and write it as a config overlay.

- Server: the highest `server_target_qps` LoadGen judges VALID. Bracketing from the configured target (x2 up until
  a probe is INVALID, or down until one is VALID), then bisection until the bracket is narrower than
  --tune_tolerance, each step a short probe (--tune_probe_ms, at least --tune_probe_queries queries); then
  --tune_confirm_runs confirming runs at full length (--tune_confirm_ms, default the config's min_duration, else
  LoadGen's 600 s), all of which must be VALID, stepping down by the tolerance when one is not. A probe counts as
  VALID when LoadGen says so, or when only its early stopping failed (p99 within the bound, as FindPeakPerformance
  judges its steps): a probe's thousand queries tolerate two or three over the bound where a full run tolerates 1%.
  A Server probe also needs its p99 within --tune_latency_margin (default 0.85) of the bound: on one H200 a probe
  VALID at 92% of the bound was INVALID in 2 of 3 confirming runs of 60 s (docs/performance.md); the margin moves
  the search below such a cliff before the long confirming runs. A probe that is clearly INVALID stops early:
  LoadGen's own `server_max_async_queries` ends the issuing once more queries are outstanding than a VALID run
  could have (`max_async_queries` below). An INVALID probe's completed rate is the system's capacity, which caps
  the bracket (a VALID target cannot exceed what the system completes).
- Offline: the sustained samples/s; `offline_expected_qps` is written 10% above it, so that LoadGen's one query
  (1.1 x min_duration x expected samples) lasts min_duration even on a somewhat faster run.
- SingleStream / MultiStream: the mean query latency, written as the expected latency (LoadGen pregenerates
  2 x min_duration / expected queries: a value above twice the real latency ends the run short and INVALID).
- --tune_grid="batch_size=1,2;server_batch_timeout_us=0,2000" searches every combination and keeps the best
  (Server: highest target; Offline: highest rate; SingleStream/MultiStream: lowest latency).

Each probe is its own process (LoadGen reads its config once per process: a second FromConfig marks the log not
valid): `code/main.py --action=run_harness <the user's flags> <the probe's flags> --log_dir=<tune dir>/probes/NN-...`,
whose summary.json and mlperf_log_detail.txt are read back. Everything goes under <run root>/tune/<Scenario>/:
tune_log.jsonl (one JSON object per line: a `start` line, one `probe` line per probe or confirming run, a `result`
line), overlay.json (the values found, as a config snippet) and probes/.

The search itself is pure functions over a `probe(value, phase) -> Outcome` callable (tests drive them with a fake).
"""
from __future__ import annotations

import itertools
import json
import math
import os
import signal
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Optional

from harness.core.paths import REPO_ROOT, BENCHMARK
from harness.core.errors import HarnessError
from harness.core.names import check_safe_name
from harness.config.scenarios import get as get_scenario
from harness.config.flags import FLAG_BY_NAME
from harness.loadgen.logs import read_detail_log
from harness.config.context import run_config, system_id
from harness.config.files import config_path, load_config_file
from harness.config.flags import overrides
from harness.core.paths import new_run_root
from harness.loadgen.settings import refuse_stray_audit_config
from harness.report.page import render_after_run  # the HTML report: target vs p99 per probe, the bound, the chosen point

# The config key each scenario's search finds.
TUNED_KEY = {"Server": "server_target_qps", "Offline": "offline_expected_qps",
             "SingleStream": "single_stream_expected_latency_ns", "MultiStream": "multi_stream_expected_latency_ns"}
OFFLINE_HEADROOM = 1.1
CONFIRM_RETRIES = 3
# Flags of the user's command line that every child replaces (besides the ones a probe sets, and tune's own).
_PROBE_OWNED = ("action", "scenarios", "log_dir", "test_mode")
# Config-key flags that describe a run, not a system: never written into an overlay.
_NOT_OVERLAY = ("min_duration", "min_query_count", "max_query_count", "map_path", "calib_data_map",
                "server_max_async_queries", "performance_sample_count")
SERVER_BOUND_FALLBACK_NS = 15_000_000   # mlperf.conf resnet50.Server.target_latency; read from LoadGen when possible


# ---------------------------------------------------------------------------------------------------------------
# Outcomes and the pure search
@dataclass
class Outcome:
    """One probe or confirming run, as the search sees it."""
    value: float
    validity: str                       # VALID, INVALID, STOPPED (ended early: clearly INVALID), MARGIN (Server
    #                                     probe VALID but p99 above --tune_latency_margin x bound), TIMEOUT, ERROR
    latency_ms: Optional[float] = None  # Server p99, SingleStream p90, MultiStream p99
    bound_ms: Optional[float] = None    # Server: the latency bound
    measured: Optional[float] = None    # Server: completed samples/s; Offline: samples/s; SS/MS: mean latency ns
    reason: str = ""
    seconds: float = 0.0
    folder: str = ""
    params: dict = field(default_factory=dict)
    loadgen_validity: str = ""          # LoadGen's own verdict, where the search judged otherwise

    @property
    def valid(self) -> bool:
        return self.validity == "VALID"


Probe = Callable[[float, str], Outcome]


@dataclass
class Found:
    value: Optional[float]             # the best value found (VALID in a probe), None when none was
    upper: Optional[float] = None      # Server: the lowest INVALID value probed
    probes: int = 0
    stop: str = ""                     # why the search stopped


def search_ceiling(probe: Probe, start: float, *, growth: float = 2.0, tolerance: float = 0.05,
                   max_probes: int = 12, floor: Optional[float] = None) -> Found:
    """The highest value for which probe(value) is VALID, assuming VALID below some ceiling and INVALID above.

    Bracketing: x`growth` up from `start` until INVALID, or down until VALID (below `floor` it gives up). Then
    bisection until hi - lo <= tolerance x lo. An INVALID outcome whose `measured` (the completed rate) fell short of
    the value did not keep up: that rate is what the system can do; it caps the bracket at 1.1 x that rate and,
    bracketing down, lets the next step go straight to 0.75 x it."""
    if start <= 0:
        raise HarnessError(f"tune: the starting value must be positive, got {start}.")
    floor = start / 256 if floor is None else floor
    lo: Optional[float] = None       # highest VALID value probed
    hi: Optional[float] = None       # lowest INVALID value probed
    capacity: Optional[float] = None  # lowest completed rate of an INVALID probe
    value, n = float(start), 0
    while True:
        if n >= max_probes:
            return Found(lo, hi, n, f"the probe limit ({max_probes}) was reached")
        phase = "bisect" if lo is not None and hi is not None else "bracket"
        out = probe(value, phase)
        n += 1
        if out.valid:
            lo = value if lo is None else max(lo, value)
        else:
            hi = value if hi is None else min(hi, value)
            if out.measured and 0 < out.measured < 0.95 * value:   # it could not keep up: that is its capacity
                capacity = out.measured if capacity is None else min(capacity, out.measured)
        if hi is None:                         # everything so far VALID: go up
            value = lo * growth
            continue
        if lo is None:                         # everything so far INVALID: go down
            nxt = hi / growth if capacity is None else 0.75 * min(capacity, hi)
            if nxt < floor:
                return Found(None, hi, n, f"no VALID value down to {floor:.4g}")
            value = nxt
            continue
        upper = hi
        if capacity is not None and lo * (1 + tolerance) < 1.1 * capacity < hi:
            upper = 1.1 * capacity
        if upper - lo <= tolerance * lo:
            return Found(lo, hi, n, f"bracket [{lo:.4g}, {upper:.4g}] within {tolerance:.0%}")
        value = (lo + upper) / 2


def search_fixed_point(probe: Probe, start: float, target_of: Callable[[Outcome], float],
                       accept: Callable[[float, float], bool], *, max_probes: int = 6) -> Found:
    """Offline and the latency scenarios: run at `value`, compute the value the run says the config should hold
    (`target_of`), and repeat until a VALID run's value is acceptable for what it measured (`accept(value, target)`);
    at the probe limit, the last value that ran VALID. A TIMEOUT (a value so wrong that the run took far too long)
    retries at a quarter of it."""
    value, n, last_valid = float(start), 0, None
    while n < max_probes:
        out = probe(value, "measure")
        n += 1
        if out.validity == "TIMEOUT":
            value = value / 4
            continue
        if out.measured is None or out.measured <= 0:
            return Found(last_valid, None, n, f"the probe at {value:.4g} measured nothing ({out.reason})")
        nxt = float(target_of(out))
        if out.valid:
            last_valid = value
            if accept(value, nxt):
                return Found(value, None, n, f"converged: the run at {value:.4g} asks for {nxt:.4g}")
        value = nxt
    return Found(last_valid, None, n, f"the probe limit ({max_probes}) was reached")


def offline_accept(tolerance: float) -> Callable[[float, float], bool]:
    """Offline: the expected rate is at least what the run asks for (less the tolerance), and not 1.5x above it
    (the run would last 1.5x longer than it must). Noise moves it up, never down: safe."""
    return lambda value, target: target / (1 + tolerance) <= value <= 1.5 * target


def latency_accept(tolerance: float) -> Callable[[float, float], bool]:
    """SingleStream / MultiStream: the expected latency at most the measured mean (plus the tolerance; LoadGen
    pregenerates for twice as fast a run anyway), and not below 2/3 of it (more pregenerated queries than needed)."""
    return lambda value, target: target / 1.5 <= value <= target * (1 + tolerance)


def confirm(run: Probe, value: float, adjust: Callable[[float, Outcome], float], *, runs: int = 1,
            retries: int = CONFIRM_RETRIES) -> tuple[Optional[float], list[Outcome]]:
    """`runs` confirming runs of `value`, all VALID; after an INVALID one, `adjust` gives the next value to try
    (at most `retries` times). Returns the confirmed value (None if none) and every outcome."""
    outcomes: list[Outcome] = []
    for _ in range(retries + 1):
        for _ in range(max(1, runs)):
            out = run(value, "confirm")
            outcomes.append(out)
            if not out.valid:
                break
        else:
            return value, outcomes
        value = adjust(value, outcomes[-1])
    return None, outcomes


def step_down(tolerance: float) -> Callable[[float, Outcome], float]:
    return lambda value, out: value * (1 - tolerance)


def offline_adjust(tolerance: float) -> Callable[[float, Outcome], float]:
    """An INVALID Offline confirmation ran short (faster than expected): ask for more."""
    return lambda value, out: max(value * (1 + tolerance), (out.measured or 0) * OFFLINE_HEADROOM)


def latency_adjust(tolerance: float) -> Callable[[float, Outcome], float]:
    """An INVALID latency confirmation ran out of queries (faster than expected): expect less."""
    return lambda value, out: min(value * (1 - tolerance), out.measured or value)


def probe_passes(detail: dict[str, Any]) -> bool:
    """A Server probe that LoadGen judged INVALID only on early stopping: p99 within the bound (LoadGen's
    result_perf_constraints_met, FindPeakPerformance's criterion), min duration and min queries met."""
    return all(detail.get(k) is True for k in ("result_perf_constraints_met", "result_min_duration_met",
                                               "result_min_queries_met")) \
        and detail.get("early_stopping_met") is False


def within_margin(validity: str, reason: str, p99_ms: Optional[float], bound_ms: float,
                  margin: float) -> tuple[str, str]:
    """A Server probe's verdict for the search: VALID only with its p99 at most `margin` x the bound
    (--tune_latency_margin); MARGIN otherwise (the search treats it as INVALID, its rate as kept up with)."""
    if validity != "VALID" or margin >= 1 or not p99_ms or not bound_ms or p99_ms <= margin * bound_ms:
        return validity, reason
    return "MARGIN", (f"p99 {p99_ms:.2f} ms > {margin:g} x the {bound_ms:g} ms bound (--tune_latency_margin): "
                      "too close to it to hold at full length")


def max_async_queries(target_qps: float, bound_s: float, queries: int, batch_size: int = 1, slots: int = 1) -> int:
    """Outstanding Server queries beyond which a probe is clearly INVALID (LoadGen's server_max_async_queries).

    A query behind N outstanding ones waits about N / capacity; with N above 4 x target x bound plus what the
    workers hold (2 x batch x slots), it can stay within the bound only if the system is 4x faster than it is asked
    to be, and then a backlog that large does not form; the 1% of the probe's queries added on top could be over
    the bound on their own and the run still VALID."""
    return int(math.ceil(4 * target_qps * bound_s + 2 * batch_size * slots + 0.01 * queries)) + 1


def parse_grid(text: Optional[str]) -> list[dict[str, Any]]:
    """`batch_size=1,2;server_batch_timeout_us=0,2000` -> every combination, as flag -> value dicts."""
    if not text or not text.strip():
        return [{}]
    axes = []
    for part in text.replace(" ", ";").split(";"):
        if not part.strip():
            continue
        name, sep, values = part.partition("=")
        name = name.strip().lstrip("-")
        flag = FLAG_BY_NAME.get(name)
        if not sep or flag is None or flag.config_key is None or flag.switch or name in _NOT_OVERLAY:
            raise HarnessError(f"--tune_grid: {part.strip()!r} is not `<flag>=<v1>,<v2>,...` with a flag that sets a "
                               "config key (e.g. batch_size=1,2,4;server_batch_timeout_us=0,2000).")
        try:
            vals = [flag.type(v.strip()) for v in values.split(",") if v.strip()]
        except (TypeError, ValueError):
            raise HarnessError(f"--tune_grid: {name} takes {flag.type_name} values, got {values!r}.") from None
        if not vals:
            raise HarnessError(f"--tune_grid: {name} has no values.")
        axes.append((name, list(dict.fromkeys(vals))))
    return [dict(zip([a[0] for a in axes], combo)) for combo in itertools.product(*[a[1] for a in axes])]


def better(scenario: str, a: Optional[float], b: Optional[float]) -> bool:
    """Is value a better than value b for this scenario (None is worst)?"""
    if a is None:
        return False
    if b is None:
        return True
    return a < b if get_scenario(scenario).latency_bound else a > b


def rounded(scenario: str, value: float) -> Any:
    """The value as the config holds it: whole ns for latencies, 4 significant digits for rates."""
    if get_scenario(scenario).latency_bound:
        return int(round(value))
    if value >= 1000:
        return int(round(value))
    return float(f"{value:.4g}")


# ---------------------------------------------------------------------------------------------------------------
# The overlay
def overlay_values(scenario: str, value: float, params: dict[str, Any], cli: dict[str, Any]) -> dict[str, Any]:
    """The keys to commit: the config-key flags given on the command line (less run-length ones), the grid
    point's settings, and the value found."""
    out: dict[str, Any] = {k: v for k, v in cli.items() if k not in _NOT_OVERLAY}
    for name, v in params.items():
        out[FLAG_BY_NAME[name].config_key] = v
    out.pop(TUNED_KEY[scenario], None)
    out[TUNED_KEY[scenario]] = rounded(scenario, value)
    return out


def effective_overlays(data: dict[str, Any], block: str) -> dict[str, dict]:
    """The config_ver overlays a block sees: its own over those of its `extends` chain and `default`."""
    chain, name, seen = [], block, set()
    while name is not None and name not in seen and isinstance(data.get(name), dict):
        seen.add(name)
        chain.append(data[name])
        name = data[name].get("extends")
    overlays = dict(data["default"].get("config_ver", {}))
    for part in reversed(chain):
        overlays.update(part.get("config_ver", {}))
    return overlays


def apply_overlay(data: dict[str, Any], block: str, config_ver: str, values: dict[str, Any]) -> dict[str, Any]:
    """A copy of a config file's data with `values` written into `block` (config_ver `default`) or into its
    config_ver overlay (an overlay inherited from a base block is copied into `block` first: overlays replace,
    they do not merge)."""
    new = json.loads(json.dumps(data))
    if block not in new:
        new[block] = {}
    target = new[block]
    if config_ver and config_ver != "default":
        inherited = dict(effective_overlays(data, block).get(config_ver, {}))
        overlays = target.setdefault("config_ver", {})
        overlays[config_ver] = {**inherited, **overlays.get(config_ver, {}), **values}
    else:
        target.update(values)
    return new


def snippet(block: str, config_ver: str, values: dict[str, Any]) -> dict[str, Any]:
    if config_ver and config_ver != "default":
        return {block: {"config_ver": {config_ver: values}}}
    return {block: values}


def write_config(path: str, data: dict[str, Any]) -> None:
    text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    json.loads(text)
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


# ---------------------------------------------------------------------------------------------------------------
# Probes: one process each
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
            if name in _PROBE_OWNED or name.startswith("tune_") or name in flags:
                flag = FLAG_BY_NAME.get(name)
                skip = not eq and flag is not None and not flag.switch
                continue
        out.append(word)
    out = [f"--action={action}", f"--scenarios={scenario}", "--test_mode=PerformanceOnly"] + \
        ([f"--log_dir={log_dir}"] if log_dir else []) + out
    for name, value in flags.items():
        if value is not None:
            out.append(f"--{name}={str(value).lower() if isinstance(value, bool) else value}")
    return out


def _server_bound_ns() -> int:
    """resnet50's Server latency bound as the installed LoadGen's mlperf.conf sets it."""
    try:
        import mlperf_loadgen as lg
        with tempfile.NamedTemporaryFile("w", suffix=".conf", delete=False) as f:
            f.write("# empty: only mlperf.conf\n")
        settings = lg.TestSettings()
        rc = settings.FromConfig(f.name, BENCHMARK, "Server")
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
        self.stream = stream or sys.stdout
        self.tty = _isatty(self.stream)
        self.count = 0
        self.bound_ns = _server_bound_ns() if scenario == "Server" else None
        os.makedirs(os.path.join(tune_dir, "probes"), exist_ok=True)
        self.log_path = os.path.join(tune_dir, "tune_log.jsonl")
        self.child: Optional[subprocess.Popen] = None

    # -- logging --------------------------------------------------------------------------------------------
    def log(self, entry: dict[str, Any]) -> None:
        entry = {"time": time.strftime("%Y-%m-%dT%H:%M:%S"), **entry}
        with open(self.log_path, "a") as f:
            f.write(json.dumps(entry) + "\n")

    def say(self, text: str) -> None:
        self.stream.write(("\r\033[K" if self.tty else "") + text + "\n")
        self.stream.flush()

    # -- one probe -----------------------------------------------------------------------------------------
    def probe(self, value: float, phase: str, params: dict[str, Any]) -> Outcome:
        self.count += 1
        key = TUNED_KEY[self.scenario]
        label = f"{self.count:02d}-{phase}-{_short(value)}"
        folder = os.path.join(self.dir, "probes", label)
        flags: dict[str, Any] = dict(params)
        flags[key] = rounded(self.scenario, value)
        confirm_run = phase == "confirm"
        length_ms = self.args.tune_confirm_ms if confirm_run else self.args.tune_probe_ms
        if length_ms:
            flags["min_duration"] = int(length_ms)
        est_s = (length_ms or int(self.cfg.get("min_duration") or 600000)) / 1000.0
        if not confirm_run and self.scenario == "Server":
            queries = max(int(self.args.tune_probe_queries), int(value * est_s))
            flags["min_query_count"] = queries
            est_s = max(est_s, queries / value)
            batch = int(params.get("batch_size") or self.cfg.get("batch_size") or 1)
            slots = int(params.get("workers") or self.cfg.get("workers") or 1) * \
                int(params.get("gpu_inference_streams") or self.cfg.get("gpu_inference_streams") or 1)
            flags["server_max_async_queries"] = max_async_queries(value, self.bound_ns / 1e9, queries, batch, slots)
        elif not confirm_run and self.scenario == "Offline":
            flags["min_query_count"] = 1
            est_s *= OFFLINE_HEADROOM
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
        self.log({"event": "probe", "scenario": self.scenario, "index": self.count, "phase": phase,
                  "key": key, "value": flags[key], "params": params, "validity": out.validity, "valid": out.valid,
                  "loadgen_validity": out.loadgen_validity,
                  "latency_ms": out.latency_ms, "bound_ms": out.bound_ms, "measured": out.measured,
                  "reason": out.reason, "seconds": round(seconds, 1), "load_average": _load(),
                  "folder": os.path.relpath(folder, self.dir),
                  "command": "code/main.py " + shlex.join(argv)})
        if out.validity == "ERROR":     # a run that failed is no verdict on the value: stop and say why
            raise HarnessError(f"tune: the {self.scenario} probe at {key}={flags[key]} failed ({out.reason}); its "
                               f"output is in {os.path.join(folder, 'probe.log')}.")
        return out

    def build_engine(self, params: dict[str, Any]) -> None:
        """generate_engines for a grid point, once, in its own process (a build may take long: no probe timeout)."""
        argv = child_argv(self.argv, self.scenario, None, dict(params), action="generate_engines")
        result = subprocess.run([sys.executable, os.path.join(REPO_ROOT, "code", "main.py")] + argv,
                                capture_output=True, text=True)
        if result.returncode != 0:
            raise HarnessError(f"tune: generate_engines for {self.scenario} {_params_text(params)} failed: "
                               f"{(result.stderr or result.stdout).strip()[-600:]}")

    def _run_child(self, argv: list[str], folder: str, timeout_s: float, head: str) -> tuple[int, str]:
        os.makedirs(folder, exist_ok=True)
        # No status line and no per-probe HTML report (the tune folder's report lists the probes).
        env = dict(os.environ, MLPERF_HARNESS_PROGRESS="0", MLPERF_REPORT="0", PYTHONUNBUFFERED="1")
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
        if rc != 0 or summary_path is None:
            tail = _tail(os.path.join(folder, "probe.log"))
            return Outcome(value, "ERROR", reason=f"exit {rc}: {tail}", seconds=seconds, folder=folder)
        with open(summary_path) as f:
            summary = json.load(f)
        detail = read_detail_log(os.path.join(os.path.dirname(summary_path), "mlperf_log_detail.txt"))
        validity = str(summary.get("result_validity") or "INVALID")
        errors = summary.get("loadgen_errors") or []
        reason = detail.get("result_invalid_reason") or ""
        if any("Too many outstanding queries" in e for e in errors):
            validity, reason = "STOPPED", "ended early: too many outstanding queries (clearly INVALID)"
        if validity == "INVALID" and not reason:
            reason = str(detail.get("early_stopping_result") or "").strip()
        if (self.scenario == "Server" and not confirm_run and validity == "INVALID"
                and probe_passes(detail)):
            # A probe has a thousand queries, where LoadGen's early stopping tolerates two or three over the bound
            # (a full-length run about 1%): judge it as FindPeakPerformance judges its steps, by the p99.
            validity, reason = "VALID", "p99 within the bound (LoadGen's early stopping wants a longer run)"
        if self.scenario == "Server" and not confirm_run:
            bound_ms = float(detail.get("effective_target_latency_ns") or self.bound_ns or 0) / 1e6
            validity, reason = within_margin(validity, reason, summary.get("p99_latency_ms"), bound_ms,
                                             float(getattr(self.args, "tune_latency_margin", 1.0) or 1.0))
        out = Outcome(value, validity, reason=reason.strip(), seconds=seconds, folder=folder)
        out.loadgen_validity = str(summary.get("result_validity"))
        if self.scenario == "Server":
            out.latency_ms = summary.get("p99_latency_ms")
            bound = detail.get("effective_target_latency_ns")
            if bound:
                self.bound_ns = int(bound)
            out.bound_ms = self.bound_ns / 1e6
            out.measured = summary.get("completed_samples_per_second")
        elif self.scenario == "Offline":
            out.measured = summary.get("samples_per_second")
        else:
            out.latency_ms = summary.get("p90_latency_ms" if self.scenario == "SingleStream" else "p99_latency_ms")
            mean = detail.get("result_mean_query_latency_ns") or detail.get("result_mean_latency_ns")
            out.measured = float(mean) if mean else None
        return out

    def _describe(self, out: Outcome) -> str:
        text = f"{out.validity:<7}"
        if self.scenario == "Server" and out.latency_ms is not None:
            text += f" p99 {out.latency_ms:.2f} ms / bound {out.bound_ms:.0f} ms"
            if out.measured:
                text += f", completed {out.measured:,.1f}/s"
        elif self.scenario == "Offline" and out.measured:
            text += f" {out.measured:,.1f} samples/s"
        elif out.latency_ms is not None:
            text += (f" {'p90' if self.scenario == 'SingleStream' else 'p99'} {out.latency_ms:.3f} ms, mean "
                     f"{(out.measured or 0) / 1e6:.3f} ms")
        if out.reason and (not out.valid or out.loadgen_validity not in ("", "VALID")):
            text += f" ({out.reason.splitlines()[0][:120]})"
        return text + f" [{out.seconds:.0f} s]"

    # -- the search ----------------------------------------------------------------------------------------
    def search(self, params: dict[str, Any], start: float) -> Found:
        probe = lambda value, phase: self.probe(value, phase, params)   # noqa: E731
        tol, limit = float(self.args.tune_tolerance), int(self.args.tune_max_probes)
        if self.scenario == "Server":
            return search_ceiling(probe, start, growth=float(self.args.tune_growth), tolerance=tol,
                                  max_probes=limit)
        if self.scenario == "Offline":
            return search_fixed_point(probe, start, lambda o: o.measured * OFFLINE_HEADROOM, offline_accept(tol),
                                      max_probes=limit)
        return search_fixed_point(probe, start, lambda o: o.measured, latency_accept(tol), max_probes=limit)

    def confirm(self, params: dict[str, Any], value: float) -> tuple[Optional[float], list[Outcome]]:
        run = lambda v, phase: self.probe(v, phase, params)   # noqa: E731
        tol = float(self.args.tune_tolerance)
        adjust = {"Server": step_down(tol), "Offline": offline_adjust(tol)}.get(self.scenario, latency_adjust(tol))
        return confirm(run, value, adjust, runs=int(self.args.tune_confirm_runs))


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


# ---------------------------------------------------------------------------------------------------------------
# The action
def _check_args(args) -> None:
    if args.test_mode != "PerformanceOnly":
        raise HarnessError(f"--test_mode={args.test_mode}: tune runs its own PerformanceOnly probes. For LoadGen's "
                           "own search use `make run_harness RUN_ARGS=\"--scenarios=Server "
                           "--test_mode=FindPeakPerformance ...\"`.")
    for name, low in (("tune_probe_ms", 100), ("tune_confirm_runs", 1), ("tune_max_probes", 1),
                      ("tune_probe_queries", 1)):
        if getattr(args, name) is not None and getattr(args, name) < low:
            raise HarnessError(f"--{name}={getattr(args, name)}: must be at least {low}.")
    if args.tune_confirm_ms is not None and args.tune_confirm_ms < 100:
        raise HarnessError(f"--tune_confirm_ms={args.tune_confirm_ms}: must be at least 100.")
    if not 1 < float(args.tune_growth) <= 10:
        raise HarnessError(f"--tune_growth={args.tune_growth}: expected a factor above 1 (and at most 10).")
    if not 0 < float(args.tune_tolerance) < 0.5:
        raise HarnessError(f"--tune_tolerance={args.tune_tolerance}: expected a fraction between 0 and 0.5.")
    if args.tune_config_ver is not None:
        check_safe_name(args.tune_config_ver, "--tune_config_ver", "a config_ver name in the config file")


def tune(args, argv: list[str]) -> int:
    """`make tune RUN_ARGS="--scenarios=Server ..."`."""
    refuse_stray_audit_config()
    _check_args(args)
    grid = parse_grid(args.tune_grid)
    system = system_id(args)
    run_root = new_run_root(args.log_dir)
    results: dict[str, Any] = {}
    warn_if_busy()
    print(f"[tune] {', '.join(args.scenarios)} on {system}: probes of {args.tune_probe_ms} ms, "
          f"{args.tune_confirm_runs} confirming run(s) of "
          f"{(str(args.tune_confirm_ms) + ' ms') if args.tune_confirm_ms else 'full length'}; logs under {run_root}")
    failed = []
    for scenario in args.scenarios:
        cfg = run_config(args, scenario, system).settings()
        key = TUNED_KEY[scenario]
        tune_dir = os.path.join(run_root, "tune", scenario)
        tuner = Tuner(args, argv, scenario, tune_dir, cfg)
        start = cfg.get(key)
        if not start:
            raise HarnessError(f"tune: {scenario} needs a starting {key} (the config of {system} has none); pass "
                               f"--{key}=<a guess>.")
        tuner.log({"event": "start", "scenario": scenario, "system": system, "key": key, "start": start,
                   "grid": grid, "config_block": cfg.get("config_block"), "config_ver": cfg.get("config_ver"),
                   "probe_ms": args.tune_probe_ms, "confirm_ms": args.tune_confirm_ms,
                   "confirm_runs": args.tune_confirm_runs, "tolerance": args.tune_tolerance,
                   "server_latency_bound_ns": tuner.bound_ns, "argv": argv})
        best_value, best_params, found_by = None, None, {}
        value = float(start)
        for params in grid:
            tuner.build_engine(params)
            found = tuner.search(params, value)
            found_by[json.dumps(params)] = asdict(found)
            tuner.say(f"[tune] {scenario} {_params_text(params)}: {key} {_fmt(found.value)} ({found.stop}, "
                      f"{found.probes} probe(s))")
            if better(scenario, found.value, best_value):
                best_value, best_params = found.value, params
            if found.value and scenario == "Server":
                value = found.value            # the next grid point starts from here
        if best_value is None:
            tuner.log({"event": "result", "scenario": scenario, "key": key, "searched": None, "confirmed": None,
                       "searches": found_by})
            print(f"[tune] {scenario}: no VALID {key} found; see {tuner.log_path}", file=sys.stderr)
            failed.append(scenario)
            continue
        confirmed, outcomes = tuner.confirm(best_params, best_value)
        values = None
        if confirmed is not None:
            values = overlay_values(scenario, confirmed, best_params, overrides(args))
        result = _write_result(args, scenario, cfg, tune_dir, values, best_params, best_value, confirmed, outcomes,
                               found_by, tuner, config_path, load_config_file)
        results[scenario] = result
        if confirmed is None:
            failed.append(scenario)
    with open(os.path.join(run_root, "tune", "tune_summary.json"), "w") as f:
        json.dump({"system": system, "scenarios": results}, f, indent=1)
    render_after_run(run_root)
    if failed:
        raise HarnessError(f"tune: no confirmed value for {', '.join(failed)}; the probes are logged under "
                           f"{os.path.join(run_root, 'tune')}.")
    return 0


def _params_text(params: dict[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in params.items()) or "(configured settings)"


def _fmt(value: Optional[float]) -> str:
    return "none" if value is None else f"{value:.4g}"


def _write_result(args, scenario, cfg, tune_dir, values, params, searched, confirmed, outcomes, found_by, tuner,
                  config_path, load_config_file) -> dict[str, Any]:
    key = TUNED_KEY[scenario]
    block, config_ver = cfg["config_block"], args.tune_config_ver or cfg.get("config_ver") or "default"
    path = config_path(scenario)
    result = {"scenario": scenario, "key": key, "searched": searched, "params": params, "confirmed": confirmed,
              "confirm_runs": [{"value": o.value, "validity": o.validity, "latency_ms": o.latency_ms,
                                "measured": o.measured} for o in outcomes],
              "config_file": os.path.relpath(path, REPO_ROOT), "block": block, "config_ver": config_ver,
              "values": values, "searches": found_by}
    if values is None:
        tuner.log({"event": "result", **result})
        tuner.say(f"[tune] {scenario}: {key} {searched:.4g} was not confirmed VALID (nor {CONFIRM_RETRIES} lower "
                  f"steps); nothing written.")
        return result
    result["snippet"] = snippet(block, config_ver, values)
    written = False
    if args.tune_write:
        write_config(path, apply_overlay(load_config_file(path), block, config_ver, values))
        written = True
    result["written"] = written
    overlay_path = os.path.join(tune_dir, "overlay.json")
    with open(overlay_path, "w") as f:
        json.dump(result, f, indent=1)
    tuner.log({"event": "result", **result})
    where = f"config_ver {config_ver!r} of block {block!r}" if config_ver != "default" else f"block {block!r}"
    tuner.say(f"[tune] {scenario}: {key} = {values[key]} confirmed VALID ({len(outcomes)} confirming run(s)).")
    tuner.say(f"[tune]   overlay: {overlay_path}\n[tune]   search log: {tuner.log_path}")
    if written:
        tuner.say(f"[tune]   written into {result['config_file']} ({where}); review with `git diff` and commit.")
    else:
        tuner.say(f"[tune]   to keep it, merge this into {where} of {result['config_file']}:\n"
                  + json.dumps(result["snippet"], indent=2) + "\n[tune]   (or run again with --tune_write)")
    return result
