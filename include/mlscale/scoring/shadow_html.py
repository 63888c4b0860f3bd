"""The shadow comparison as a small self-contained HTML page (every text escaped)."""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

STYLE = ("body{font-family:system-ui,sans-serif;margin:2em;max-width:60em}table{border-collapse:collapse;"
         "margin:1em 0}th,td{border:1px solid #ccc;padding:.3em .7em;text-align:left}th{background:#f3f3f3}"
         "td.n{text-align:right;font-variant-numeric:tabular-nums}.note{color:#555}")


def _fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) if value else "none"
    return str(value)


def _row(label: str, *values: Any) -> str:
    cells = "".join(f'<td class="n">{html.escape(_fmt(v))}</td>' for v in values)
    return f"<tr><th>{html.escape(label)}</th>{cells}</tr>"


def render_shadow_html(doc: Mapping[str, Any]) -> str:
    """The page of one comparison (``doc`` is :meth:`ShadowComparison.as_dict`, JSON-safe)."""
    title = f"Shadow scoring: {doc['model']} {doc['dt']}"
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
             f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>"]
    champion, challenger = doc["champion"], doc.get("challenger")
    if doc["status"] == "no_challenger" or challenger is None:
        parts.append(f"<p>No challenger was scored for this day: the champion (version "
                     f"{html.escape(str(doc['champion_version']))}) made every decision.</p>")
    else:
        parts.append(f"<p class='note'>Champion version {html.escape(str(doc['champion_version']))} made the "
                     f"decisions; challenger version {html.escape(str(doc['challenger_version']))} scored the same "
                     "events in shadow. Its decisions below are what it <em>would</em> have decided; none was "
                     "acted on.</p>")
        parts.append("<h2>Agreement</h2><table>")
        parts += [_row("events compared", doc["events"]), _row("decision agreement rate", doc["agreement_rate"]),
                  _row("decisions that would change", doc["decisions_changed"]),
                  _row("would newly flag", doc["newly_flagged"]), _row("would stop flagging", doc["no_longer_flagged"]),
                  _row("score correlation (Pearson)", doc["score_pearson"]),
                  _row("score correlation (Spearman)", doc["score_spearman"])]
        parts.append("</table>")
    parts.append("<h2>Decisions and labels</h2>")
    parts.append(f"<p class='note'>Labels arrive days after the events: {html.escape(str(doc['labelled']))} events "
                 f"are labelled so far ({html.escape(str(doc['labelled_positives']))} positive), from the label "
                 f"partitions of {html.escape(_fmt(doc['label_days_read']))}. Precision and recall are computed on "
                 "the labelled events only.</p>")
    header = "<tr><th></th><th>champion</th>" + ("<th>challenger (shadow)</th>" if challenger else "") + "</tr>"
    parts.append(f"<table>{header}")
    models = [champion] + ([challenger] if challenger else [])
    for key, label in (("version", "version"), ("threshold", "threshold"), ("flagged", "flagged (all events)"),
                       ("labelled_flagged", "flagged and labelled"), ("true_positives", "true positives"),
                       ("false_positives", "false positives"), ("false_negatives", "false negatives"),
                       ("precision", "precision"), ("recall", "recall")):
        parts.append(_row(label, *(m.get(key) for m in models)))
    parts.append("</table>")
    parts.append(f"<p class='note'>Run {html.escape(str(doc['run_id']))}. Data: "
                 f"<code>{html.escape(str(doc['report_json']))}</code>.</p></body></html>")
    return "\n".join(parts)
