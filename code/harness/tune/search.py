"""The tune search as pure functions over a `probe(value, phase) -> Outcome` callable (tests drive them with a fake;
harness/tune/probes.py runs the real probes). How a scenario is searched is its Scenario's `tune_search`:

- SEARCH_CEILING (Server): the highest `server_target_qps` LoadGen judges VALID. Bracketing from the configured
  target (x growth up until a probe is INVALID, or down until one is VALID), then bisection until the bracket is
  narrower than the tolerance. An INVALID probe's completed rate is the system's capacity, which caps the bracket (a
  VALID target cannot exceed what the system completes). A failed confirmation steps down by the tolerance.
- SEARCH_RATE (Offline): the sustained samples/s; `offline_expected_qps` is searched 10% above it (OFFLINE_HEADROOM),
  so that LoadGen's one query (1.1 x min_duration x expected samples) lasts min_duration even on a faster run.
- SEARCH_LATENCY (SingleStream / MultiStream): the mean query latency, as the expected latency (LoadGen pregenerates
  2 x min_duration / expected queries: a value above twice the real latency ends the run short and INVALID).

`confirm` then runs the value found at full length, all runs VALID, adjusting it after an INVALID one.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from harness.config.scenarios import SEARCH_CEILING, SEARCH_RATE, Scenario
from harness.core.errors import HarnessError

OFFLINE_HEADROOM = 1.1
CONFIRM_RETRIES = 3


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


def run_search(sc: Scenario, probe: Probe, start: float, *, tolerance: float, growth: float,
               max_probes: int) -> Found:
    """The search the scenario's `tune_search` names, from `start`."""
    if sc.tune_search == SEARCH_CEILING:
        return search_ceiling(probe, start, growth=growth, tolerance=tolerance, max_probes=max_probes)
    if sc.tune_search == SEARCH_RATE:
        return search_fixed_point(probe, start, lambda o: o.measured * OFFLINE_HEADROOM, offline_accept(tolerance),
                                  max_probes=max_probes)
    return search_fixed_point(probe, start, lambda o: o.measured, latency_accept(tolerance), max_probes=max_probes)


def adjust_rule(sc: Scenario, tolerance: float) -> Callable[[float, Outcome], float]:
    """How a confirming run that was INVALID moves the value, by the scenario's `tune_search`."""
    if sc.tune_search == SEARCH_CEILING:
        return step_down(tolerance)
    if sc.tune_search == SEARCH_RATE:
        return offline_adjust(tolerance)
    return latency_adjust(tolerance)
