"""The shadow comparison as a small self-contained HTML page (``templates/shadow.html.j2``, autoescaped)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mlscale.rendering import render

# (key of the comparison, row label) of the agreement table and of the per-model outcome table
AGREEMENT = (("events", "events compared"), ("agreement_rate", "decision agreement rate"),
             ("decisions_changed", "decisions that would change"), ("newly_flagged", "would newly flag"),
             ("no_longer_flagged", "would stop flagging"), ("score_pearson", "score correlation (Pearson)"),
             ("score_spearman", "score correlation (Spearman)"))
OUTCOMES = (("version", "version"), ("threshold", "threshold"), ("flagged", "flagged (all events)"),
            ("labelled_flagged", "flagged and labelled"), ("true_positives", "true positives"),
            ("false_positives", "false positives"), ("false_negatives", "false negatives"),
            ("precision", "precision"), ("recall", "recall"))


def _text(value: Any) -> str:
    """How a figure reads in the tables: ``n/a`` for none, floats to 4 decimals, lists joined."""
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) if value else "none"
    return str(value)


def render_shadow_html(doc: Mapping[str, Any]) -> str:
    """The page of one comparison (``doc`` is :meth:`ShadowComparison.as_dict`, JSON-safe)."""
    challenger = doc.get("challenger")
    models = [doc["champion"]] + ([challenger] if challenger else [])
    return render("shadow.html.j2", doc=doc, title=f"Shadow scoring: {doc['model']} {doc['dt']}", text=_text,
                  shadowed=doc["status"] != "no_challenger" and challenger is not None, models=models,
                  agreement=AGREEMENT, outcomes=OUTCOMES)
