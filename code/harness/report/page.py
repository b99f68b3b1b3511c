"""`report`: one self-contained HTML page per run folder, with its charts as PNG files beside it.

    make report RUN_ARGS="--log_dir=build/logs/2026.01.31-12.00.00"            one run folder
    make report RUN_ARGS="--log_dir=build/logs/A,build/logs/B"                  each folder, and a comparison page

Written to <run folder>/report/report.html (images embedded as base64 PNG, so the page can be mailed or attached on
its own) and <run folder>/report/*.png; a comparison of several folders goes into the first one's
report/compare/<timestamp>/. Without
--log_dir the newest run folder under build/logs is reported. run_harness, run_audit_harness (and tune) call
`render_after_run` when they end: a failure to render is a warning, never a failed run; MLPERF_REPORT=0 in the
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

Tune log format read here: <run root>/tune/<Scenario>/tune_log.jsonl, written by the `tune` action (harness/tune/tuner.py),
one JSON object per line; lines that are not JSON objects are skipped and counted, unknown keys are ignored. Runs under
a `probes/` folder beside a tune log are the search's probes: the tune table lists them, the scenario sections do not.
    event / kind / type                "start" (key, server_latency_bound_ns), "probe" (the default), or the chosen
                                       point: "result" / "chosen" / "choice" / "final"
    key                                the config key searched (server_target_qps, offline_expected_qps, ...)
    scenario, phase                    Offline ... MultiStream; bracket / bisect / confirm (optional)
    value / target / target_qps / server_target_qps / offline_expected_qps    a probe's value of that key
    confirmed / searched               the result line's value (confirmed: None when no confirming run was VALID)
    valid (bool) / validity / result_validity ("VALID"; "INVALID", "STOPPED", "TIMEOUT", "ERROR" are not)
    latency_ms / p99_ms / p99_latency_ms / p90_ms / p90_latency_ms    the latency the probe measured (ms)
    bound_ms / target_latency_ms / latency_bound_ms                    the bound it is judged against (ms)
    measured / achieved / samples_per_second / scheduled_queries_per_second   what the probe reached (optional)
    chosen: true on a probe line marks it as the chosen point too.
"""
from __future__ import annotations

import base64
import datetime
import html
import json
import math
import os
import re
import time
from dataclasses import dataclass, field
from typing import Any, Optional

from harness.config.command import Command
from harness.core.paths import REPO_ROOT
from harness.loadgen import timing as sut_timing
from harness.core.errors import HarnessError
from harness.core.names import make_command
from harness.loadgen.logs import parse_detail

REPORT_DIR = "report"
PAGE = "report.html"
TUNE_LOG = "tune_log.jsonl"
RUN_ROOT_RE = re.compile(r"^\d{4}\.\d{2}\.\d{2}-\d{2}\.\d{2}\.\d{2}(-\d+)?$")
SCENARIO_ORDER = ("Offline", "Server", "SingleStream", "MultiStream")


# ---------------------------------------------------------------------------------------------------------------
# Reading a run folder
@dataclass
class ScenarioRun:
    dir: str
    label: str
    scenario: str
    kind: str                       # performance, accuracy, TEST01, TEST04, TEST05, unknown
    detail: dict[str, Any]
    errors: list[str]
    summary: dict[str, Any]
    timing: Optional[dict]
    verification: Optional[dict]
    accuracy: Optional[dict]

    def get(self, key: str, default=None):
        return self.detail.get(key, default)

    @property
    def validity(self) -> str:
        if self.kind == "accuracy":
            acc = self.accuracy or self.summary.get("accuracy") or {}
            return "PASS" if acc.get("pass") else ("FAIL" if acc else "accuracy run")
        return str(self.get("result_validity") or "UNFINISHED")


@dataclass
class TuneLog:
    path: str
    label: str
    probes: list[dict] = field(default_factory=list)
    chosen: Optional[dict] = None
    skipped_lines: int = 0
    key: str = ""
    bound_ms: Optional[float] = None
    note: str = ""


@dataclass
class Folder:
    path: str
    runs: list[ScenarioRun]
    tunes: list[TuneLog]
    harness_summary: Optional[dict]


def _load_json(path: str) -> Optional[dict]:
    try:
        with open(path) as f:
            data = json.load(f)
        return data if isinstance(data, dict) else None
    except (OSError, ValueError):
        return None


def _read_run(path: str, folder: str) -> ScenarioRun:
    try:
        with open(os.path.join(path, "mlperf_log_detail.txt"), errors="replace") as f:
            detail, errors = parse_detail(f)
    except OSError:
        detail, errors = {}, []
    summary = _load_json(os.path.join(path, "summary.json")) or {}
    name = os.path.basename(path)
    scenario = detail.get("effective_scenario") or (summary.get("settings") or {}).get("scenario") or (
        name if name in SCENARIO_ORDER else os.path.basename(os.path.dirname(path)))
    mode = summary.get("test_mode") or detail.get("effective_test_mode")
    kinds = {"PerformanceOnly": "performance", "AccuracyOnly": "accuracy", "SubmissionRun": "submission"}
    kind = name if re.fullmatch(r"TEST0\d(\.try\d+)?", name) else kinds.get(mode, "unknown")   # .tryN: TEST04
    return ScenarioRun(path, os.path.relpath(path, folder), scenario, kind, detail, errors, summary,
                       _load_json(os.path.join(path, sut_timing.FILE_NAME)),
                       _load_json(os.path.join(path, "verification.json")),
                       _load_json(os.path.join(path, "accuracy_summary.json")))


def _pick(entry: dict, *keys):
    for key in keys:
        if entry.get(key) is not None:
            return entry[key]
    return None


def _number(value) -> Optional[float]:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def read_tune_log(path: str, folder: str) -> TuneLog:
    """A tune search log (format in the module docstring), tolerant of unknown keys and broken lines."""
    log = TuneLog(path, os.path.relpath(path, folder))
    with open(path, errors="replace") as f:
        for line in f:
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except ValueError:
                entry = None
            if not isinstance(entry, dict):
                log.skipped_lines += 1
                continue
            event = str(_pick(entry, "event", "kind", "type") or "probe").lower()
            log.key = str(entry.get("key") or log.key)
            if event == "start":
                bound_ns = _number(entry.get("server_latency_bound_ns"))
                log.bound_ms = bound_ns / 1e6 if bound_ns else log.bound_ms
                continue
            validity = _pick(entry, "valid", "result_validity", "validity")
            point = {
                "scenario": entry.get("scenario"),
                "phase": entry.get("phase"),
                "target": _number(_pick(entry, "value", "target", "target_qps", "server_target_qps",
                                        "offline_expected_qps", "confirmed", "searched")),
                "valid": validity if isinstance(validity, bool) else (str(validity).upper() == "VALID"
                                                                      if validity is not None else None),
                "latency_ms": _number(_pick(entry, "latency_ms", "p99_ms", "p99_latency_ms", "p90_ms",
                                            "p90_latency_ms")),
                "bound_ms": _number(_pick(entry, "bound_ms", "target_latency_ms", "latency_bound_ms")),
                "achieved": _number(_pick(entry, "measured", "achieved", "samples_per_second",
                                          "scheduled_queries_per_second")),
            }
            if event in ("chosen", "choice", "result", "final"):
                log.chosen = point
                if "confirmed" in entry and entry["confirmed"] is None:
                    log.note = (f"searched {entry.get('searched')}, but no confirming run was VALID: nothing "
                                "chosen" if entry.get("searched") is not None else "no VALID value found")
                    log.chosen = None
            else:
                log.probes.append(point)
                if entry.get("chosen") is True:
                    log.chosen = point
    return log


def read_folder(path: str) -> Folder:
    path = os.path.abspath(path)
    runs, tunes = [], []
    for root, dirs, files in os.walk(path):
        dirs[:] = sorted(d for d in dirs if d != REPORT_DIR and not (d == "probes" and TUNE_LOG in files))
        if "mlperf_log_detail.txt" in files or "summary.json" in files:
            runs.append(_read_run(root, path))
        if TUNE_LOG in files:
            tunes.append(read_tune_log(os.path.join(root, TUNE_LOG), path))
    order = {s: i for i, s in enumerate(SCENARIO_ORDER)}
    runs.sort(key=lambda r: (order.get(r.scenario, 9), r.kind != "performance", r.label))
    return Folder(path, runs, tunes, _load_json(os.path.join(path, "perf_harness_summary.json")))


def resolve_folders(log_dir: Optional[str]) -> list[str]:
    """--log_dir as run folders: a comma list; a base folder of run roots (build/logs) means its newest."""
    if not log_dir:
        log_dir = os.path.join(REPO_ROOT, "build", "logs")
    out = []
    for word in (w.strip() for w in log_dir.split(",")):
        if not word:
            continue
        path = os.path.abspath(word)
        if not os.path.isdir(path):
            raise HarnessError(f"report: --log_dir {word} is not a folder; give a run folder such as "
                               "build/logs/<timestamp> (a comma list compares several).")
        roots = sorted(d for d in os.listdir(path) if RUN_ROOT_RE.match(d) and os.path.isdir(os.path.join(path, d)))
        if roots and not any(os.path.isdir(os.path.join(path, d, "resnet50")) for d in os.listdir(path)):
            path = os.path.join(path, roots[-1])
            print(f"[report] {word} holds {len(roots)} run folder(s); reporting the newest, {path}")
        out.append(path)
    if not out:
        raise HarnessError("report: --log_dir is empty; give one run folder or a comma list.")
    return out


# ---------------------------------------------------------------------------------------------------------------
# What a run shows
def _ms(ns) -> Optional[float]:
    x = _number(ns)
    return None if x is None else x / 1e6


def result_line(run: ScenarioRun) -> tuple[str, Optional[float], str]:
    """(metric name, value, unit) of a run's result."""
    s = run.scenario
    if s == "Offline":
        return "samples/s", _number(run.get("result_samples_per_second")), "samples/s"
    if s == "Server":
        return "scheduled q/s", _number(run.get("result_scheduled_samples_per_sec")), "q/s"
    if s == "SingleStream":
        v = _ms(run.get("early_stopping_latency_ss")) or _ms(run.get("result_90.00_percentile_latency_ns"))
        return "p90 latency (early stopping)", v, "ms"
    if s == "MultiStream":
        v = _ms(run.get("early_stopping_latency_ms")) or _ms(run.get("result_99.00_percentile_latency_ns"))
        return "p99 latency (early stopping)", v, "ms"
    return "result", None, ""


def _num(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"


def invalid_reasons(run: ScenarioRun) -> str:
    """Why LoadGen judged a run INVALID, in its own words where it has them."""
    g, out = run.get, []
    if g("result_validity") != "INVALID":
        return ""
    if g("result_perf_constraints_met") is False:
        out.append("latency constraint not met")
    if g("result_min_duration_met") is False:
        out.append("min duration not met")
    if g("result_min_queries_met") is False:
        out.append("min queries not met")
    if g("early_stopping_met") is False:
        out.append("early stopping not met")
    return "; ".join(out) or "see mlperf_log_summary.txt"


def bounds(run: ScenarioRun) -> list[tuple[str, str, Optional[bool]]]:
    """(what, value against its bound, met?) for the table; met None when there is no verdict."""
    g = run.get
    out: list[tuple[str, str, Optional[bool]]] = []

    def fmt(x, digits=3):
        if x is None:
            return "n/a"
        text = f"{x:,.{digits}f}"
        return text.rstrip("0").rstrip(".") if "." in text else text

    if run.scenario == "Server":
        p99, bound = _ms(g("result_99.00_percentile_latency_ns")), _ms(g("effective_target_latency_ns"))
        out.append(("p99 latency", f"{fmt(p99)} ms vs bound {fmt(bound)} ms",
                    None if p99 is None or bound is None else p99 <= bound))
        out.append(("rate", f"scheduled {fmt(_number(g('result_scheduled_samples_per_sec')), 1)} q/s, completed "
                            f"{fmt(_number(g('result_completed_samples_per_sec')), 1)} q/s, target "
                            f"{fmt(_number(g('effective_target_qps')), 1)} q/s", None))
        over = g("result_overlatency_query_count")
        if over is not None:
            out.append(("queries over the bound", f"{over} of {g('result_query_count')}", None))
    elif run.scenario == "Offline":
        out.append(("rate", f"{fmt(_number(g('result_samples_per_second')), 1)} samples/s vs expected "
                            f"{fmt(_number(g('effective_target_qps')), 1)}", None))
    elif run.scenario in ("SingleStream", "MultiStream"):
        pct = "90" if run.scenario == "SingleStream" else "99"
        rate = _number(g("effective_target_qps"))      # LoadGen stores the expected latency as 1e9 / ns
        expected = f"expected {fmt(1000.0 / rate, 4)} ms, a hint, not a bound" if rate else "no expected latency"
        out.append((f"p{pct} latency", f"{fmt(_ms(g(f'result_{pct}.00_percentile_latency_ns')), 4)} ms ({expected})",
                    None))
    if run.kind != "accuracy" and g("result_validity") is not None:
        out.append(("min duration", f"{fmt(_number(g('effective_min_duration_ms')), 0)} ms",
                    g("result_min_duration_met")))
        out.append(("min query count", f"{g('result_query_count', g('generated_query_count'))} queries vs "
                                       f"{g('effective_min_query_count')}", g("result_min_queries_met")))
        text = " ".join(str(g("early_stopping_result") or "").split())
        if g("early_stopping_met") is not None and text:
            out.append(("early stopping", text[:300], g("early_stopping_met")))
    return out


# ---------------------------------------------------------------------------------------------------------------
# Charts
def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _save(fig, out_dir: str, name: str) -> str:
    path = os.path.join(out_dir, name)
    fig.savefig(path, dpi=100, format="png")
    _pyplot().close(fig)
    return path


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_") or "run"


def latency_chart(run: ScenarioRun, out_dir: str) -> Optional[str]:
    timing = run.timing
    if not timing or not timing.get("samples"):
        return None
    plt = _pyplot()
    hist = timing["histogram"]
    per, low, counts = int(hist["bins_per_decade"]), float(hist["low_exp10_s"]), list(hist["counts"])
    nz = [i for i, c in enumerate(counts) if c]
    lo, hi = max(0, nz[0] - 2), min(len(counts), nz[-1] + 3)
    edges_ms = [10 ** (low + i / per) * 1e3 for i in range(lo, hi + 1)]
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 3.6))
    ax.stairs(counts[lo:hi], edges_ms, fill=True, color="#4C72B0", alpha=0.8, label="SUT: issue to completion")
    ax.set_xscale("log")
    ax.set_xlabel("latency (ms, log scale)")
    ax.set_ylabel("samples")
    title = f"{run.scenario} {run.kind}: latency"
    if run.scenario == "Offline":
        title += " (one query: time since start)"
    ax.set_title(title, fontsize=10)
    styles = {"p50": ":", "p90": "--", "p99": "-."}
    for name, key in (("p50", "result_50.00_percentile_latency_ns"), ("p90", "result_90.00_percentile_latency_ns"),
                      ("p99", "result_99.00_percentile_latency_ns")):
        v = _ms(run.get(key))
        if v:
            ax.axvline(v, color="black", linestyle=styles[name], linewidth=1, label=f"LoadGen {name} {v:.3g} ms")
    bound = _ms(run.get("effective_target_latency_ns")) if run.scenario == "Server" else None
    if bound:
        ax.axvline(bound, color="#C44E52", linewidth=2, label=f"bound {bound:g} ms")
    ax.legend(fontsize=7, loc="upper left")
    tl = timing.get("timeline") or {}
    step, samples = float(tl.get("step_s") or 0), list(tl.get("samples") or [])
    factor = max(1, math.ceil(len(samples) / 200))     # at most 200 steps: a readable rate, not 10 ms noise
    if factor > 1:
        samples = [sum(samples[i:i + factor]) for i in range(0, len(samples), factor)]
        step *= factor
    if step > 0 and samples:
        xs = [i * step for i in range(len(samples))]
        ax2.plot(xs, [v / step for v in samples], color="#55A868", linewidth=1, drawstyle="steps-post")
        ax2.set_xlabel("seconds since the SUT started")
        ax2.set_ylabel("samples completed / s")
        ax2.set_title("completion rate over the run", fontsize=10)
        ax2.set_ylim(bottom=0)
    fig.tight_layout()
    return _save(fig, out_dir, f"latency_{_slug(run.label)}.png")


def workers_chart(runs: list[ScenarioRun], out_dir: str) -> Optional[str]:
    rows = []
    for run in runs:
        wall = _number(run.summary.get("wall_seconds"))
        for i, w in enumerate(run.summary.get("sut_workers") or []):
            rows.append((f"{run.label} w{i}", _number(w.get("infer_s")) or 0.0, _number(w.get("complete_s")) or 0.0,
                         wall, w.get("batches"), w.get("samples")))
    if not rows:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(11, max(2.2, 1.0 + 0.32 * len(rows))))
    names = [r[0] for r in rows]
    infer = [r[1] for r in rows]
    complete = [r[2] for r in rows]
    idle = [max(0.0, (r[3] or 0.0) - r[1] - r[2]) for r in rows]
    ys = list(range(len(rows)))
    ax.barh(ys, infer, color="#4C72B0", label="inference")
    ax.barh(ys, complete, left=infer, color="#DD8452", label="QuerySamplesComplete")
    ax.barh(ys, idle, left=[a + b for a, b in zip(infer, complete)], color="#DDDDDD", label="idle (of wall time)")
    ax.set_yticks(ys, names, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("seconds")
    ax.set_title("per-worker busy time (summary.json sut_workers)", fontsize=10)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return _save(fig, out_dir, "workers.png")


def tune_chart(log: TuneLog, out_dir: str) -> Optional[str]:
    points = [p for p in log.probes if p["target"] is not None and p["latency_ms"] is not None]
    if not points:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4))
    for valid, color, name in ((True, "#55A868", "VALID"), (False, "#C44E52", "INVALID"), (None, "#888888", "?")):
        for confirm in (False, True):
            sel = [p for p in points if p["valid"] is valid and (p["phase"] == "confirm") is confirm]
            if sel:
                ax.scatter([p["target"] for p in sel], [p["latency_ms"] for p in sel], color=color, zorder=3,
                           marker="s" if confirm else "o", label=f"{name}{' (confirming run)' if confirm else ''}")
    ordered = sorted((p for p in points if p["phase"] != "confirm"), key=lambda p: p["target"])
    ax.plot([p["target"] for p in ordered], [p["latency_ms"] for p in ordered], color="#999999", linewidth=0.8)
    bound = next((p["bound_ms"] for p in log.probes if p["bound_ms"]), None) or log.bound_ms
    if bound:
        ax.axhline(bound, color="#C44E52", linestyle="--", label=f"bound {bound:g} ms")
    chosen = log.chosen
    if chosen and chosen.get("target") is not None:
        y = chosen.get("latency_ms")
        if y is None:
            y = next((p["latency_ms"] for p in points if p["target"] == chosen["target"]), None)
        if y is not None:
            ax.scatter([chosen["target"]], [y], marker="*", s=260, color="gold", edgecolor="black", zorder=4,
                       label=f"chosen {chosen['target']:g}")
        else:
            ax.axvline(chosen["target"], color="gold", linewidth=2, label=f"chosen {chosen['target']:g}")
    scenario = next((p["scenario"] for p in log.probes if p["scenario"]), "")
    ax.set_xlabel(log.key or "target")
    ax.set_ylabel("latency (ms)")
    ax.set_title(f"tune {scenario}: target vs measured latency ({log.label})", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, out_dir, f"tune_{_slug(log.label)}.png")


def compare_chart(folders: list[Folder], out_dir: str) -> Optional[str]:
    scenarios = [s for s in SCENARIO_ORDER if any(r.scenario == s and r.kind == "performance"
                                                  for f in folders for r in f.runs)]
    if not scenarios:
        return None
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(scenarios), figsize=(3.6 * len(scenarios), 3.8), squeeze=False)
    for ax, scenario in zip(axes[0], scenarios):
        names, values, colors, unit = [], [], [], ""
        for i, folder in enumerate(folders):
            run = next((r for r in folder.runs if r.scenario == scenario and r.kind == "performance"), None)
            name, value, unit = result_line(run) if run else ("", None, unit)
            names.append(f"#{i + 1}")
            values.append(value or 0.0)
            colors.append("#55A868" if run and run.validity == "VALID" else "#C44E52")
        ax.bar(names, values, color=colors)
        ax.set_title(f"{scenario} ({unit})", fontsize=10)
        for x, v in enumerate(values):
            ax.annotate(_num(v), (x, v), ha="center", va="bottom", fontsize=7)
    fig.suptitle("results by run folder (green VALID, red otherwise; folders numbered as in the table)", fontsize=9)
    fig.tight_layout()
    return _save(fig, out_dir, "compare.png")


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
    parts = [f'<h3 id="{_slug(run.label)}">{_e(run.scenario)} &middot; {_e(run.kind)} &middot; '
             f'<code>{_e(run.label)}</code></h3><table>']
    shown = "n/a" if value is None else f"{_num(value)} {unit}"
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
        valid = {True: "VALID", False: "INVALID", None: "?"}[p["valid"]]
        parts.append(f"<tr><td>{i}</td><td>{_e(p['phase'] or '')}</td><td>{_e(p['target'])}</td>"
                     f'<td class="{valid}">{valid}</td><td>{_e(p["latency_ms"])}</td><td>{_e(p["bound_ms"])}</td>'
                     f"<td>{_e(p['achieved'] if p['achieved'] is not None else '')}</td></tr>")
    parts.append("</table>")
    if log.chosen:
        parts.append(f"<p>Chosen: {_e(log.key or 'target')} <b>{_e(log.chosen.get('target'))}</b>.</p>")
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
        shown = "" if run.kind == "accuracy" or value is None else f"{name} = {_num(value)} {unit}"
        if invalid_reasons(run):
            shown += f" ({invalid_reasons(run)})"
        if run.verification:
            shown += f"; audit {'PASS' if run.verification.get('passed') else 'FAIL'}"
        acc = run.accuracy or run.summary.get("accuracy")
        if acc:
            shown = f"top-1 {acc.get('top1')}%"
        rows.append(f'<tr><td>{_e(run.scenario)}</td><td><a href="#{_slug(run.label)}">{_e(run.kind)}</a></td>'
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
    for scenario in SCENARIO_ORDER:
        cells, any_run = [], False
        for f in folders:
            run = next((r for r in f.runs if r.scenario == scenario and r.kind == "performance"), None)
            if run is None:
                cells.append("<td>-</td>")
                continue
            any_run = True
            name, value, unit = result_line(run)
            p99 = _ms(run.get("result_99.00_percentile_latency_ns"))
            why = invalid_reasons(run)
            cells.append(f'<td><span class="{_e(run.validity)}">{_e(run.validity)}</span> '
                         f"{_e(name)} = {'n/a' if value is None else f'{_num(value)} {unit}'}"
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
# Entry points
def report(args: Command, argv: Optional[list[str]] = None) -> int:
    folders = resolve_folders(args.log_dir)
    for path in folders:
        print(f"[report] {render_folder(path)}")
    if len(folders) > 1:
        print(f"[report] comparison: {render_comparison(folders)}")
    return 0


def render_after_run(run_root: str) -> Optional[str]:
    """The hook at the end of run_harness / run_audit_harness / tune: never fails the run. MLPERF_REPORT=0 skips it
    (tune's probes: the tune folder's own report lists them)."""
    if os.environ.get("MLPERF_REPORT", "1").strip().lower() in ("0", "off", "false", "no"):
        return None
    try:
        page = render_folder(run_root)
        print(f"Report: {page}")
        return page
    except Exception as e:   # noqa: BLE001 - a chart must never cost a run its result
        print(f"[report] WARNING: could not render the report of {run_root} ({e.__class__.__name__}: {e}); the run "
              f"itself is unaffected. Retry with `{make_command('report', [f'--log_dir={run_root}'])}`.")
        return None
