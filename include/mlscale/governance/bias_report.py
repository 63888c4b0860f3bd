"""The bias audit's ``report.html``: one self-contained page rendered from the ``report.json`` document.

The page has no scripts, styles from outside or images: a verdict banner with its reasons, the
thresholds, the method, and per attribute or intersection the disparity figures, a table of groups
with their metrics and intervals, and inline SVG bars of selection rate and TPR with interval whiskers.
Every text taken from the document is HTML-escaped.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Mapping, Sequence
from typing import Any

logger = logging.getLogger(__name__)

_METRIC_TITLES = {"selection_rate": "selection rate", "true_positive_rate": "TPR",
                  "false_positive_rate": "FPR", "precision": "precision", "pr_auc": "PR-AUC"}
_DISPARITIES = (("demographic_parity_difference", "max_demographic_parity_difference", "≤"),
                ("demographic_parity_ratio", "min_demographic_parity_ratio", "≥"),
                ("equalized_odds_difference", "max_equalized_odds_difference", "≤"))
_STYLE = """body{font-family:sans-serif;margin:2em;color:#222;max-width:1200px}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px}th{background:#eee}
td.n{text-align:right;font-variant-numeric:tabular-nums}td.n small{white-space:nowrap}tr.short td{color:#888;background:#f7f7f7}
.banner{padding:1em;border-radius:4px;font-size:1.2em;color:#fff}.pass{background:#2e7d32}.fail{background:#c62828}
.charts{display:flex;flex-wrap:wrap;gap:2em}small{color:#555}"""


def _fmt(value: Any) -> str:
    return "—" if value is None else f"{value:.4f}" if isinstance(value, float) else html.escape(str(value))


def _interval(metric: Mapping[str, Any]) -> str:
    text = _fmt(metric.get("value"))
    if metric.get("ci_low") is not None:
        text += f" <small>[{_fmt(metric['ci_low'])}, {_fmt(metric['ci_high'])}]</small>"
    if "sample_rows" in metric:
        text += f" <small>({metric['sample_rows']:,} sampled rows)</small>"
    return text


def svg_interval_bars(rows: Sequence[tuple[str, float | None, float | None, float | None, bool]], title: str,
                      reference: float | None = None, width: int = 460) -> str:
    """Horizontal bars of (label, value, ci_low, ci_high, judged) with interval whiskers; inline SVG.

    Groups not judged are drawn grey; ``reference`` draws a dashed vertical line (e.g. four-fifths of the
    highest selection rate). The scale starts at 0 and ends at the largest value or interval bound.
    """
    bar_h, gap, label_w, top = 16, 6, 130, 22
    values = [v for _, value, _, high, _ in rows for v in (value, high, reference) if v is not None]
    scale = (width - label_w - 70) / (max(values, default=0) or 1)
    height = top + len(rows) * (bar_h + gap) + 8
    esc = html.escape
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
             f'aria-label="{esc(title)}" font-family="sans-serif" font-size="12">'
             f'<text x="{label_w}" y="14" font-weight="bold">{esc(title)}</text>']
    for i, (label, value, low, high, judged) in enumerate(rows):
        y = top + i * (bar_h + gap)
        parts.append(f'<text x="{label_w - 6}" y="{y + 12}" text-anchor="end">{esc(label)}</text>')
        if value is None:
            parts.append(f'<text x="{label_w + 4}" y="{y + 12}" fill="#888">undefined</text>')
            continue
        parts.append(f'<rect x="{label_w}" y="{y}" width="{value * scale:.1f}" height="{bar_h}" '
                     f'fill="{"#4a78b5" if judged else "#bbbbbb"}"/>')
        if low is not None and high is not None:
            x0, x1, mid = label_w + low * scale, label_w + high * scale, y + bar_h / 2
            parts.append(f'<path d="M{x0:.1f} {mid}H{x1:.1f}M{x0:.1f} {y + 3}V{y + bar_h - 3}'
                         f'M{x1:.1f} {y + 3}V{y + bar_h - 3}" stroke="#222" fill="none"/>')
        end = label_w + max(value, high if high is not None else value) * scale
        parts.append(f'<text x="{end + 5:.1f}" y="{y + 12}">{value:.3f}</text>')
    if reference is not None:
        x = label_w + reference * scale
        parts.append(f'<line x1="{x:.1f}" y1="{top - 4}" x2="{x:.1f}" y2="{height - 4}" stroke="#c62828" '
                     f'stroke-dasharray="4 3"><title>four-fifths of the highest rate</title></line>')
    parts.append("</svg>")
    return "".join(parts)


def _charts(groups: Mapping[str, Any], disparity: Mapping[str, Any]) -> str:
    charts = []
    for metric in ("selection_rate", "true_positive_rate"):
        rows = [(g, e[metric]["value"], e[metric]["ci_low"], e[metric]["ci_high"], e[metric]["status"] == "ok")
                for g, e in groups.items()]
        reference = None
        if metric == "selection_rate" and disparity.get("highest_selection_rate_group"):
            reference = 0.8 * groups[disparity["highest_selection_rate_group"]][metric]["value"]
        charts.append(svg_interval_bars(rows, f"{_METRIC_TITLES[metric]} with interval", reference))
    return f'<div class="charts">{"".join(charts)}</div>'


def _attribute(name: str, doc: Mapping[str, Any], thresholds: Mapping[str, Any]) -> str:
    esc = html.escape
    disparity, groups = doc["disparity"], doc["groups"]
    ci = disparity.get("ci") or {}
    figures = "".join(
        f"<tr><td>{key}</td><td class=n>{_fmt(disparity.get(key))}</td>"
        f"<td class=n>{_fmt(ci[key][0]) + ' – ' + _fmt(ci[key][1]) if ci.get(key) else '—'}</td>"
        f"<td class=n>{sign} {_fmt(thresholds.get(limit))}</td></tr>" for key, limit, sign in _DISPARITIES)
    four = disparity.get("four_fifths_pass")
    figures += (f"<tr><td>four_fifths_pass</td><td colspan=3>"
                f"{'—' if four is None else 'yes' if four else 'no'}</td></tr>")
    header = "".join(f"<th>{t}</th>" for t in _METRIC_TITLES.values())
    body = "".join(
        f"<tr class={'ok' if e['status'] == 'ok' else 'short'}><td>{esc(g)}</td><td class=n>{e['n']:,}</td>"
        f"<td class=n>{e['positives']:,}</td><td class=n>{e['selected']:,}</td><td>{esc(e['status'])}</td>"
        + "".join(f"<td class=n>{_interval(e[m])}{'' if e[m]['status'] == 'ok' else ' *'}</td>"
                  for m in _METRIC_TITLES) + "</tr>" for g, e in groups.items())
    status = "passed" if doc["passed"] else "failed: " + "; ".join(doc["reasons"])
    compared = ", ".join(disparity.get("groups_compared") or []) or "none (fewer than two groups with enough data)"
    return (f"<h2>{esc(name)} <small>({esc(status)})</small></h2>"
            f"<p>Groups compared: {esc(compared)}.</p>"
            f"<table><tr><th>disparity</th><th>value</th><th>interval</th><th>threshold</th></tr>{figures}</table>"
            f"{_charts(groups, disparity)}"
            f"<table><tr><th>group</th><th>n</th><th>positives</th><th>selected</th><th>status</th>{header}</tr>"
            f"{body}</table><p><small>* not judged: too few rows for this metric</small></p>")


def _items(values: Sequence[str], empty: str) -> str:
    return "".join(f"<li>{html.escape(v)}</li>" for v in values) or f"<li>{html.escape(empty)}</li>"


def _champion(doc: Any) -> str:
    """The champion's audit on the same rows, side by side with this version's disparity figures."""
    if not doc:
        return "<h2>Champion on the same rows</h2><p>no champion to compare with</p>"
    esc = html.escape
    if "disparity" not in doc:
        return f"<h2>Champion (version {esc(str(doc.get('version')))})</h2><p>{esc(str(doc.get('note', '')))}</p>"
    rows = "".join(
        f"<tr><td>{esc(name)}</td>"
        + "".join(f"<td class=n>{'' if d.get(k) is None else f'{d[k]:.4f}'}</td>"
                  for k in ("demographic_parity_difference", "demographic_parity_ratio", "equalized_odds_difference"))
        + "</tr>" for name, d in doc["disparity"].items())
    return (f"<h2>Champion (version {esc(str(doc['version']))}) on the same rows: {esc(str(doc['verdict']))}</h2>"
            "<table><tr><th>attribute</th><th>DP difference</th><th>DP ratio</th><th>EO difference</th></tr>"
            f"{rows}</table><ul>{_items(doc.get('reasons', []) + doc.get('warnings', []), 'no findings')}</ul>")


def render_bias_html(audit: Mapping[str, Any]) -> str:
    """The page for a ``BiasAudit.as_dict()`` document; deterministic for a given document."""
    esc = html.escape
    verdict = str(audit["verdict"])
    thresholds = audit["thresholds"]
    limits = "".join(f"<tr><td>{esc(k)}</td><td class=n>{esc(str(v))}</td></tr>" for k, v in thresholds.items())
    method = "".join(f"<tr><td>{esc(k)}</td><td>{esc(str(v))}</td></tr>" for k, v in audit["method"].items())
    columns = ", ".join(f"{esc(k)} <code>{esc(v)}</code>" for k, v in audit["columns"].items())
    overall = audit["overall"]
    summary = "".join(f"<td class=n>{_interval(overall[m])}</td>" for m in _METRIC_TITLES)
    sections = "".join(_attribute(name, doc, thresholds) for name, doc in audit["attributes"].items())
    champion = _champion(audit.get("champion"))
    logger.debug("bias report page: verdict %s, %d attributes", verdict, len(audit["attributes"]))
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Bias audit: {esc(verdict)}</title>
<style>{_STYLE}</style></head>
<body><h1>Bias audit</h1>
<div class="banner {'pass' if verdict == 'pass' else 'fail'}">Verdict: <b>{esc(verdict.upper())}</b>
— {audit['rows']:,} rows; {columns}</div>
<h2>Reasons</h2><ul>{_items(audit['reasons'], 'none: every judged disparity is within its threshold')}</ul>
<h2>Warnings for the reviewer (estimate beyond a threshold, not confirmed by its interval)</h2>
<ul>{_items(audit.get('warnings', []), 'none')}</ul>
{champion}
<h2>Insufficient data (reported, not judged)</h2><ul>{_items(audit['insufficient_data'], 'none')}</ul>
<h2>Not judged</h2><ul>{_items(audit['not_judged'], 'none')}</ul>
<h2>Thresholds</h2><table>{limits}</table>
<h2>Method</h2><table>{method}</table>
<h2>All rows</h2><table><tr><th>n</th>{''.join(f'<th>{t}</th>' for t in _METRIC_TITLES.values())}</tr>
<tr><td class=n>{overall['n']:,}</td>{summary}</tr></table>
{sections}
</body></html>
"""
