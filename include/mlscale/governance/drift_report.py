"""The drift report page (``reports/drift/<dt>/report.html``): verdict, drifted features, upstream quality."""

from __future__ import annotations

import html
from typing import Any


def _rows(items: list[dict[str, Any]], columns: list[str]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_fmt(i.get(c)))}</td>" for c in columns) + "</tr>" for i in items)
    return f"<table><tr>{head}</tr>{body}</table>"


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value))
    return "" if value is None else str(value)


def render_drift_html(doc: dict[str, Any]) -> str:
    drift = doc["drift"]
    features = sorted(drift["features"], key=lambda f: (not f.get("drifted"), -(f.get("psi") or 0)))
    colour = "#c53030" if drift["drift_detected"] else "#2f855a"
    evidently = doc.get("evidently") or {}
    title = f"Drift report {doc['dt']}: {doc['model']} version {doc['version']}"
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:70em}}table{{border-collapse:collapse}}
th,td{{border:1px solid #ccc;padding:3px 8px;text-align:left}}</style></head><body>
<h1>{html.escape(title)}</h1>
<p style="font-size:1.3em;color:{colour}"><b>Verdict: {html.escape(drift['verdict'])}</b> —
{len(drift['drifted_features'])} of {drift['n_features']} monitored columns drifted
(share {drift['share_drifted']:.3f}); critical: {html.escape(_fmt(drift['critical_drifted'])) or 'none'}.</p>
<p>Reference: {html.escape(doc['reference'])} ({drift['reference_rows']} rows); day: {drift['current_rows']} rows.
Thresholds: {html.escape(_fmt(drift['thresholds']))}</p>
<h2>Upstream ingestion on {html.escape(doc['dt'])}</h2>{_rows([doc['ingestion']], list(doc['ingestion']))}
<h2>Performance on labelled events</h2>{_rows([doc['performance']], list(doc['performance']))}
<h2>Evidently (bounded sample)</h2><p>Drifted by Evidently: {html.escape(_fmt(evidently.get('drifted_columns'))) or 'none'}
— <a href="evidently.html">full Evidently report</a></p>
<h2>Per column (sketch-based, all rows)</h2>
{_rows(features, ['name', 'drifted', 'psi', 'ks', 'reasons'])}
</body></html>"""
