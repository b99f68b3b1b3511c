"""The four LoadGen scenarios as values: everything the harness knows about a scenario lives in this table.

Each `Scenario` says which LoadGen enum it is, which figure the run summary headlines and which key of
mlperf_log_detail.txt the official submission checker reads for the result (they differ for Server and the two
stream scenarios; the summary shows both, named as LoadGen names them), whether it is latency-bound, which user.conf
keys the config fills, its batch rule, how `tune` searches it and how the report shows it. Code asks the scenario
(`scenario.latency_bound`, `scenario.tune_search`), never compares names; LoadGen's test modes are `TestMode`
values (str-valued, so configs and logs hold the same strings), asked the same way (`mode.kind`).
tests/unit/config/test_no_string_comparisons.py fails on a comparison with a scenario or test-mode name elsewhere.

The checker's keys: mlcommons/inference tools/submission/submission_checker (RESULT_FIELD_NEW for v4.0 and later:
Offline result_samples_per_second, Server result_completed_samples_per_sec, SingleStream early_stopping_latency_ss,
MultiStream early_stopping_latency_ms).
"""
from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from typing import Any, Callable, Optional

from harness.core.errors import HarnessError

LOADGEN_DEFAULT_MIN_DURATION_MS = 600000      # mlperf.conf, every ResNet50 scenario

# How `tune` searches a scenario's target_key (harness/tune/search.py)
SEARCH_CEILING = "ceiling"     # the highest value LoadGen judges VALID (Server: bracketing, then bisection)
SEARCH_RATE = "rate"           # a fixed point: the expected rate from the measured one (Offline)
SEARCH_LATENCY = "latency"     # a fixed point: the expected latency from the measured mean (SingleStream/MultiStream)


class TestMode(enum.StrEnum):
    """LoadGen's test modes; each member is its own name as a string (`TestMode.ACCURACY == "AccuracyOnly"`)."""
    __test__ = False              # not a pytest test class

    PERFORMANCE = "PerformanceOnly"
    ACCURACY = "AccuracyOnly"
    SUBMISSION = "SubmissionRun"
    FIND_PEAK = "FindPeakPerformance"

    @property
    def kind(self) -> Optional[str]:
        """The run kind reports and submission folders name it by: performance, accuracy, submission; None for
        FindPeakPerformance (a search of many tests, no one run)."""
        return _KINDS.get(self)

    @property
    def measures_accuracy(self) -> bool:
        """LoadGen writes the accuracy log (AccuracyOnly, SubmissionRun)."""
        return self in (TestMode.ACCURACY, TestMode.SUBMISSION)

    @classmethod
    def of(cls, value: Any) -> Optional["TestMode"]:
        """The test mode a string names (None: none, or not a test mode)."""
        try:
            return cls(value)
        except ValueError:
            return None


_KINDS = {TestMode.PERFORMANCE: "performance", TestMode.ACCURACY: "accuracy", TestMode.SUBMISSION: "submission"}
TEST_MODES = tuple(m.value for m in TestMode)


def run_kind(test_mode: Any) -> str:
    """performance, accuracy or submission for a run LoadGen ran in that test mode; unknown otherwise."""
    mode = TestMode.of(test_mode)
    return (mode.kind if mode is not None else None) or "unknown"


def _whole_ms(ns: Optional[int]) -> Optional[int]:
    """user.conf holds target latencies in whole milliseconds (the exact ns go on the settings directly)."""
    return None if ns is None else max(1, math.ceil(ns / 1e6))


@dataclass(frozen=True)
class Scenario:
    name: str
    latency_bound: bool                   # the result is a latency (lower is better), not a throughput
    summary_metric: str                   # summary.json's headline key ("metric")
    summary_source: str                   # the mlperf_log_detail.txt key behind it
    checker_key: str                      # the mlperf_log_detail.txt key the submission checker reads
    unit: str                             # the unit the results table shows
    # user.conf keys: (LoadGen key, config key, conversion) beside the common ones (min_duration, ...)
    user_conf: tuple[tuple[str, str, Optional[Callable[[Any], Any]]], ...]
    # The expected-latency config key whose exact ns LoadGen takes from the settings (None: none)
    expected_latency_key: Optional[str] = None
    # Batch rule: a fixed batch size (SingleStream: 1; another configured batch_size is an error), else the configured
    # batch_size, else the value of `default_batch_key` (MultiStream: its samples per query), else `default_batch`
    fixed_batch: Optional[int] = None
    default_batch_key: Optional[str] = None
    default_batch: int = 1
    # The config key of the expected rate or latency a run needs (its hint to LoadGen)
    target_key: Optional[str] = None
    dynamic_batching: bool = False        # the SUT waits up to server_batch_timeout_us for a fuller batch
    coalesces: bool = False               # LoadGen's server_coalesce_queries applies
    latency_constrained: bool = False     # throughput under a latency bound (Server): the bound must match
    find_peak: bool = False               # LoadGen's FindPeakPerformance mode searches this scenario's target
    one_query: bool = False               # LoadGen issues the whole run as one query (Offline)
    samples_per_query_key: Optional[str] = None   # the config key of the samples in each query (MultiStream)
    capacity_fallback: Optional[str] = None       # a scenario whose throughput bounds this one's (Server: Offline)
    # Rules (mlcommons/inference submission checker and compliance READMEs), per scenario:
    early_stopping: bool = False          # the run must meet LoadGen's early-stopping condition
    rule_min_samples_per_query: Optional[int] = None   # closed division (Offline: 24,576)
    rule_samples_per_query: Optional[int] = None       # fixed (MultiStream: 8)
    rule_max_target_latency_ns: Optional[int] = None   # latency bound at most (Server: 15 ms for ResNet50)
    short_latency_ns: Optional[int] = None              # compliance tolerance 20% at or below this reference latency
    # tune (harness/tune/): how target_key is searched (SEARCH_*), and the latency figure a probe reports
    tune_search: str = SEARCH_LATENCY
    latency_percentile: int = 99          # the percentile summaries and reports headline for this scenario
    # The report (harness/report/): the headline figure's name, the mlperf_log_detail.txt keys it is read from
    # (the first one present), its unit (ns keys of latency-bound scenarios are shown in ms) and the table order
    headline: str = "result"
    headline_keys: tuple[str, ...] = ()
    headline_unit: str = ""
    display_order: int = 9
    # summary.json keys beyond the common ones: (summary key, mlperf_log_detail.txt key, ns -> ms)
    summary_extras: tuple[tuple[str, str, bool], ...] = ()

    @property
    def latency_key(self) -> str:
        """summary.json's key of the latency this scenario is judged by (p90_latency_ms, p99_latency_ms)."""
        return f"p{self.latency_percentile}_latency_ms"

    def tuned_value(self, value: float) -> Any:
        """A tuned target_key value as the config holds it: whole ns for latencies, 4 significant digits for rates
        (whole numbers from 1000 up)."""
        if self.latency_bound or value >= 1000:
            return int(round(value))
        return float(f"{value:.4g}")

    def better(self, a: Optional[float], b: Optional[float]) -> bool:
        """Is target a better than target b for this scenario (lower latency, higher rate; None is worst)?"""
        if a is None:
            return False
        if b is None:
            return True
        return a < b if self.latency_bound else a > b

    def loadgen_enum(self, lg):
        """mlperf_loadgen.TestScenario.<name>."""
        return getattr(lg.TestScenario, self.name)

    def batch_size(self, configured: Optional[int], values: dict[str, Any]) -> int:
        """The batch the SUT runs, from the configured batch_size (None: not set) and the other config values."""
        if self.fixed_batch is not None:
            return self.fixed_batch
        if configured is not None:
            return int(configured)
        if self.default_batch_key is not None and values.get(self.default_batch_key):
            return int(values[self.default_batch_key])
        return self.default_batch

    def shown(self, value: Optional[float]) -> str:
        """A checker figure as people read it: ns latencies in ms."""
        if value is None:
            return "n/a"
        return f"{float(value) / 1e6:.3f} ms" if self.latency_bound else f"{float(value):g}"

    def __str__(self) -> str:
        return self.name


OFFLINE = Scenario("Offline", latency_bound=False, summary_metric="samples_per_second",
                   summary_source="result_samples_per_second", checker_key="result_samples_per_second",
                   unit="Samples/s", user_conf=(("target_qps", "offline_expected_qps", None),),
                   target_key="offline_expected_qps", rule_min_samples_per_query=24576, one_query=True,
                   tune_search=SEARCH_RATE, headline="samples/s", headline_keys=("result_samples_per_second",),
                   headline_unit="samples/s", display_order=0)
SERVER = Scenario("Server", latency_bound=False, summary_metric="scheduled_queries_per_second",
                  summary_source="result_scheduled_samples_per_sec", checker_key="result_completed_samples_per_sec",
                  unit="Queries/s", user_conf=(("target_qps", "server_target_qps", None),
                                               ("max_async_queries", "server_max_async_queries", None)),
                  target_key="server_target_qps", dynamic_batching=True, coalesces=True, latency_constrained=True, find_peak=True,
                  early_stopping=True, rule_max_target_latency_ns=15000000,
                  capacity_fallback="Offline", tune_search=SEARCH_CEILING, headline="scheduled q/s",
                  headline_keys=("result_scheduled_samples_per_sec",), headline_unit="q/s", display_order=1,
                  summary_extras=(("completed_samples_per_second", "result_completed_samples_per_sec", False),
                                  ("p99_latency_ms", "result_99.00_percentile_latency_ns", True),
                                  ("server_coalesce_queries", "requested_server_coalesce_queries", False)))  # as read
SINGLE_STREAM = Scenario("SingleStream", latency_bound=True, summary_metric="p90_latency_ms",
                         summary_source="result_90.00_percentile_latency_ns", checker_key="early_stopping_latency_ss",
                         unit="Latency (ms)",
                         user_conf=(("target_latency", "single_stream_expected_latency_ns", _whole_ms),),
                         expected_latency_key="single_stream_expected_latency_ns", fixed_batch=1,
                         target_key="single_stream_expected_latency_ns", early_stopping=True,
                         short_latency_ns=200000, latency_percentile=90, headline="p90 latency (early stopping)",
                         headline_keys=("early_stopping_latency_ss", "result_90.00_percentile_latency_ns"),
                         headline_unit="ms", display_order=2,
                         summary_extras=(("early_stopping_p90_latency_ms", "early_stopping_latency_ss", True),))
MULTI_STREAM = Scenario("MultiStream", latency_bound=True, summary_metric="p99_latency_ms",
                        summary_source="result_99.00_percentile_latency_ns", checker_key="early_stopping_latency_ms",
                        unit="Latency (ms)",
                        user_conf=(("target_latency", "multi_stream_expected_latency_ns", _whole_ms),
                                   ("samples_per_query", "multi_stream_samples_per_query", None)),
                        expected_latency_key="multi_stream_expected_latency_ns",
                        default_batch_key="multi_stream_samples_per_query", default_batch=8,
                        target_key="multi_stream_expected_latency_ns", early_stopping=True,
                        rule_samples_per_query=8, short_latency_ns=1600000,
                        samples_per_query_key="multi_stream_samples_per_query",
                        headline="p99 latency (early stopping)",
                        headline_keys=("early_stopping_latency_ms", "result_99.00_percentile_latency_ns"),
                        headline_unit="ms", display_order=3,
                        summary_extras=(("early_stopping_p99_latency_ms", "early_stopping_latency_ms", True),))

SCENARIOS: dict[str, Scenario] = {s.name: s for s in (OFFLINE, SERVER, SINGLE_STREAM, MULTI_STREAM)}
NAMES = tuple(SCENARIOS)
# The order submissions and results tables list scenarios in.
SUBMISSION_ORDER = ("SingleStream", "MultiStream", "Offline", "Server")
# The order reports list scenarios in.
DISPLAY_ORDER = tuple(sorted(SCENARIOS, key=lambda name: SCENARIOS[name].display_order))


def get(name) -> Scenario:
    if isinstance(name, Scenario):
        return name
    try:
        return SCENARIOS[name]
    except KeyError:
        raise HarnessError(f"Unknown scenario {name!r}; expected one of {', '.join(SCENARIOS)}.") from None


def find(name: Any) -> Optional[Scenario]:
    """The scenario a name read from a log names; None where it names none (get() raises instead)."""
    if isinstance(name, Scenario):
        return name
    return SCENARIOS.get(name) if isinstance(name, str) else None
