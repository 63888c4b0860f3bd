"""Model cards, generated from the evidence: ``reports/model_card/<model>/<version>.html`` (and beside the model).

Intended use and owner come from the model specification; lineage, metrics and training from the stored
model; bias findings from its audit; drift status from the latest drift report; approvals and gate
decisions from the governance records. Nothing in a card is written by hand. The page's template is
``templates/model_card.html.j2``.
"""

from __future__ import annotations

import json
from typing import Any

from mlscale.lake import Lake
from mlscale.layout import GOVERNANCE_AUDIT, model_card_key, report_prefix
from mlscale.rendering import render
from mlscale.training.model import StoredModel, model_prefix


def _read(lake: Lake, key: str) -> Any:
    try:
        return lake.read_json(key)
    except FileNotFoundError:
        return None


def _latest_drift(lake: Lake, model: str) -> Any:
    keys = sorted(f.key for f in lake.list_files(f"{report_prefix('drift')}/{model}/") if f.key.endswith("/report.json"))
    return _read(lake, keys[-1]) if keys else None


def _decisions(lake: Lake, model: str, version: str) -> list[dict[str, Any]]:
    docs = [_read(lake, f.key) for f in lake.list_files(GOVERNANCE_AUDIT) if f.key.endswith(".json")]
    return sorted((d for d in docs if d and d.get("model") == model and d.get("version") == version),
                  key=lambda d: d.get("decided_at", ""))


def _text(body: Any) -> str:
    """A section's body as it reads in its ``<pre>``: text as is, anything else as indented JSON."""
    return body if isinstance(body, str) else json.dumps(body, indent=1, default=str)


def write_model_card(lake: Lake, model: str, version: str) -> str:
    """Generate (or regenerate) the card of ``version``; returns its lake URI."""
    from mlscale.governance.audit_run import bias_report_key
    from mlscale.governance.gate import approval_of
    from mlscale.training import load_model_spec

    spec = load_model_spec(model)
    stored = StoredModel.load(lake, model, version)
    bias = _read(lake, bias_report_key(model, version))
    drift = _latest_drift(lake, model)
    doc = stored.doc
    card = {
        "model": model, "version": version, "description": spec.description, "intended_use": spec.intended_use,
        "owner": spec.owner, "algorithm": stored.algorithm,
        "lineage": {"training_set": doc.get("training_set", {}).get("partition"),
                    "fingerprint": doc.get("training_set", {}).get("fingerprint"),
                    "event_days": doc.get("tags", {}).get("event_days"),
                    "label_cutoff": doc.get("training_set", {}).get("label_cutoff"),
                    "feature_set_versions": doc.get("training_set", {}).get("feature_set_versions"),
                    "datasets": [spec.events_dataset, spec.label_dataset], "inputs": doc.get("inputs"),
                    "code_version": doc.get("tags", {}).get("code_version")},
        "metrics": {k: v for k, v in doc.get("holdout", {}).items() if k != "reliability"},
        "ceiling": doc.get("ceiling") or {"available": False, "reason": "not computed for this version"},
        "training": {k: v for k, v in doc.get("training", {}).items() if k != "history"},
        "bias": {"verdict": bias["verdict"], "reasons": bias.get("reasons"), "risk_tier": bias.get("risk_tier"),
                 "warnings": bias.get("warnings"), "insufficient_data": bias.get("insufficient_data")} if bias else "not audited yet",
        "drift": {"dt": drift["dt"], "version_monitored": drift["version"], "verdict": drift["drift"]["verdict"],
                  "drifted_features": drift["drift"]["drifted_features"]} if drift else "not monitored yet",
        "approval": approval_of(lake, model, version) or "none",
        "gate_decisions": [{k: d.get(k) for k in ("decided_at", "decision", "reasons", "run_id")}
                           for d in _decisions(lake, model, version)],
    }
    sections = [("Intended use", _text(spec.intended_use)), ("Owner", _text(spec.owner))] + [
        (k.replace("_", " ").title(), _text(card[k]))
        for k in ("lineage", "metrics", "ceiling", "bias", "drift", "approval", "gate_decisions", "training")]
    page = render("model_card.html.j2", title=f"Model card: {model} version {version}", description=spec.description,
                  sections=sections)
    key = model_card_key(model, version)
    lake.write_bytes(key, page.encode())
    lake.write_json(model_card_key(model, version, "json"), card)
    lake.write_bytes(f"{model_prefix(model, version)}/model_card.html", page.encode())
    return lake.uri(key)
