"""harness/tune/search.py and actions/tune.py: each scenario's search and confirmation rule comes from its Scenario's
`tune_search`; the tuned key, its rounding and what counts as better are the Scenario's; tune's flag bounds are the
flag table's."""
import pytest

from harness.actions import parse_args
from harness.actions import tune as tune_action
from harness.config.scenarios import SCENARIOS, SEARCH_CEILING, TestMode
from harness.core.errors import HarnessError
from harness.tune import search as S
from harness.tune.overlay import overlay_values


def _probe(capacity):
    def probe(value, phase):
        return S.Outcome(value, "VALID" if value <= capacity else "INVALID", measured=min(value, capacity))
    return probe


def test_the_scenario_picks_the_search():
    server = S.run_search(SCENARIOS["Server"], _probe(150), 40, tolerance=0.05, growth=2.0, max_probes=20)
    assert server.value is not None and 150 / 1.05 <= server.value <= 150 and server.upper is not None
    offline = S.run_search(SCENARIOS["Offline"], lambda v, p: S.Outcome(v, "VALID", measured=160.0), 300,
                           tolerance=0.05, growth=2.0, max_probes=6)
    assert offline.value == pytest.approx(160 * S.OFFLINE_HEADROOM)
    latency = S.run_search(SCENARIOS["SingleStream"], lambda v, p: S.Outcome(v, "VALID", measured=2.2e6), 5e6,
                           tolerance=0.05, growth=2.0, max_probes=6)
    assert latency.value == pytest.approx(2.2e6)


def test_the_scenario_picks_the_confirmation_adjustment():
    out = S.Outcome(100.0, "INVALID", measured=120.0)
    assert S.adjust_rule(SCENARIOS["Server"], 0.1)(100.0, out) == pytest.approx(90.0)
    assert S.adjust_rule(SCENARIOS["Offline"], 0.1)(100.0, out) == pytest.approx(132.0)
    assert S.adjust_rule(SCENARIOS["MultiStream"], 0.1)(100.0, out) == pytest.approx(90.0)
    assert [s.name for s in SCENARIOS.values() if s.tune_search == SEARCH_CEILING] == ["Server"]


def test_tuned_key_rounding_and_order_are_the_scenarios():
    ss, off = SCENARIOS["SingleStream"], SCENARIOS["Offline"]
    assert ss.tuned_value(2212345.6) == 2212346 and off.tuned_value(176.04) == 176.0
    assert off.tuned_value(23456.7) == 23457
    assert ss.better(1.0, 2.0) and not off.better(1.0, 2.0) and off.better(1.0, None) and not off.better(None, 1.0)
    values = overlay_values("Server", 151.37, {}, {})
    assert values == {SCENARIOS["Server"].target_key: 151.4}


def test_tune_bounds_are_the_flag_tables():
    args = parse_args(["--action=tune", "--tune_tolerance=0.5"])       # the flag allows 0.5: so does tune
    tune_action._check_args(args)
    with pytest.raises(HarnessError, match="--tune_growth=11.0: expected a number > 1 and <= 10"):
        tune_action._check_args(args.replace(tune_growth=11.0))
    with pytest.raises(HarnessError, match="--tune_probe_ms=5: expected an integer >= 100"):
        tune_action._check_args(args.replace(tune_probe_ms=5))
    with pytest.raises(HarnessError, match="FindPeakPerformance"):
        tune_action._check_args(args.replace(test_mode=TestMode.ACCURACY.value))
