"""The report's charts (matplotlib, imported only when a chart is drawn), each a PNG under <run folder>/report/.

- latency_chart: the SUT's own latency histogram (sut_timing.json, harness/loadgen/timing.py) with LoadGen's
  percentiles drawn over it (they decide validity), and the completion rate over the run;
- workers_chart: per-worker busy time (summary.json's `sut_workers`) against the run's wall time;
- tune_chart: a tune search (harness/report/tune_log.py records): target vs latency per probe, the bound, the chosen
  point;
- compare_chart: the headline figure of each scenario across several run folders.
"""
from __future__ import annotations

import math
import os
import re
from typing import Optional

from harness.config.scenarios import DISPLAY_ORDER
from harness.report.read import Folder, ScenarioRun, TuneLog, ms_of, number, result_line, short_number

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


def slug(text: str) -> str:
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
    if run.sc is not None and run.sc.one_query:
        title += " (one query: time since start)"
    ax.set_title(title, fontsize=10)
    styles = {"p50": ":", "p90": "--", "p99": "-."}
    for name, key in (("p50", "result_50.00_percentile_latency_ns"), ("p90", "result_90.00_percentile_latency_ns"),
                      ("p99", "result_99.00_percentile_latency_ns")):
        v = ms_of(run.get(key))
        if v:
            ax.axvline(v, color="black", linestyle=styles[name], linewidth=1, label=f"LoadGen {name} {v:.3g} ms")
    bound = ms_of(run.get("effective_target_latency_ns")) if run.sc is not None and run.sc.latency_constrained else None
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
    return _save(fig, out_dir, f"latency_{slug(run.label)}.png")


def workers_chart(runs: list[ScenarioRun], out_dir: str) -> Optional[str]:
    rows = []
    for run in runs:
        wall = number(run.summary.get("wall_seconds"))
        for i, w in enumerate(run.summary.get("sut_workers") or []):
            rows.append((f"{run.label} w{i}", number(w.get("infer_s")) or 0.0, number(w.get("complete_s")) or 0.0,
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
    points = [p for p in log.probes if p.value is not None and p.latency_ms is not None]
    if not points:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4))
    for valid, color, name in ((True, "#55A868", "VALID"), (False, "#C44E52", "INVALID"), (None, "#888888", "?")):
        for confirm in (False, True):
            sel = [p for p in points if p.valid is valid and (p.phase == "confirm") is confirm]
            if sel:
                ax.scatter([p.value for p in sel], [p.latency_ms for p in sel], color=color, zorder=3,
                           marker="s" if confirm else "o", label=f"{name}{' (confirming run)' if confirm else ''}")
    ordered = sorted((p for p in points if p.phase != "confirm"), key=lambda p: p.value)
    ax.plot([p.value for p in ordered], [p.latency_ms for p in ordered], color="#999999", linewidth=0.8)
    bound = next((p.bound_ms for p in log.probes if p.bound_ms), None) or log.bound_ms
    if bound:
        ax.axhline(bound, color="#C44E52", linestyle="--", label=f"bound {bound:g} ms")
    chosen = log.chosen
    if chosen and chosen.value is not None:
        y = chosen.latency_ms
        if y is None:
            y = next((p.latency_ms for p in points if p.value == chosen.value), None)
        if y is not None:
            ax.scatter([chosen.value], [y], marker="*", s=260, color="gold", edgecolor="black", zorder=4,
                       label=f"chosen {chosen.value:g}")
        else:
            ax.axvline(chosen.value, color="gold", linewidth=2, label=f"chosen {chosen.value:g}")
    scenario = next((p.scenario for p in log.probes if p.scenario), "")
    ax.set_xlabel(log.key or "target")
    ax.set_ylabel("latency (ms)")
    ax.set_title(f"tune {scenario}: target vs measured latency ({log.label})", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, out_dir, f"tune_{slug(log.label)}.png")


def compare_chart(folders: list[Folder], out_dir: str) -> Optional[str]:
    scenarios = [s for s in DISPLAY_ORDER if any(r.scenario == s and r.kind == "performance"
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
            ax.annotate(short_number(v), (x, v), ha="center", va="bottom", fontsize=7)
    fig.suptitle("results by run folder (green VALID, red otherwise; folders numbered as in the table)", fontsize=9)
    fig.tight_layout()
    return _save(fig, out_dir, "compare.png")

