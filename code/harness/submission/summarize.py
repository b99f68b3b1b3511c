"""summarize_results: one row per staged result -> <results_dir>/results_summary.csv and a Markdown table."""
from __future__ import annotations

import csv
import os

from harness.config.command import Command
from harness.core.errors import HarnessError
from harness.core.storage import read_json
from harness.loadgen.logs import read_detail
from harness.config.scenarios import get as get_scenario
from harness.submission import rules
from harness.submission.check import _verdict
from harness.submission.logs import read_accuracy_txt
from harness.submission.integrity import RECORD, record_path, records_dir
from harness.submission.stage import default_results_dir

COLUMNS = ("Organization", "Division", "SystemType", "SystemName", "Platform", "Model", "Scenario", "Result",
           "Units", "Validity", "Accuracy", "Compliance", "DryRun", "Framework", "Processor", "Accelerator")


def rows(results_dir: str) -> list[dict[str, str]]:
    record = read_json(record_path(results_dir), missing=None, expect=dict)
    if not record:
        raise HarnessError(f"No staged tree at {results_dir} ({RECORD} is missing); run `make update_results` first.")
    r = rules.get_round(record.get("round"))
    out = []
    for key, entry in sorted(record.get("systems", {}).items()):
        division, submitter, system = key.split("/")
        base = os.path.join(results_dir, division, submitter)
        desc = read_json(os.path.join(base, "systems", f"{system}.json"), missing=None, expect=dict) or {}
        scenarios = sorted(entry.get("scenarios", {}), key=rules.SCENARIO_ORDER.index)
        for scenario in scenarios:
            sdir = os.path.join(base, rules.scenario_dir(r, system, scenario))
            perf = read_detail(os.path.join(sdir, "performance", "run_1", "mlperf_log_detail.txt"))
            metric = perf.metric()
            if metric is not None and get_scenario(scenario).latency_bound:
                metric /= 1e6
            top1, _ = read_accuracy_txt(os.path.join(sdir, "accuracy", "accuracy.txt"))
            cdir = os.path.join(base, rules.compliance_dir(r, system, scenario))
            verdicts = []
            for test in r.audit_tests:
                found = {part: _verdict(os.path.join(cdir, test, f"verify_{part}.txt"))
                         for part in ("accuracy", "performance")
                         if os.path.exists(os.path.join(cdir, test, f"verify_{part}.txt"))}
                if found:
                    failed = [part for part, ok in found.items() if not ok]
                    verdicts.append(f"{test} PASS" if not failed else f"{test} FAIL ({', '.join(failed)})")
            model = (entry["scenarios"][scenario].get("fingerprint") or {}).get("model", "")
            out.append({
                "Organization": submitter, "Division": division, "SystemType": desc.get("system_type", ""),
                "SystemName": desc.get("system_name", system), "Platform": system, "Model": model,
                "Scenario": scenario, "Result": "" if metric is None else f"{metric:.3f}",
                "Units": rules.UNITS[scenario], "Validity": perf.get("result_validity") or "missing",
                "Accuracy": "" if top1 is None else f"acc: {top1:.3f}",
                "Compliance": ", ".join(verdicts) or "none", "DryRun": "yes" if entry.get("dry_run") else "no",
                "Framework": desc.get("framework", ""), "Processor": desc.get("host_processor_model_name", ""),
                "Accelerator": desc.get("accelerator_model_name", ""),
            })
    return out


def markdown(table: list[dict[str, str]], columns=("Platform", "Model", "Scenario", "Result", "Units", "Validity",
                                                    "Accuracy", "Compliance", "DryRun")) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
    lines += ["| " + " | ".join(row[c] for c in columns) + " |" for row in table]
    return "\n".join(lines)


def summarize_results(args: Command, argv: list[str]) -> int:
    results_dir = default_results_dir(args)
    table = rows(results_dir)
    path = os.path.join(records_dir(results_dir), "results_summary.csv")   # outside the submission root
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(table)
    print(markdown(table))
    print(f"\nCSV: {path}")
    if any(row["DryRun"] == "yes" for row in table):
        print("DRY RUN results: not a submission.")
    return 0
