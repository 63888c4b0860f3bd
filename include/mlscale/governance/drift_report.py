"""The drift report page (``reports/drift/<model>/<dt>/report.html``): verdict, drifted features, upstream quality.

The template is ``templates/drift.html.j2``; every text from the document is autoescaped.
"""

from __future__ import annotations

from typing import Any

from mlscale.rendering import render


def _text(value: Any) -> str:
    """How a value of the document reads on the page: floats to 4 significant digits, lists joined."""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value))
    return "" if value is None else str(value)


def render_drift_html(doc: dict[str, Any]) -> str:
    drift = doc["drift"]
    order = {"drifted": 0, "ok": 1, "insufficient_data": 2, "warming_up": 3, "excluded": 4}
    features = sorted(drift["features"], key=lambda f: (order.get(f.get("status", "ok"), 5) if "status" in f
                                                         else not f.get("drifted"), -(f.get("psi") or 0)))
    return render("drift.html.j2", doc=doc, drift=drift, features=features, text=_text,
                  verdicts=doc.get("verdicts") or {}, training=doc.get("training_reference"),
                  title=f"Drift report {doc['dt']}: {doc['model']} version {doc['version']}",
                  colour="#c53030" if drift["drift_detected"] else "#2f855a", evidently=doc.get("evidently") or {})
