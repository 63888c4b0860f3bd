"""The bias audit of a registered version, as the ``audit_bias`` DAG runs it.

The version's out-of-training rows are scored — the **audit window**: its validation and holdout splits, the
most recent days of its training history, pooled so that each attribute can be judged at the tier (the
validation split only chose the early-stopping round; the report states the window's days and rows) —
the protected attributes are joined from the customer snapshot (read
through the access log with the purpose ``bias_audit``; they are never model features), and the audit's
report goes to ``reports/bias/<model>/<version>/report.json|html``; the verdict is tagged on the version.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any

from mlscale.lake import Lake, PartitionRef, parse_day
from mlscale.layout import bias_report_key as layout_bias_report_key
from mlscale.reports.catalog import report_url
from mlscale.training.dataset import LABEL
from mlscale.training.model import SCORE, StoredModel

logger = logging.getLogger(__name__)

DECISION = "decision"
#: the training-set splits the audit pools: every labelled row the model did not learn from
AUDIT_SPLITS = ("validation", "holdout")


@dataclass(frozen=True)
class AuditResult:
    model: str
    version: str
    verdict: str
    reasons: tuple[str, ...]
    insufficient_data: tuple[str, ...]
    rows: int
    report: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def bias_report_key(model: str, version: str) -> str:
    return layout_bias_report_key(model, version)


def training_set_of(spec: Any, stored: StoredModel) -> PartitionRef:
    """The training set a version was trained on."""
    from mlscale.training import training_ref

    return training_ref(spec, stored.doc["training_set"]["partition"].rsplit("dt=", 1)[1])


def holdout_of(lake: Lake, spec: Any, stored: StoredModel) -> Any:
    from mlscale.training import read_split

    return read_split(lake, training_set_of(spec, stored), "holdout").to_pandas()


def audit_rows(lake: Lake, spec: Any, stored: StoredModel) -> tuple[Any, dict[str, Any]]:
    """The rows the audit judges (the :data:`AUDIT_SPLITS` of the version's training set) and their window."""
    import pandas as pd

    from mlscale.training import read_split

    ref = training_set_of(spec, stored)
    frame = pd.concat([read_split(lake, ref, split).to_pandas() for split in AUDIT_SPLITS], ignore_index=True)
    times = pd.to_datetime(frame[spec.event_time], utc=True)
    first, last = (times.min().date(), times.max().date()) if len(frame) else (None, None)
    window = {"splits": list(AUDIT_SPLITS), "training_set": ref.key, "rows": len(frame),
              "positives": int(frame[LABEL].sum()), "first_day": first and first.isoformat(),
              "last_day": last and last.isoformat(), "days": (last - first).days + 1 if first and last else 0}
    return frame, window


def protected_attributes(lake: Lake, spec: Any, day: str, actor: Any) -> Any:
    """The latest customer snapshot up to ``day``: key and protected columns (an access-logged read)."""
    from mlscale.audit.access import read_sensitive

    refs = [r for r in lake.partitions("raw", spec.protected_dataset) if r.dt <= parse_day(day).isoformat()]
    if not refs:
        raise LookupError(f"no raw/{spec.protected_dataset} snapshot up to {day}: ingest it first")
    ref: PartitionRef = refs[-1]
    table = read_sensitive(lake, ref, columns=[spec.protected_key, *spec.protected_columns], purpose="bias_audit",
                           actor=actor)
    return table.to_pandas().drop_duplicates(subset=[spec.protected_key], keep="last")


def _champion_on_same_rows(lake: Lake, mlflow: Any, model: str, version: str, frame: Any, audited: Any) -> Any:
    """The champion's audit on the challenger's holdout rows, for comparison (None without a champion)."""
    from mlscale.training import registry

    champion = registry.alias_version(mlflow, model, registry.CHAMPION)
    if champion is None or champion == version:
        return None
    stored = StoredModel.load(lake, model, champion)
    if any(f not in frame.columns for f in stored.features):
        return {"version": champion, "note": "needs features this holdout lacks: not compared"}
    audit = audited(stored)
    return {"version": champion, "verdict": audit.verdict, "reasons": list(audit.reasons),
            "warnings": list(audit.warnings),
            "disparity": {name: a["disparity"] for name, a in audit.as_dict()["attributes"].items()}}


def audit_model(*, lake: Lake, dt: str, run_id: str, model: str, version: str = "",
                tracking_uri: str = "", actor: Any = "audit_bias", risk_policy: str = "") -> AuditResult:
    """Audit ``version`` (default: the challenger) of ``model`` at its risk tier's thresholds.

    ``risk_policy``: the model risk policy file (default ``include/policies/model_risk.yaml``).
    """
    from mlscale.governance.bias import audit_bias
    from mlscale.governance.bias_report import render_bias_html
    from mlscale.governance.risk_policy import load_risk_policy
    from mlscale.training import load_model_spec, registry

    spec = load_model_spec(model)
    mlflow = registry.client_for(registry.RegistryConfig.for_lake(lake, tracking_uri))
    version = registry.version_or_alias(mlflow, model, version, registry.CHALLENGER)
    stored = StoredModel.load(lake, model, version)
    rows, window = audit_rows(lake, spec, stored)
    attributes = protected_attributes(lake, spec, dt, actor)
    frame = rows.merge(attributes, on=spec.protected_key, how="left", validate="many_to_one")
    tier = load_risk_policy(risk_policy or None).tier_for(model)
    thresholds = tier.bias

    def audited(candidate: StoredModel) -> Any:
        scored = frame.assign(**{SCORE: candidate.predict(frame)})
        cut = float(candidate.doc["holdout"]["threshold_at_budget"])
        scored[DECISION] = (scored[SCORE] >= cut).astype("int8")
        return audit_bias(scored, label=LABEL, score=SCORE, decision=DECISION,
                          attributes=list(spec.protected_columns), intersections=[list(i) for i in spec.intersections],
                          thresholds=thresholds, model_features=candidate.features,
                          cluster=spec.protected_key)  # one customer's events are not independent evidence

    audit = audited(stored)
    threshold = float(stored.doc["holdout"]["threshold_at_budget"])
    doc = audit.as_dict() | {"model": model, "version": version, "risk_tier": tier.name, "threshold": threshold,
                             "run_id": run_id, "holdout": stored.doc["training_set"]["partition"], "window": window,
                             "champion": _champion_on_same_rows(lake, mlflow, model, version, frame, audited)}
    key = bias_report_key(model, version)
    lake.write_json(key, doc)
    lake.write_bytes(key.replace(".json", ".html"), render_bias_html(doc).encode())
    mlflow.set_model_version_tag(model, version, "bias_verdict", audit.verdict)
    result = AuditResult(model=model, version=version, verdict=audit.verdict, reasons=tuple(audit.reasons),
                         insufficient_data=tuple(audit.insufficient_data), rows=len(frame),
                         report=lake.uri(key.replace(".json", ".html")))
    logger.info("bias audit of %s v%s (tier %s, %d rows of %s..%s: %s splits, threshold %.4f): %s; reasons: %s; "
                "warnings: %s; insufficient data: %d groups; report %s (in the UI: %s)", model, version, tier.name,
                len(frame), window["first_day"], window["last_day"], "+".join(AUDIT_SPLITS), threshold, audit.verdict, "; ".join(audit.reasons) or "none",
                "; ".join(audit.warnings) or "none", len(audit.insufficient_data), result.report,
                report_url("bias", f"{model}/{version}"))
    return result
