"""The bias audit's ``report.html``: one self-contained page rendered from the ``report.json`` document.

The page has no scripts, styles from outside or images: a verdict banner with its reasons, the
thresholds, the method, and per attribute or intersection the disparity figures, a table of groups
with their metrics and intervals, and inline SVG bars of selection rate and TPR with interval whiskers.
The template is ``templates/bias.html.j2``; every text taken from the document is autoescaped.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from markupsafe import Markup

from mlscale.rendering import render, render_macro

logger = logging.getLogger(__name__)

_METRIC_TITLES = {"selection_rate": "selection rate", "true_positive_rate": "TPR",
                  "false_positive_rate": "FPR", "precision": "precision", "pr_auc": "PR-AUC"}
_DISPARITIES = (("demographic_parity_difference", "max_demographic_parity_difference", "≤"),
                ("demographic_parity_ratio", "min_demographic_parity_ratio", "≥"),
                ("equalized_odds_difference", "max_equalized_odds_difference", "≤"))


def svg_interval_bars(rows: Sequence[tuple[str, float | None, float | None, float | None, bool]], title: str,
                      reference: float | None = None, width: int = 460) -> Markup:
    """Horizontal bars of (label, value, ci_low, ci_high, judged) with interval whiskers; inline SVG.

    Groups not judged are drawn grey; ``reference`` draws a dashed vertical line (e.g. four-fifths of the
    highest selection rate). The scale starts at 0 and ends at the largest value or interval bound.
    """
    bar_h, gap, label_w, top = 16, 6, 130, 22
    values = [v for _, value, _, high, _ in rows for v in (value, high, reference) if v is not None]
    scale = (width - label_w - 70) / (max(values, default=0) or 1)
    bars: list[dict[str, Any]] = []
    for i, (label, value, low, high, judged) in enumerate(rows):
        bar: dict[str, Any] = {"label": label, "y": top + i * (bar_h + gap), "value": value}
        if value is not None:
            bar.update(width=value * scale, fill="#4a78b5" if judged else "#bbbbbb",
                       whisker=None if low is None or high is None else (label_w + low * scale, label_w + high * scale),
                       end=label_w + max(value, high if high is not None else value) * scale)
        bars.append(bar)
    return render_macro("charts.svg.j2", "interval_bars", title=title, width=width,
                        height=top + len(rows) * (bar_h + gap) + 8, top=top, bar_h=bar_h, label_w=label_w, bars=bars,
                        reference_x=None if reference is None else label_w + reference * scale)


def _charts(groups: Mapping[str, Any], disparity: Mapping[str, Any]) -> list[Markup]:
    charts = []
    for metric in ("selection_rate", "true_positive_rate"):
        rows = [(g, e[metric]["value"], e[metric]["ci_low"], e[metric]["ci_high"], e[metric]["status"] == "ok")
                for g, e in groups.items()]
        reference = None
        if metric == "selection_rate" and disparity.get("highest_selection_rate_group"):
            reference = 0.8 * groups[disparity["highest_selection_rate_group"]][metric]["value"]
        charts.append(svg_interval_bars(rows, f"{_METRIC_TITLES[metric]} with interval", reference))
    return charts


def render_bias_html(audit: Mapping[str, Any]) -> str:
    """The page for a ``BiasAudit.as_dict()`` document; deterministic for a given document."""
    verdict = str(audit["verdict"])
    logger.debug("bias report page: verdict %s, %d attributes", verdict, len(audit["attributes"]))
    charts = {name: _charts(doc["groups"], doc["disparity"]) for name, doc in audit["attributes"].items()}
    return render("bias.html.j2", audit=audit, verdict=verdict, charts=charts, metric_titles=_METRIC_TITLES,
                  disparities=_DISPARITIES)
