"""The training report of a registered version: ``reports/training/<model>/<version>/report.json|html``.

It shows what a reviewer checks before anything else: the holdout metrics against the champion and, in a
synthetic world, against the ceiling of the true probabilities (:mod:`mlscale.training.ceiling`), the
learning curve with the early-stopping round, and calibration (Brier score and the reliability curve).
"""

from __future__ import annotations

import json
from typing import Any

from markupsafe import Markup

from mlscale.lake import Lake
from mlscale.layout import training_report_prefix
from mlscale.rendering import render as render_template
from mlscale.rendering import render_macro


def write_training_report(lake: Lake, spec: Any, version: str, metrics: Any, outcome: Any, plan: Any,
                          training_set: Any, vs_champion: dict[str, Any], champion_version: str | None,
                          ceiling: dict[str, Any], skew: dict[str, Any], compressed: dict[str, Any] | None = None) -> str:
    prefix = training_report_prefix(spec.name, version)
    doc = {"model": spec.name, "version": version, "holdout": metrics.as_dict(), "ceiling": ceiling,
           "serving_skew": skew, "compressed": compressed or {"available": False},
           "training": outcome.summary(),
           "plan": plan.as_dict(), "training_set": training_set.as_dict(), "champion_version": champion_version,
           "vs_champion": vs_champion}
    lake.write_json(f"{prefix}/report.json", doc)
    lake.write_bytes(f"{prefix}/report.html", render(doc).encode())
    return lake.uri(f"{prefix}/report.html")


def _pixels(values: list[tuple[float, float]], width: int, height: int, xmax: float,
            ymax: float) -> list[tuple[float, float]]:
    return [(40 + x / (xmax or 1) * (width - 60), height - 30 - y / (ymax or 1) * (height - 50)) for x, y in values]


def svg_line(series: dict[str, list[tuple[float, float]]], *, xlabel: str, ylabel: str, width: int = 520,
             height: int = 300, marker_x: float | None = None, diagonal: bool = False) -> Markup:
    """A small line chart (inline SVG) of one or more series of (x, y) points."""
    colours = ["#2b6cb0", "#c05621", "#2f855a"]
    xs = [x for s in series.values() for x, _ in s] or [1.0]
    ys = [y for s in series.values() for _, y in s] or [1.0]
    xmax, ymax = max(xs), max(max(ys), max(xs) if diagonal else 0.0) or 1.0
    lines = [{"name": name, "colour": colours[i % len(colours)], "points": _pixels(points, width, height, xmax, ymax)}
             for i, (name, points) in enumerate(series.items())]
    return render_macro(
        "charts.svg.j2", "xy_lines", width=width, height=height, xlabel=xlabel, ylabel=ylabel, ymax=ymax, lines=lines,
        marker_x=None if marker_x is None else 40 + marker_x / (xmax or 1) * (width - 60),
        diagonal=_pixels([(0, 0), (xmax, xmax)], width, height, xmax, ymax) if diagonal else None)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.5g}"
    return value if isinstance(value, str) else json.dumps(value)


def _cells(rows: dict[str, Any]) -> dict[str, str]:
    return {str(k): _fmt(v) for k, v in rows.items()}


def render(doc: dict[str, Any]) -> str:
    holdout, training = doc["holdout"], doc["training"]
    curve = [(i + 1.0, v) for i, v in enumerate(training["history"])]
    start = training["resumed_from"]
    learning = svg_line({f"validation {training['metric']}": [(start + x, y) for x, y in curve]},
                        xlabel="boosting round (or chunk end)", ylabel=training["metric"],
                        marker_x=float(training["rounds"]))
    reliability = svg_line({"observed vs predicted": [(b["mean_predicted"], b["observed_rate"]) for b in holdout["reliability"]]},
                           xlabel="mean predicted probability", ylabel="observed fraud rate", diagonal=True)
    return render_template(
        "training.html.j2", title=f"Training report: {doc['model']} version {doc['version']}",
        champion_version=doc["champion_version"], brier=holdout["brier"], learning=learning, reliability=reliability,
        holdout=_cells({k: v for k, v in holdout.items() if k != "reliability"}), vs_champion=_cells(doc["vs_champion"]),
        ceiling=_cells(doc.get("ceiling") or {"available": False}),
        skew=_cells(doc.get("serving_skew") or {"compared_rows": 0}),
        compressed=_cells({k: v for k, v in (doc.get("compressed") or {"available": False}).items() if k != "tried"}),
        training=_cells({k: v for k, v in training.items() if k != "history"}), plan=_cells(doc["plan"]),
        training_set=_cells(doc["training_set"]))
