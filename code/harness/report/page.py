"""`report`: one self-contained HTML page per run folder, with its charts as PNG files beside it.

    make report RUN_ARGS="--log_dir=build/logs/2026.01.31-12.00.00"            one run folder
    make report RUN_ARGS="--log_dir=build/logs/A,build/logs/B"                  each folder, and a comparison page

Written to <run folder>/report/report.html (images embedded as base64 PNG, so the page can be mailed or attached on
its own) and <run folder>/report/*.png; a comparison of several folders goes into the first one's
report/compare/<timestamp>/. Without
--log_dir the newest run folder under build/logs is reported. run_harness, run_audit_harness (and tune) call
`render_after_run` (this module) when they end: a failure to render is a warning, never a failed run; MLPERF_REPORT=0 in the
environment skips it (for runs that are parts of a larger one, such as tune's probes).

What the page shows, and where each number comes from:
- per scenario run (every folder holding mlperf_log_detail.txt, audit runs TEST0X/ included): result, validity,
  LoadGen's INVALID reasons, the bounds (Server p99 vs the target latency, the target and achieved rates, the minimum
  duration and query count), accuracy (accuracy_summary.json) and audit verdicts (verification.json);
- latency distribution: LoadGen logs no per-query latencies in mlperf_log_detail.txt (only min, mean, p50 ... p99.9,
  max) and its trace is off (one JSON event per sample is too costly at the rates this harness runs). The histogram is
  the SUT's own record (sut_timing.json, harness/loadgen/timing.py): IssueQuery to QuerySamplesComplete per sample, which
  leaves out LoadGen's issue delay. LoadGen's own percentiles are drawn over it as lines: they decide validity. Beside
  it, samples completed per second over the run (the SUT's completion timeline);
- per-worker busy time: summary.json's `sut_workers` (inference and completion seconds per worker) against the run's
  wall time;
- a tune search (any `tune_log.jsonl` in the folder): target vs p99 latency per probe, the bound, the chosen point.

Where it lives: read.py reads the run folders (and the tune logs, through tune_log.py, the record tune writes);
charts.py draws the PNGs; this module writes the HTML. The `report` action is harness/actions/report.py.
"""
from __future__ import annotations

import base64
import datetime
import html
import os
import time
from typing import Any, Optional

from harness.core import env
from harness.config.scenarios import DISPLAY_ORDER
from harness.core.errors import HarnessError
from harness.report.charts import compare_chart, latency_chart, slug, tune_chart, workers_chart
from harness.report.read import (REPORT_DIR, Folder, ScenarioRun, TuneLog, TUNE_LOG, invalid_reasons, ms_of,
                                 read_folder, result_line, short_number, bounds)
from harness.core.names import make_command

PAGE = "report.html"


# ---------------------------------------------------------------------------------------------------------------
# The page
CSS = """body{font-family:sans-serif;margin:24px;color:#222;max-width:1200px}
table{border-collapse:collapse;margin:8px 0 16px}td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px;
vertical-align:top}th{background:#f2f2f2}.VALID,.PASS,.met{color:#1a7f37;font-weight:bold}
.INVALID,.FAIL,.unmet{color:#c0392b;font-weight:bold}img{max-width:100%;border:1px solid #eee}
.note{color:#555;font-size:13px}code{background:#f5f5f5}"""


def _img(path: str, alt: str) -> str:
    with open(path, "rb") as f:
        data = base64.b64encode(f.read()).decode("ascii")
    return (f'<figure><img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'
            f'<figcaption class="note">{html.escape(os.path.basename(path))}</figcaption></figure>')


def _e(x: Any) -> str:
    return html.escape(str(x))


def _cls(ok: Optional[bool]) -> str:
    return "" if ok is None else ("met" if ok else "unmet")


def _run_section(run: ScenarioRun, out_dir: str, images: list[str]) -> str:
    name, value, unit = result_line(run)
    parts = [f'<h3 id="{slug(run.label)}">{_e(run.scenario)} &middot; {_e(run.kind)} &middot; '
             f'<code>{_e(run.label)}</code></h3><table>']
    shown = "n/a" if value is None else f"{short_number(value)} {unit}"
    why = invalid_reasons(run)
    parts.append(f'<tr><th>validity</th><td class="{_e(run.validity)}">{_e(run.validity)}'
                 f'{": " + _e(why) if why else ""}</td></tr>')
    if run.kind != "accuracy":
        parts.append(f"<tr><th>{_e(name)}</th><td>{_e(shown)}</td></tr>")
    for what, text, met in bounds(run):
        verdict = "" if met is None else (" &#10003;" if met else " &#10007;")
        parts.append(f'<tr><th>{_e(what)}</th><td class="{_cls(met)}">{_e(text)}{verdict}</td></tr>')
    acc = run.accuracy or run.summary.get("accuracy")
    if acc:
        parts.append(f"<tr><th>accuracy</th><td>top-1 {_e(acc.get('top1'))}% on {_e(acc.get('total'))} samples, "
                     f"target {_e(acc.get('target_top1_99pct'))}% (99% of FP32 {_e(acc.get('fp32_reference_top1'))}%)"
                     "</td></tr>")
    v = run.verification
    if v:
        verdict = "PASS" if v.get("passed") else "FAIL"
        why = "; ".join(v.get("reasons") or [])
        parts.append(f'<tr><th>audit verification</th><td class="{verdict}">{verdict}{": " + _e(why) if why else ""}'
                     "</td></tr>")
        attempts = v.get("attempts") or []
        for attempt in attempts if len(attempts) > 1 else []:
            why = "; ".join(attempt.get("reasons") or [])
            kept = f" (kept in {attempt['kept_in']})" if attempt.get("kept_in") else ""
            parts.append(f"<tr><th>try {_e(attempt.get('attempt'))}</th><td>"
                         f"{'PASS' if attempt.get('passed') else 'FAIL: ' + _e(why)}{_e(kept)}</td></tr>")
    settings = run.summary.get("settings") or {}
    if settings:
        keys = ("backend", "model", "precision", "batch_size", "workers", "threads", "server_target_qps",
                "server_batch_timeout_us", "offline_expected_qps", "config_block", "config_ver")
        text = ", ".join(f"{k}={settings[k]}" for k in keys if settings.get(k) is not None)
        parts.append(f"<tr><th>settings</th><td><code>{_e(text)}</code></td></tr>")
    if run.errors:
        parts.append(f'<tr><th>LoadGen errors</th><td class="unmet">{_e("; ".join(run.errors[:5]))}</td></tr>')
    parts.append("</table>")
    chart = latency_chart(run, out_dir) if run.kind != "accuracy" else None
    if chart:
        images.append(chart)
        parts.append(_img(chart, f"latency distribution of {run.label}"))
    elif run.kind != "accuracy":
        parts.append('<p class="note">No sut_timing.json in this run (made by an older harness, or with '
                     "MLPERF_SUT_TIMING=0): no latency histogram; LoadGen's percentiles are in the table.</p>")
    return "".join(parts)


def _tune_section(log: TuneLog, out_dir: str, images: list[str]) -> str:
    parts = [f"<h3>tune search <code>{_e(log.label)}</code></h3>"]
    chart = tune_chart(log, out_dir)
    if chart:
        images.append(chart)
        parts.append(_img(chart, f"tune curve of {log.label}"))
    parts.append("<table><tr><th>#</th><th>phase</th><th>target</th><th>valid</th><th>latency ms</th>"
                 "<th>bound ms</th><th>achieved</th></tr>")
    for i, p in enumerate(log.probes, 1):
        valid = {True: "VALID", False: "INVALID", None: "?"}[p.valid]
        parts.append(f"<tr><td>{i}</td><td>{_e(p.phase or '')}</td><td>{_e(p.value)}</td>"
                     f'<td class="{valid}">{valid}</td><td>{_e(p.latency_ms)}</td><td>{_e(p.bound_ms)}</td>'
                     f"<td>{_e(p.measured if p.measured is not None else '')}</td></tr>")
    parts.append("</table>")
    if log.chosen:
        parts.append(f"<p>Chosen: {_e(log.key or 'target')} <b>{_e(log.chosen.value)}</b>.</p>")
    else:
        why = log.note or "the log names none (the search did not finish?)"
        parts.append(f'<p class="note">No chosen point: {_e(why)}.</p>')
    if log.skipped_lines:
        parts.append(f'<p class="note">{log.skipped_lines} line(s) of the log were not JSON objects and were '
                     "skipped.</p>")
    return "".join(parts)


def _page(title: str, body: list[str]) -> str:
    stamp = datetime.datetime.now().isoformat(timespec="seconds")
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{_e(title)}</title>"
            f"<style>{CSS}</style></head><body><h1>{_e(title)}</h1>"
            f'<p class="note">Made by <code>make report</code> on {stamp}.</p>' + "".join(body) + "</body></html>\n")


LATENCY_NOTE = ("<p class=\"note\">Latency histograms are the SUT's own record (sut_timing.json): per sample, from "
                "the IssueQuery call that carried it to the return of the QuerySamplesComplete that answered it. "
                "LoadGen measures from the query's scheduled time, so its latencies also include LoadGen's issue "
                "delay; LoadGen logs only percentiles (drawn as black lines), and those decide validity. In Offline "
                "all samples are issued at once, so the histogram there is time since the start.</p>")


def render_folder(path: str) -> str:
    """Write <path>/report/report.html and its PNGs; returns the page's path."""
    folder = read_folder(path)
    if not folder.runs and not folder.tunes:
        raise HarnessError(f"report: {path} holds no runs (no mlperf_log_detail.txt, summary.json or {TUNE_LOG}).")
    out_dir = os.path.join(folder.path, REPORT_DIR)
    os.makedirs(out_dir, exist_ok=True)
    for name in os.listdir(out_dir):   # charts of an earlier rendering
        if name.endswith(".png"):
            os.remove(os.path.join(out_dir, name))
    images: list[str] = []
    body = [f"<p>Run folder <code>{_e(folder.path)}</code></p>", "<h2>Results</h2>", _overview(folder)]
    if folder.tunes:
        body.append("<h2>Tune</h2>")
        body += [_tune_section(log, out_dir, images) for log in folder.tunes]
    if folder.runs:
        body += ["<h2>Scenario runs</h2>", LATENCY_NOTE]
        body += [_run_section(run, out_dir, images) for run in folder.runs]
        chart = workers_chart(folder.runs, out_dir)
        if chart:
            images.append(chart)
            body += ["<h2>Per-worker busy time</h2>",
                     '<p class="note">Seconds each SUT worker spent in inference and in QuerySamplesComplete, and '
                     "the rest of the run's wall time (waiting for work).</p>", _img(chart, "per-worker busy time")]
    page = os.path.join(out_dir, PAGE)
    _write(page, _page(f"MLPerf ResNet50 harness report: {os.path.basename(folder.path)}", body))
    return page


def _overview(folder: Folder) -> str:
    if not folder.runs:
        return '<p class="note">No scenario runs here.</p>'
    rows = ["<table><tr><th>scenario</th><th>run</th><th>validity</th><th>result</th></tr>"]
    for run in folder.runs:
        name, value, unit = result_line(run)
        shown = "" if run.kind == "accuracy" or value is None else f"{name} = {short_number(value)} {unit}"
        if invalid_reasons(run):
            shown += f" ({invalid_reasons(run)})"
        if run.verification:
            shown += f"; audit {'PASS' if run.verification.get('passed') else 'FAIL'}"
        acc = run.accuracy or run.summary.get("accuracy")
        if acc:
            shown = f"top-1 {acc.get('top1')}%"
        rows.append(f'<tr><td>{_e(run.scenario)}</td><td><a href="#{slug(run.label)}">{_e(run.kind)}</a></td>'
                    f'<td class="{_e(run.validity)}">{_e(run.validity)}</td><td>{_e(shown)}</td></tr>')
    rows.append("</table>")
    return "".join(rows)


def render_comparison(paths: list[str], out_dir: Optional[str] = None) -> str:
    folders = [read_folder(p) for p in paths]
    out_dir = out_dir or _new_dir(os.path.join(folders[0].path, REPORT_DIR, "compare"))
    os.makedirs(out_dir, exist_ok=True)
    images: list[str] = []
    body = ["<h2>Run folders</h2><table><tr><th>#</th><th>folder</th><th>report</th></tr>"]
    for i, f in enumerate(folders, 1):
        page = os.path.join(f.path, REPORT_DIR, PAGE)
        body.append(f"<tr><td>#{i}</td><td><code>{_e(f.path)}</code></td><td><code>{_e(page)}</code></td></tr>")
    body.append("</table><h2>Results</h2><table><tr><th>scenario</th>"
                + "".join(f"<th>#{i}</th>" for i in range(1, len(folders) + 1)) + "</tr>")
    for scenario in DISPLAY_ORDER:
        cells, any_run = [], False
        for f in folders:
            run = next((r for r in f.runs if r.scenario == scenario and r.kind == "performance"), None)
            if run is None:
                cells.append("<td>-</td>")
                continue
            any_run = True
            name, value, unit = result_line(run)
            p99 = ms_of(run.get("result_99.00_percentile_latency_ns"))
            why = invalid_reasons(run)
            cells.append(f'<td><span class="{_e(run.validity)}">{_e(run.validity)}</span> '
                         f"{_e(name)} = {'n/a' if value is None else f'{short_number(value)} {unit}'}"
                         f"{'' if p99 is None else f'<br>p99 {p99:.3g} ms'}{f'<br>({_e(why)})' if why else ''}</td>")
        if any_run:
            body.append(f"<tr><th>{scenario}</th>{''.join(cells)}</tr>")
    body.append("</table>")
    chart = compare_chart(folders, out_dir)
    if chart:
        images.append(chart)
        body.append(_img(chart, "results by run folder"))
    page = os.path.join(out_dir, PAGE)
    _write(page, _page(f"MLPerf ResNet50 harness: {len(folders)} run folders compared", body))
    return page


def _new_dir(base: str) -> str:
    stamp = time.strftime("%Y.%m.%d-%H.%M.%S")
    path, n = os.path.join(base, stamp), 1
    while os.path.exists(path):
        n += 1
        path = os.path.join(base, f"{stamp}-{n}")
    return path


def _write(path: str, text: str) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


# ---------------------------------------------------------------------------------------------------------------
# The hook at the end of a run
def render_after_run(run_root: str) -> Optional[str]:
    """The hook at the end of run_harness / run_audit_harness / tune: never fails the run. MLPERF_REPORT=0 skips it
    (tune's probes: the tune folder's own report lists them)."""
    try:
        if not env.get(env.REPORT):
            return None
        page = render_folder(run_root)
        print(f"Report: {page}")
        return page
    except Exception as e:   # noqa: BLE001 - a chart must never cost a run its result
        print(f"[report] WARNING: could not render the report of {run_root} ({e.__class__.__name__}: {e}); the run "
              f"itself is unaffected. Retry with `{make_command('report', [f'--log_dir={run_root}'])}`.")
        return None
