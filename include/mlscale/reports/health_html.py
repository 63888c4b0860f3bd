"""The pipeline health page (``reports/health/<D>/report.html``) from the report's JSON document.

Self-contained: inline CSS and SVG charts, no scripts, no external assets; every text from the lake is
autoescaped by the templates (``templates/health.html.j2``, charts in ``templates/charts.svg.j2``). Charts:
quarantine rate and records per day (ingestion), holdout PR-AUC per registered version, labelled PR-AUC per
day against the serving version's holdout, drift share per day, and run durations per day. Tooltips are
SVG ``<title>`` elements.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from markupsafe import Markup

from mlscale.rendering import render, render_macro

PALETTE = ("#2b6cb0", "#c05621", "#2f855a", "#6b46c1", "#b7791f", "#c53030", "#319795", "#718096")
WIDTH, HEIGHT, LEFT, RIGHT, TOP, BOTTOM = 760, 230, 56, 190, 14, 36
PLOT_H = HEIGHT - TOP - BOTTOM
STATUS_MARK = {"ok": "✓", "attention": "!", "no data": "·", "dry run": "d"}
CHARTS = "charts.svg.j2"


def _nice(vmax: float) -> float:
    if vmax <= 0 or math.isnan(vmax):
        return 1.0
    base = 10 ** math.floor(math.log10(vmax))
    return next(m * base for m in (1, 2, 2.5, 5, 10) if m * base >= vmax)


def _short(label: str) -> str:
    return label[5:] if len(label) == 10 and label[4] == "-" else label


def _slot(labels: Sequence[str]) -> float:
    return (WIDTH - LEFT - RIGHT) / max(1, len(labels))


def _frame(title: str, labels: Sequence[str], ymax: float, percent: bool,
           legend: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """The box, gridlines, x labels (at most about 12) and legend of a chart, in pixels."""
    step, slot = max(1, math.ceil(len(labels) / 12)), _slot(labels)
    return {"title": title, "percent": percent, "width": WIDTH, "height": HEIGHT, "left": LEFT, "right": WIDTH - RIGHT,
            "axis_y": TOP + PLOT_H, "label_y": HEIGHT - BOTTOM + 14,
            "grid": [(TOP + PLOT_H - PLOT_H * i / 4, ymax * i / 4) for i in range(5)],
            "labels": [(LEFT + (i + 0.5) * slot, _short(label)) for i, label in enumerate(labels)
                       if i % step == 0 or i == len(labels) - 1],
            "legend": [(TOP + 4 + 16 * i, name, colour) for i, (name, colour) in enumerate(legend)]}


def _values(series: dict[str, list[float | None]]) -> list[float]:
    return [v for values in series.values() for v in values if v is not None]


def _segments(labels: Sequence[str], values: list[float | None], ymax: float) -> list[dict[str, Any]]:
    """The runs of values without a gap: their dots and the points of their line."""
    segments: list[dict[str, Any]] = []
    dots: list[dict[str, Any]] = []
    for i, value in enumerate([*values, None]):
        if value is None:
            if dots:
                segments.append({"dots": dots, "points": [(d["x"], d["y"]) for d in dots]})
            dots = []
            continue
        dots.append({"x": LEFT + (i + 0.5) * _slot(labels), "y": TOP + PLOT_H - PLOT_H * value / ymax,
                     "label": labels[i], "value": value})
    return segments


def line_chart(title: str, labels: Sequence[str], series: dict[str, list[float | None]], *, percent: bool = False,
               threshold: float | None = None) -> Markup:
    """Lines over ``labels`` (a gap where a value is None); a dashed ``threshold`` line if given."""
    found = _values(series)
    if not found:
        return render_macro(CHARTS, "no_data", title)
    ymax = _nice(max(found + ([threshold] if threshold is not None else [])))
    legend = [(name, PALETTE[i % len(PALETTE)]) for i, name in enumerate(series)]
    lines = [{"name": name, "colour": colour, "segments": _segments(labels, values, ymax)}
             for (name, colour), values in zip(legend, series.values(), strict=True)]
    line = None if threshold is None else {"y": TOP + PLOT_H - PLOT_H * threshold / ymax, "value": threshold}
    return render_macro(CHARTS, "day_lines", _frame(title, labels, ymax, percent, legend), lines, line)


def bar_chart(title: str, labels: Sequence[str], series: dict[str, list[float | None]], *, percent: bool = False,
              alarm: Sequence[bool] | None = None) -> Markup:
    """Grouped bars per label; with one series, ``alarm`` colours the bars of flagged labels red."""
    found = _values(series)
    if not found:
        return render_macro(CHARTS, "no_data", title)
    ymax = _nice(max(found))
    slot = _slot(labels)
    legend = [(name, PALETTE[i % len(PALETTE)]) for i, name in enumerate(series)]
    if alarm is not None:
        legend.append(("flagged", "#c53030"))
    width = slot * 0.8 / max(1, len(series))
    bars = []
    for k, ((name, colour), values) in enumerate(zip(legend, series.values(), strict=False)):
        for i, value in enumerate(values):
            if value is None:
                continue
            h = PLOT_H * value / ymax
            bars.append({"x": LEFT + i * slot + slot * 0.1 + k * width, "y": TOP + PLOT_H - h, "width": max(width - 1, 1),
                         "height": h, "fill": "#c53030" if alarm is not None and i < len(alarm) and alarm[i] else colour,
                         "name": name, "label": labels[i], "value": value})
    return render_macro(CHARTS, "day_bars", _frame(title, labels, ymax, percent, legend), bars)


def _charts(doc: dict[str, Any]) -> dict[str, Markup]:
    days, pipelines = doc["days"], doc["pipelines"]
    ingest = {name: rows for name, rows in pipelines.items() if name.startswith("ingest_")}
    rate = {name: [r["quarantine_rate"] for r in rows] for name, rows in ingest.items()}
    written = {name: [r["rows_out"] for r in rows] for name, rows in ingest.items()}
    models: dict[str, list[dict[str, Any]]] = {}
    for m in doc["models"]:
        models.setdefault(m["model"], []).append(m)
    versions = [f"v{m['version']} {_short(m['registered_day'])}" for m in doc["models"]]
    pr_auc = {name: [m["pr_auc"] if m["model"] == name else None for m in doc["models"]] for name in models}
    perf = {p["day"]: p for p in doc["labelled_performance"]}
    labelled = {"labelled PR-AUC (events of D-5)": [perf.get(d, {}).get("pr_auc") for d in days],
                "serving version holdout PR-AUC": [perf.get(d, {}).get("holdout_pr_auc") for d in days]}
    drift = {"share of columns drifted": [d.get("share_drifted") for d in doc["drift"]]}
    alarm = [bool(d.get("drift_detected")) for d in doc["drift"]]
    seconds = {name: [r["seconds"] for r in rows] for name, rows in pipelines.items()
               if any(r["seconds"] is not None for r in rows)}
    threshold = doc["thresholds"]["max_quarantine_rate"]
    return {"quarantine": line_chart("quarantine rate per day", days, rate, percent=True, threshold=threshold),
            "written": bar_chart("records written per day", days, written),
            "versions": line_chart("holdout PR-AUC per version", versions, pr_auc),
            "labelled": line_chart("PR-AUC per day", days, labelled),
            "drift": bar_chart("drift share per day", days, drift, alarm=alarm),
            "seconds": line_chart("seconds per day", days, seconds)}


def render_health_html(doc: dict[str, Any]) -> str:
    """The page for one report document (``HealthReport.as_dict()``)."""
    return render("health.html.j2", doc=doc, title=f"Pipeline health — {doc['dt']}", charts=_charts(doc),
                  short_days=[_short(d) for d in doc["days"]], marks=STATUS_MARK)
