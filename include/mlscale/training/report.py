"""The training report of a registered version: ``reports/training/<model>/<version>/report.json|html``.

It shows what a reviewer checks before anything else: the holdout metrics against the champion, the
learning curve with the early-stopping round, and calibration (Brier score and the reliability curve).
"""

from __future__ import annotations

import html
import json
from typing import Any

from mlscale.lake import Lake


def write_training_report(lake: Lake, spec: Any, version: str, metrics: Any, outcome: Any, plan: Any,
                          training_set: Any, vs_champion: dict[str, Any], champion_version: str | None) -> str:
    prefix = f"reports/training/{spec.name}/{version}"
    doc = {"model": spec.name, "version": version, "holdout": metrics.as_dict(), "training": outcome.summary(),
           "plan": plan.as_dict(), "training_set": training_set.as_dict(), "champion_version": champion_version,
           "vs_champion": vs_champion}
    lake.write_json(f"{prefix}/report.json", doc)
    lake.write_bytes(f"{prefix}/report.html", render(doc).encode())
    return lake.uri(f"{prefix}/report.html")


def _points(values: list[tuple[float, float]], width: int, height: int, xmax: float, ymax: float) -> str:
    return " ".join(f"{40 + x / (xmax or 1) * (width - 60):.1f},{height - 30 - y / (ymax or 1) * (height - 50):.1f}"
                    for x, y in values)


def svg_line(series: dict[str, list[tuple[float, float]]], *, xlabel: str, ylabel: str, width: int = 520,
             height: int = 300, marker_x: float | None = None, diagonal: bool = False) -> str:
    """A small line chart (inline SVG) of one or more series of (x, y) points."""
    colours = ["#2b6cb0", "#c05621", "#2f855a"]
    xs = [x for s in series.values() for x, _ in s] or [1.0]
    ys = [y for s in series.values() for _, y in s] or [1.0]
    xmax, ymax = max(xs), max(max(ys), max(xs) if diagonal else 0.0) or 1.0
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img">',
             f'<line x1="40" y1="{height - 30}" x2="{width - 20}" y2="{height - 30}" stroke="#999"/>',
             f'<line x1="40" y1="20" x2="40" y2="{height - 30}" stroke="#999"/>',
             f'<text x="{width / 2:.0f}" y="{height - 5}" font-size="12">{html.escape(xlabel)}</text>',
             f'<text x="2" y="14" font-size="12">{html.escape(ylabel)} (max {ymax:.3g})</text>']
    if diagonal:
        parts.append(f'<polyline fill="none" stroke="#bbb" stroke-dasharray="4" '
                     f'points="{_points([(0, 0), (xmax, xmax)], width, height, xmax, ymax)}"/>')
    if marker_x is not None:
        x = 40 + marker_x / (xmax or 1) * (width - 60)
        parts.append(f'<line x1="{x:.1f}" y1="20" x2="{x:.1f}" y2="{height - 30}" stroke="#e53e3e" stroke-dasharray="3"/>')
    for i, (name, points) in enumerate(series.items()):
        colour = colours[i % len(colours)]
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" '
                     f'points="{_points(points, width, height, xmax, ymax)}"/>')
        parts.append(f'<text x="{width - 170}" y="{30 + 16 * i}" font-size="12" fill="{colour}">{html.escape(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _table(rows: dict[str, Any]) -> str:
    body = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(_fmt(v))}</td></tr>" for k, v in rows.items())
    return f"<table>{body}</table>"


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.5g}"
    return value if isinstance(value, str) else json.dumps(value)


def render(doc: dict[str, Any]) -> str:
    holdout, training = doc["holdout"], doc["training"]
    scalars = {k: v for k, v in holdout.items() if k != "reliability"}
    curve = [(i + 1.0, v) for i, v in enumerate(training["history"])]
    start = training["resumed_from"]
    learning = svg_line({f"validation {training['metric']}": [(start + x, y) for x, y in curve]},
                        xlabel="boosting round (or chunk end)", ylabel=training["metric"],
                        marker_x=float(training["rounds"]))
    reliability = svg_line({"observed vs predicted": [(b["mean_predicted"], b["observed_rate"]) for b in holdout["reliability"]]},
                           xlabel="mean predicted probability", ylabel="observed fraud rate", diagonal=True)
    title = f"Training report: {doc['model']} version {doc['version']}"
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:60em}}table{{border-collapse:collapse}}
th,td{{border:1px solid #ccc;padding:3px 8px;text-align:left}}</style></head><body>
<h1>{html.escape(title)}</h1>
<h2>Holdout metrics</h2>{_table(scalars)}
<h2>Against the champion (version {html.escape(str(doc['champion_version']))}), challenger − champion</h2>
{_table(doc['vs_champion'])}
<h2>Learning curve</h2><p>Red line: the round kept (early stopping).</p>{learning}
<h2>Calibration</h2><p>Brier score {holdout['brier']:.5f}. Dashed: perfect calibration.</p>{reliability}
<h2>Training</h2>{_table({k: v for k, v in training.items() if k != 'history'})}
<h2>Sizing</h2>{_table(doc['plan'])}
<h2>Training set</h2>{_table(doc['training_set'])}
</body></html>"""
