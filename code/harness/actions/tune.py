"""`--action=tune` (`make tune`): find by running it the value a scenario's config should hold (its Scenario's
`target_key`), and write it as a config overlay.

- Server: the highest `server_target_qps` LoadGen judges VALID; Offline: the sustained samples/s (written 10% above
  it); SingleStream / MultiStream: the mean query latency, as the expected latency. How each is searched (bracketing
  and bisection, or a fixed point) is harness/tune/search.py; each step is a short probe (--tune_probe_ms, at least
  --tune_probe_queries queries), run as its own process (harness/tune/probes.py). Then --tune_confirm_runs
  confirming runs at full length (--tune_confirm_ms, default the config's min_duration, else LoadGen's 600 s), all
  of which must be VALID, adjusting the value by the tolerance when one is not.
- --tune_grid="batch_size=1,2;server_batch_timeout_us=0,2000" searches every combination and keeps the best
  (Scenario.better: the highest target or rate, the lowest latency); the values to commit and how they are written
  into configs/resnet50/<Scenario>/config.json are harness/tune/overlay.py.

Everything goes under <run root>/tune/<Scenario>/: tune_log.jsonl (one record per line, harness/report/tune_log.py:
a `start` line, one `probe` line per probe or confirming run, a `result` line), overlay.json (the values found, as
a config snippet) and probes/; <run root>/tune/tune_summary.json sums up every scenario, and the run root's report
page (harness/report/page.py) draws each search. The bounds of the --tune_* flags are the flag table's
(harness/config/flags.py), checked when the command line is parsed.
"""
from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict
from typing import Any, Optional

from harness.core.names import check_safe_name
from harness.config.context import run_config, system_id
from harness.config.files import config_path, load_config_file
from harness.config.flags import FLAG_BY_NAME, overrides
from harness.config.scenarios import SEARCH_CEILING, TestMode
from harness.config.scenarios import get as get_scenario
from harness.core.errors import HarnessError
from harness.core.paths import REPO_ROOT, new_run_root
from harness.loadgen.settings import refuse_stray_audit_config
from harness.report.page import render_after_run  # the HTML report: target vs p99 per probe, the bound, the choice
from harness.report.tune_log import RESULT, START, TuneRecord
from harness.tune.overlay import apply_overlay, overlay_values, parse_grid, snippet, write_config
from harness.tune.probes import Tuner, params_text, warn_if_busy
from harness.tune.search import CONFIRM_RETRIES, Outcome

# tune's own flags whose range the flag table declares (re-checked here for a Command not made by parse_args)
_CHECKED = ("tune_probe_ms", "tune_probe_queries", "tune_confirm_runs", "tune_confirm_ms", "tune_max_probes",
            "tune_growth", "tune_tolerance", "tune_latency_margin")


def _check_args(args) -> None:
    if args.test_mode != TestMode.PERFORMANCE:
        raise HarnessError(f"--test_mode={args.test_mode}: tune runs its own PerformanceOnly probes. For LoadGen's "
                           "own search use `make run_harness RUN_ARGS=\"--scenarios=Server "
                           "--test_mode=FindPeakPerformance ...\"`.")
    for name in _CHECKED:
        if getattr(args, name, None) is not None:
            FLAG_BY_NAME[name].check(getattr(args, name), f"--{name}")
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
        result = _tune_scenario(args, argv, scenario, system, run_root, grid)
        if result is not None:
            results[scenario] = result
        if result is None or result["confirmed"] is None:
            failed.append(scenario)
    with open(os.path.join(run_root, "tune", "tune_summary.json"), "w") as f:
        json.dump({"system": system, "scenarios": results}, f, indent=1)
    render_after_run(run_root)
    if failed:
        raise HarnessError(f"tune: no confirmed value for {', '.join(failed)}; the probes are logged under "
                           f"{os.path.join(run_root, 'tune')}.")
    return 0


def _tune_scenario(args, argv: list[str], scenario: str, system: str, run_root: str,
                   grid: list[dict[str, Any]]) -> Optional[dict[str, Any]]:
    """Search every grid point, confirm the best; the result (None: no VALID value was found)."""
    sc = get_scenario(scenario)
    cfg = run_config(args, scenario, system).settings()
    key = sc.target_key
    tune_dir = os.path.join(run_root, "tune", scenario)
    tuner = Tuner(args, argv, scenario, tune_dir, cfg)
    start = cfg.get(key)
    if not start:
        raise HarnessError(f"tune: {scenario} needs a starting {key} (the config of {system} has none); pass "
                           f"--{key}=<a guess>.")
    tuner.log(TuneRecord(START, scenario, key, bound_ns=tuner.bound_ns, extra={
        "system": system, "start": start, "grid": grid, "config_block": cfg.get("config_block"),
        "config_ver": cfg.get("config_ver"), "probe_ms": args.tune_probe_ms, "confirm_ms": args.tune_confirm_ms,
        "confirm_runs": args.tune_confirm_runs, "tolerance": args.tune_tolerance, "argv": argv}))
    best_value, best_params, found_by = None, None, {}
    value = float(start)
    for params in grid:
        tuner.build_engine(params)
        found = tuner.search(params, value)
        found_by[json.dumps(params)] = asdict(found)
        tuner.say(f"[tune] {scenario} {params_text(params)}: {key} {_fmt(found.value)} ({found.stop}, "
                  f"{found.probes} probe(s))")
        if sc.better(found.value, best_value):
            best_value, best_params = found.value, params
        if found.value and sc.tune_search == SEARCH_CEILING:
            value = found.value            # the next grid point starts from here
    if best_value is None:
        tuner.log(TuneRecord(RESULT, scenario, key, extra={"searches": found_by}))
        print(f"[tune] {scenario}: no VALID {key} found; see {tuner.log_path}", file=sys.stderr)
        return None
    confirmed, outcomes = tuner.confirm(best_params, best_value)
    values = None
    if confirmed is not None:
        values = overlay_values(scenario, confirmed, best_params, overrides(args))
    return _write_result(args, tuner, values, best_params, best_value, confirmed, outcomes, found_by)


def _fmt(value: Optional[float]) -> str:
    return "none" if value is None else f"{value:.4g}"


def _result_record(result: dict[str, Any]) -> TuneRecord:
    extra = {k: v for k, v in result.items() if k not in ("scenario", "key", "searched", "confirmed")}
    return TuneRecord(RESULT, result["scenario"], result["key"], searched=result["searched"],
                      confirmed=result["confirmed"], extra=extra)


def _write_result(args, tuner: Tuner, values: Optional[dict[str, Any]], params: dict[str, Any], searched: float,
                  confirmed: Optional[float], outcomes: list[Outcome], found_by: dict) -> dict[str, Any]:
    scenario, key, cfg = tuner.scenario, tuner.key, tuner.cfg
    block, config_ver = cfg["config_block"], args.tune_config_ver or cfg.get("config_ver") or "default"
    path = config_path(scenario)
    result = {"scenario": scenario, "key": key, "searched": searched, "params": params, "confirmed": confirmed,
              "confirm_runs": [{"value": o.value, "validity": o.validity, "latency_ms": o.latency_ms,
                                "measured": o.measured} for o in outcomes],
              "config_file": os.path.relpath(path, REPO_ROOT), "block": block, "config_ver": config_ver,
              "values": values, "searches": found_by}
    if values is None:
        tuner.log(_result_record(result))
        tuner.say(f"[tune] {scenario}: {key} {searched:.4g} was not confirmed VALID (nor {CONFIRM_RETRIES} lower "
                  f"steps); nothing written.")
        return result
    result["snippet"] = snippet(block, config_ver, values)
    written = False
    if args.tune_write:
        write_config(path, apply_overlay(load_config_file(path), block, config_ver, values))
        written = True
    result["written"] = written
    overlay_path = os.path.join(tuner.dir, "overlay.json")
    with open(overlay_path, "w") as f:
        json.dump(result, f, indent=1)
    tuner.log(_result_record(result))
    _say_result(tuner, result, len(outcomes), overlay_path)
    return result


def _say_result(tuner: Tuner, result: dict[str, Any], runs: int, overlay_path: str) -> None:
    block, config_ver = result["block"], result["config_ver"]
    where = f"config_ver {config_ver!r} of block {block!r}" if config_ver != "default" else f"block {block!r}"
    tuner.say(f"[tune] {result['scenario']}: {result['key']} = {result['values'][result['key']]} confirmed VALID "
              f"({runs} confirming run(s)).")
    tuner.say(f"[tune]   overlay: {overlay_path}\n[tune]   search log: {tuner.log_path}")
    if result["written"]:
        tuner.say(f"[tune]   written into {result['config_file']} ({where}); review with `git diff` and commit.")
    else:
        tuner.say(f"[tune]   to keep it, merge this into {where} of {result['config_file']}:\n"
                  + json.dumps(result["snippet"], indent=2) + "\n[tune]   (or run again with --tune_write)")
