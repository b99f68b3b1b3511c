"""`--action=run_harness`: every (config_ver, scenario) asked for through LoadGen, one run root per config_ver."""
from __future__ import annotations


import json
import os
import shlex
import sys
from typing import Any, Optional

from harness.config.command import Command
from harness.core.errors import HarnessError
from harness.core.exit_codes import raise_if_accuracy_failed
from harness.core.interrupt import RunInterrupted
from harness.core.isolation import run_isolated
from harness.core.paths import BENCHMARK, new_run_root
from harness.core.storage import storage_errors
from harness.config.context import run_configs
from harness.config.scenarios import TestMode, get
from harness.loadgen.limits import remove_if_empty
from harness.loadgen.scenario import ScenarioJob, run_scenario
from harness.report.page import render_after_run


def run_harness(args: Command, argv: Optional[list[str]] = None) -> int:
    """Every (config_ver, scenario) asked for: one run root per config_ver (build/logs/<timestamp>[-<config_ver>]),
    each scenario in its own process when there are several. Exit 3 (after every run) when an accuracy run missed
    its target."""
    rcs = run_configs(args)
    command = "code/main.py " + shlex.join(argv if argv is not None else sys.argv[1:])
    several_vers = len({rc.config_ver for rc in rcs}) > 1
    failed = []
    everything: dict[str, Any] = {}
    roots = []
    for ver in dict.fromkeys(rc.config_ver for rc in rcs):
        group = [rc for rc in rcs if rc.config_ver == ver]
        with storage_errors(doing="creating the run's log folder (--log_dir)"):
            run_root = new_run_root(args.log_dir, suffix=ver if several_vers else None)
        roots.append(run_root)
        results: dict[str, Any] = {}
        try:
            for rc in group:
                job = ScenarioJob(rc, run_root, command)
                if len(rcs) == 1:
                    results[rc.scenario.name] = run_scenario(job)
                    continue
                try:
                    results[rc.scenario.name] = run_isolated(run_scenario, job)
                except RunInterrupted:
                    raise
                except HarnessError:
                    failed.append(f"{rc.scenario.name} ({ver})" if several_vers else rc.scenario.name)
            with storage_errors():
                write_harness_summary(run_root, rcs[0].system_id, results)
            render_after_run(run_root)
        finally:
            remove_if_empty(run_root)   # a run refused before it wrote anything leaves no empty folder
        everything.update({(f"{s} ({ver})" if several_vers else s): r for s, r in results.items()})
    if failed:
        raise HarnessError(f"Scenario(s) {', '.join(failed)} failed (see the messages above); the others' logs are "
                           f"under {', '.join(roots)}.")
    raise_if_accuracy_failed(everything, ", ".join(roots))
    return 0


def summary_line(scenario_name: str, r: dict[str, Any]) -> str:
    sc = get(scenario_name)
    if TestMode.of(r.get("test_mode")) is TestMode.ACCURACY:
        line = f"{scenario_name:<13} {'accuracy run':<21}"
    else:
        metric = r.get("metric")
        line = f"{scenario_name:<13} {str(r.get('result_validity')):<8} {metric}={r.get(metric)}"
        if sc.checker_key != sc.summary_source:     # the checker reads another figure: show it, as LoadGen names it
            line += f" ({sc.summary_source}); checker: {sc.checker_key}={sc.shown(r.get(sc.checker_key))}"
    if r.get("ended_at_max_duration"):
        line += f"  (ended at max_duration {r['ended_at_max_duration']} ms)"
    skipped = (r.get("dataset") or {}).get("skipped")
    if skipped:
        line += f"  ({len(skipped)} image(s) skipped: --allow_missing)"
    if r.get("accuracy"):
        acc = r["accuracy"]
        line += f"  accuracy={acc['top1']:.3f}% ({'PASS' if acc['pass'] else 'FAIL'} vs {acc['target_top1_99pct']}%)"
    return line


def write_harness_summary(run_root: str, system: str, results: dict[str, Any]) -> None:
    path = os.path.join(run_root, "perf_harness_summary.json")
    with open(path, "w") as f:
        json.dump({system: {BENCHMARK: results}}, f, indent=1)
    print(f"\n======== {BENCHMARK} on {system} ========")
    for scenario, r in results.items():
        print(summary_line(scenario, r))
    print(f"Logs: {run_root}\nSummary: {path}")
