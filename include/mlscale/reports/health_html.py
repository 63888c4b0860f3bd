"""The pipeline health page (``reports/health/<D>/report.html``) from the report's JSON document.

Self-contained: inline CSS and SVG charts, no scripts, no external assets; every text from the lake is
HTML-escaped. Charts: quarantine rate and records per day (ingestion), holdout PR-AUC per registered
version, labelled PR-AUC per day against the serving version's holdout, drift share per day, and run
durations per day. Tooltips are SVG ``<title>`` elements.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from typing import Any

PALETTE = ("#2b6cb0", "#c05621", "#2f855a", "#6b46c1", "#b7791f", "#c53030", "#319795", "#718096")
WIDTH, HEIGHT, LEFT, RIGHT, TOP, BOTTOM = 760, 230, 56, 190, 14, 36
STATUS_MARK = {"ok": "✓", "attention": "!", "no data": "·", "dry run": "d"}

CSS = """body{font-family:sans-serif;margin:2em;color:#222;max-width:80em}
table{border-collapse:collapse;margin:.6em 0}td,th{border:1px solid #ccc;padding:3px 7px;text-align:left}
th{background:#f0f0f0}td.n{text-align:right}.nodata{color:#888;font-style:italic}
.critical{color:#c53030;font-weight:bold}.warning{color:#b7791f;font-weight:bold}
.grid td{padding:1px 3px;text-align:center;font-size:12px;min-width:1.2em}.grid th{font-size:11px}
td.s-ok{background:#c6f6d5}td.s-attention{background:#fed7d7;font-weight:bold}td.s-no-data{background:#f7f7f7;color:#aaa}
td.s-dry-run{background:#fefcbf}li{margin:.3em 0}h2{margin-top:1.6em}"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _fmt(value: Any, percent: bool = False) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if percent:
        return f"{value:.2%}"
    if isinstance(value, int) or abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.4g}"


def _nice(vmax: float) -> float:
    if vmax <= 0 or math.isnan(vmax):
        return 1.0
    base = 10 ** math.floor(math.log10(vmax))
    return next(m * base for m in (1, 2, 2.5, 5, 10) if m * base >= vmax)


def _short(label: str) -> str:
    return label[5:] if len(label) == 10 and label[4] == "-" else label


def _frame(title: str, labels: Sequence[str], ymax: float, percent: bool, legend: Sequence[tuple[str, str]]) -> list[str]:
    plot_h = HEIGHT - TOP - BOTTOM
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" role="img" '
             f'aria-label="{_e(title)}" font-family="sans-serif" font-size="11">']
    for i in range(5):
        value = ymax * i / 4
        y = TOP + plot_h - plot_h * i / 4
        parts.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" stroke="#e2e2e2"/>'
                     f'<text x="{LEFT - 4}" y="{y + 4:.1f}" text-anchor="end">{_e(_fmt(value, percent))}</text>')
    step = max(1, math.ceil(len(labels) / 12))
    slot = (WIDTH - LEFT - RIGHT) / max(1, len(labels))
    for i, label in enumerate(labels):
        if i % step == 0 or i == len(labels) - 1:
            x = LEFT + (i + 0.5) * slot
            parts.append(f'<text x="{x:.1f}" y="{HEIGHT - BOTTOM + 14}" text-anchor="middle">{_e(_short(label))}</text>')
    parts.append(f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{WIDTH - RIGHT}" y2="{TOP + plot_h}" stroke="#888"/>')
    for i, (name, colour) in enumerate(legend):
        y = TOP + 4 + 16 * i
        parts.append(f'<rect x="{WIDTH - RIGHT + 10}" y="{y}" width="10" height="10" fill="{colour}"/>'
                     f'<text x="{WIDTH - RIGHT + 24}" y="{y + 9}">{_e(name)}</text>')
    return parts


def _values(series: dict[str, list[float | None]]) -> list[float]:
    return [v for values in series.values() for v in values if v is not None]


def line_chart(title: str, labels: Sequence[str], series: dict[str, list[float | None]], *, percent: bool = False,
               threshold: float | None = None) -> str:
    """Lines over ``labels`` (a gap where a value is None); a dashed ``threshold`` line if given."""
    found = _values(series)
    if not found:
        return f'<p class="nodata">{_e(title)}: no data</p>'
    ymax = _nice(max(found + ([threshold] if threshold is not None else [])))
    plot_h, slot = HEIGHT - TOP - BOTTOM, (WIDTH - LEFT - RIGHT) / max(1, len(labels))
    legend = [(name, PALETTE[i % len(PALETTE)]) for i, name in enumerate(series)]
    parts = _frame(title, labels, ymax, percent, legend)
    if threshold is not None:
        y = TOP + plot_h - plot_h * threshold / ymax
        parts.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" stroke="#c53030" '
                     f'stroke-dasharray="5,3"><title>threshold {_e(_fmt(threshold, percent))}</title></line>')
    for (name, colour), values in zip(legend, series.values(), strict=True):
        run: list[str] = []
        for i, value in enumerate([*values, None]):
            if value is None:
                if len(run) > 1:
                    parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{" ".join(run)}"/>')
                run = []
                continue
            x, y = LEFT + (i + 0.5) * slot, TOP + plot_h - plot_h * value / ymax
            run.append(f"{x:.1f},{y:.1f}")
            parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}"><title>{_e(name)} '
                         f'{_e(labels[i])}: {_e(_fmt(value, percent))}</title></circle>')
    parts.append("</svg>")
    return "".join(parts)


def bar_chart(title: str, labels: Sequence[str], series: dict[str, list[float | None]], *, percent: bool = False,
              alarm: Sequence[bool] | None = None) -> str:
    """Grouped bars per label; with one series, ``alarm`` colours the bars of flagged labels red."""
    found = _values(series)
    if not found:
        return f'<p class="nodata">{_e(title)}: no data</p>'
    ymax = _nice(max(found))
    plot_h, slot = HEIGHT - TOP - BOTTOM, (WIDTH - LEFT - RIGHT) / max(1, len(labels))
    legend = [(name, PALETTE[i % len(PALETTE)]) for i, name in enumerate(series)]
    if alarm is not None:
        legend.append(("flagged", "#c53030"))
    parts = _frame(title, labels, ymax, percent, legend)
    width = slot * 0.8 / max(1, len(series))
    for k, ((name, colour), values) in enumerate(zip(legend, series.values(), strict=False)):
        for i, value in enumerate(values):
            if value is None:
                continue
            h = plot_h * value / ymax
            x = LEFT + i * slot + slot * 0.1 + k * width
            fill = "#c53030" if alarm is not None and i < len(alarm) and alarm[i] else colour
            parts.append(f'<rect x="{x:.1f}" y="{TOP + plot_h - h:.1f}" width="{max(width - 1, 1):.1f}" '
                         f'height="{h:.1f}" fill="{fill}"><title>{_e(name)} {_e(labels[i])}: '
                         f'{_e(_fmt(value, percent))}</title></rect>')
    parts.append("</svg>")
    return "".join(parts)


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]], numeric: Sequence[int] = ()) -> str:
    if not rows:
        return '<p class="nodata">no data</p>'
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f'<td{" class=n" if i in numeric else ""}>{cell}</td>' for i, cell in enumerate(row))
                   + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _link(url: Any, text: str) -> str:
    return f'<a href="{_e(url)}">{_e(text)}</a>' if url else ""


def _charts(doc: dict[str, Any]) -> str:
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
    return "".join([
        "<h2>Quarantine rate per day</h2><p>Dashed: the attention threshold.</p>",
        line_chart("quarantine rate per day", days, rate, percent=True, threshold=threshold),
        "<h2>Records written per day</h2>", bar_chart("records written per day", days, written),
        "<h2>Model quality</h2><h3>Holdout PR-AUC per registered version</h3>",
        line_chart("holdout PR-AUC per version", versions, pr_auc),
        "<h3>Labelled PR-AUC per day (drift reports) against the serving version's holdout</h3>",
        line_chart("PR-AUC per day", days, labelled),
        "<h2>Drift share per day</h2><p>Red: drift detected that day.</p>",
        bar_chart("drift share per day", days, drift, alarm=alarm),
        "<h2>Run duration per day (seconds)</h2>", line_chart("seconds per day", days, seconds),
    ])


def _attention(doc: dict[str, Any]) -> str:
    if not doc["attention"]:
        return "<p>Nothing needs attention in this window.</p>"
    items = []
    for a in doc["attention"]:
        links = " ".join(_link(url, "report") for url in a["links"])
        items.append(f'<li><span class="{_e(a["severity"])}">{_e(a["severity"])}</span> '
                     f'<code>{_e(a["kind"])}</code> {_e(a["message"])} {links}</li>')
    return f"<ol>{''.join(items)}</ol>"


def _today(doc: dict[str, Any]) -> str:
    rows = []
    for name, days in doc["pipelines"].items():
        r = days[-1]
        rows.append([_e(name), f'<span class="s-{_e(r["status"].replace(" ", "-"))}">{_e(r["status"])}</span>',
                     _e(_fmt(r["runs"])), _e(_fmt(r["retries"])), _e(_fmt(r["rows_in"])), _e(_fmt(r["rows_out"])),
                     _e(_fmt(r["quarantine_rate"], percent=True)), _e(_fmt(r["seconds"])), _e(", ".join(r["flags"]))])
    return _table(["pipeline", "status", "runs", "retries", "rows in", "rows out", "quarantine", "seconds", "flags"],
                  rows, numeric=(2, 3, 4, 5, 6, 7))


def _grid(doc: dict[str, Any]) -> str:
    head = "".join(f"<th>{_e(_short(d))}</th>" for d in doc["days"])
    body = []
    for name, rows in doc["pipelines"].items():
        cells = []
        for r in rows:
            tip = f"{name} {r['day']}: {r['status']}"
            if r["flags"]:
                tip += " (" + ", ".join(r["flags"]) + ")"
            if r["rows_out"] is not None:
                tip += f"; rows out {r['rows_out']}"
            cells.append(f'<td class="s-{_e(r["status"].replace(" ", "-"))}" title="{_e(tip)}">'
                         f'{_e(STATUS_MARK.get(r["status"], "?"))}</td>')
        body.append(f"<tr><th>{_e(name)}</th>{''.join(cells)}</tr>")
    return f'<table class="grid"><tr><th>pipeline</th>{head}</tr>{"".join(body)}</table>'


def render_health_html(doc: dict[str, Any]) -> str:
    """The page for one report document (``HealthReport.as_dict()``)."""
    features = _table(["feature set", "status", "newest as-of day", "days behind", "table", "versions"],
                      [[_e(f["feature_set"]), _e(f["status"]), _e(f["newest_day"]), _e(_fmt(f["lag_days"])),
                        _e(f["table"]), _e(", ".join(f["versions"]))] for f in doc["features"]], numeric=(3,))
    models = _table(["model", "version", "registered", "algorithm", "PR-AUC", "ROC-AUC", "training s", "bias",
                     "gate", "links"],
                    [[_e(m["model"]), _e(m["version"]), _e(m["registered_day"]), _e(m["algorithm"]),
                      _e(_fmt(m["pr_auc"])), _e(_fmt(m["roc_auc"])), _e(_fmt(m["seconds"])),
                      _e(m["bias_verdict"] or "no audit"), _e(m["gate_decision"] or "–"),
                      " ".join(_link(url, kind) for kind, url in m["links"].items())]
                     for m in reversed(doc["models"])], numeric=(4, 5, 6))
    drift = _table(["day", "verdict", "drifted", "share", "critical", "version", "report"],
                   [[_e(d["day"]), _e(d["status"]), _e(_fmt(d.get("drifted"))), _e(_fmt(d.get("share_drifted"))),
                     _e(", ".join(d.get("critical_drifted", []))), _e(d.get("version")), _link(d.get("link"), "report")]
                    for d in reversed(doc["drift"]) if d["status"] != "no data"], numeric=(2, 3))
    cost = doc["cost"]
    if cost.get("status") == "ok":
        growth = ", ".join(f"{g['zone']}/{g['dataset']} {_fmt(g['delta_bytes'])} bytes" for g in cost["top_growth"])
        cost_html = (f"<p>Newest cost report ({_e(cost['day'])}): estimated <b>{_e(_fmt(cost['monthly_cost']))} "
                     f"{_e(cost['currency'])}/month</b> for {_e(_fmt(cost['bytes']))} bytes in {_e(_fmt(cost['objects']))} "
                     f"objects (cold {_e(_fmt(cost['cold_bytes']))} bytes); last run "
                     f"{'would save' if cost.get('dry_run') else 'saved'} {_e(_fmt(cost['monthly_saving']))} "
                     f"{_e(cost['currency'])}/month. Top growth: {_e(growth or 'none')}. "
                     f"{_link(cost.get('link'), 'cost report')}</p>")
    else:
        cost_html = '<p class="nodata">no cost report up to this day</p>'
    sources = _table(["source", "status", "records", "unreadable"],
                     [[_e(k), _e(v["status"]), _e(_fmt(v["records"])), _e(_fmt(v.get("unreadable", 0)))]
                      for k, v in doc["sources"].items()], numeric=(2, 3))
    title = f"Pipeline health — {doc['dt']}"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title><style>{CSS}</style></head><body>
<h1>{_e(title)}</h1>
<p>Window {_e(doc['first_day'])} … {_e(doc['dt'])} ({_e(doc['history_days'])} days). Thresholds: quarantine rate
{_e(_fmt(doc['thresholds']['max_quarantine_rate'], percent=True))}, feature lag
{_e(doc['thresholds']['max_feature_lag_days'])} day(s), volume change {_e(_fmt(doc['thresholds']['max_volume_change'], percent=True))},
labelled PR-AUC drop {_e(_fmt(doc['thresholds']['max_pr_auc_drop'], percent=True))}.</p>
<h2>Needs attention</h2>{_attention(doc)}
<h2>{_e(doc['dt'])} per pipeline</h2>{_today(doc)}
<h2>Per pipeline and day</h2><p>✓ ok, ! attention, · no data, d dry run; hover a cell for details.</p>{_grid(doc)}
{_charts(doc)}
<h2>Feature freshness</h2>{features}
<h2>Model versions</h2>{models}
<h2>Drift</h2>{drift}
<h2>Cost</h2>{cost_html}
<h2>Sources</h2>{sources}
</body></html>
"""
