"""The promotion gate: a challenger becomes ``champion`` only with evidence, and every decision is recorded.

Conditions, all required: (a) its holdout primary metric beats or matches the champion's on the same rows
within the tier's tolerance; (b) its bias audit passed at the model's risk tier; (c) the day's data has not
drifted from the last days of its training period (judged like the daily monitor judges a day); (d) for tiers that require it, a human approval record
``_meta/approvals/<model>/<version>.json`` (who and when; ``mlscale approve``). The decision — promoted,
refused or pending approval — and its evidence go to the registry (version tags) and to the append-only
audit log ``_meta/governance_audit/dt=D/``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import uuid
from dataclasses import asdict, dataclass
from typing import Any

from mlscale.governance.bias import INSUFFICIENT
from mlscale.lake import Lake, parse_day
from mlscale.layout import GOVERNANCE_AUDIT, day_prefix
from mlscale.layout import approval_key as layout_approval_key
from mlscale.training.model import StoredModel

logger = logging.getLogger(__name__)

PROMOTED, REFUSED, PENDING, ROLLED_BACK = "promoted", "refused", "pending_approval", "rolled_back"
ACCEPT_INSUFFICIENT_BIAS = "insufficient_bias_evidence"   # what an approval may explicitly accept


@dataclass(frozen=True)
class GateDecision:
    model: str
    version: str
    decision: str
    reasons: tuple[str, ...]
    evidence: dict[str, Any]
    champion_before: str | None
    champion_after: str | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def approval_key(model: str, version: str) -> str:
    return layout_approval_key(model, version)


def record_approval(lake: Lake, *, model: str, version: str, approved_by: str, note: str = "",
                    accepts: tuple[str, ...] = ()) -> dict[str, Any]:
    """Record a human approval of ``version`` (who, when, why, and what gaps the approver accepts)."""
    if not approved_by.strip():
        raise ValueError("an approval needs the approver's name")
    unknown = set(accepts) - {ACCEPT_INSUFFICIENT_BIAS}
    if unknown:
        raise ValueError(f"an approval can accept only {ACCEPT_INSUFFICIENT_BIAS!r}, not {sorted(unknown)}")
    doc = {"model": model, "version": str(version), "approved_by": approved_by, "note": note,
           "accepts": sorted(accepts), "approved_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
    lake.write_json(approval_key(model, str(version)), doc)
    return doc


def approval_of(lake: Lake, model: str, version: str) -> dict[str, Any] | None:
    try:
        return dict(lake.read_json(approval_key(model, version)))
    except FileNotFoundError:
        return None


def promote_model(*, lake: Lake, dt: str, run_id: str, model: str, version: str = "",
                  tracking_uri: str = "", feast_root: str = "", risk_policy: str = "") -> GateDecision:
    """Decide on ``version`` (default: the challenger); move ``champion`` only when every condition holds.

    ``risk_policy``: the model risk policy file (default ``include/policies/model_risk.yaml``).
    """
    from mlscale.governance.audit_run import bias_report_key, holdout_of
    from mlscale.governance.risk_policy import load_risk_policy
    from mlscale.training import load_model_spec, registry
    from mlscale.training.evaluate import metrics_of_version

    spec = load_model_spec(model)
    mlflow = registry.client_for(registry.RegistryConfig.for_lake(lake, tracking_uri))
    version = registry.version_or_alias(mlflow, model, version, registry.CHALLENGER)
    tier = load_risk_policy(risk_policy or None).tier_for(model)
    champion = registry.alias_version(mlflow, model, registry.CHAMPION)
    candidate = StoredModel.load(lake, model, version)
    holdout = holdout_of(lake, spec, candidate)
    budget = spec.training.review_budget
    metric = tier.promotion.primary_metric
    mine = {k: v for k, v in candidate.doc["holdout"].items() if isinstance(v, (int, float))}  # from training
    reasons: list[str] = []
    evidence: dict[str, Any] = {"risk_tier": tier.name, "metric": metric, "challenger": {metric: mine.get(metric)}}
    if champion and champion != version:
        best = metrics_of_version(lake, model, champion, holdout, budget)
        if best is None:
            evidence["champion"] = {"version": champion, "note": "not comparable on these rows (see the task log)"}
        else:
            evidence["champion"] = {metric: best.get(metric), "version": champion}
            if not tier.promotion.within_tolerance(mine[metric], best[metric]):
                reasons.append(f"metrics: {metric} {mine[metric]:.4f} is worse than the champion's {best[metric]:.4f} "
                               f"beyond the tolerance {tier.promotion.metric_tolerance}")
    reasons += _compressed_variant(candidate, tier.promotion.metric_tolerance, evidence)
    try:
        bias = lake.read_json(bias_report_key(model, version))
        evidence["bias"] = {"verdict": bias["verdict"], "reasons": bias.get("reasons", []),
                            "warnings": bias.get("warnings", []), "report": bias_report_key(model, version)}
        accepted = ACCEPT_INSUFFICIENT_BIAS in (approval_of(lake, model, version) or {}).get("accepts", [])
        if bias["verdict"] == INSUFFICIENT and accepted:
            evidence["bias"]["accepted_by_approver"] = True
        elif bias["verdict"] == INSUFFICIENT:
            reasons.append("bias: too little data to judge any protected attribute (insufficient_data); an approver "
                           f"may accept that explicitly (mlscale approve ... --accept {ACCEPT_INSUFFICIENT_BIAS})")
        elif bias["verdict"] != "pass":
            reasons.append(f"bias: verdict {bias['verdict']}: {'; '.join(bias.get('reasons', []))}")
    except FileNotFoundError:
        reasons.append("bias: no audit of this version (run audit_bias)")
    evidence["drift"] = _reference_drift(lake, spec, candidate, dt, tier, feast_root)
    if evidence["drift"].get("drift_detected"):
        reasons.append(f"drift: {dt} has drifted from the last days of the training period "
                       f"({', '.join(evidence['drift']['drifted_features'][:8])})")
    approval = approval_of(lake, model, version)
    evidence["approval"] = approval or {"required": tier.promotion.requires_human_approval}
    decision = REFUSED if reasons else PROMOTED
    if not reasons and tier.promotion.requires_human_approval and approval is None:
        decision = PENDING
        reasons.append(f"approval: tier {tier.name} requires a human approval (mlscale approve --model {model} "
                       f"--version {version} --by <name>)")
    after = champion
    if decision == PROMOTED:
        registry.set_alias(mlflow, model, registry.CHAMPION, version)
        after = version
    result = GateDecision(model=model, version=version, decision=decision, reasons=tuple(reasons), evidence=evidence,
                          champion_before=champion, champion_after=after)
    _record(lake, mlflow, result, dt, run_id)
    logger.info("promotion gate for %s v%s: %s (champion %s -> %s); reasons: %s", model, version, decision, champion,
                after, "; ".join(reasons) or "all conditions hold")
    return result


def _compressed_variant(candidate: StoredModel, tolerance: float, evidence: dict[str, Any]) -> list[str]:
    """The online variant (:mod:`mlscale.training.compress`) may lose at most the tier's tolerance of PR-AUC."""
    found = candidate.doc.get("compressed") or {}
    if not found.get("available"):
        return []
    drop = float(found["full_pr_auc"]) - float(found["pr_auc"])
    evidence["compressed"] = {"rounds": found["rounds"], "of_rounds": found["of_rounds"], "pr_auc": found["pr_auc"],
                              "full_pr_auc": found["full_pr_auc"], "drop": drop, "tolerance": tolerance,
                              "speedup": found.get("speedup")}
    if drop > tolerance:
        return [f"compressed variant: its holdout PR-AUC {found['pr_auc']:.4f} is {drop:.4f} below the full model's, "
                f"beyond the tolerance {tolerance}"]
    return []


def _reference_drift(lake: Lake, spec: Any, candidate: StoredModel, day: str, tier: Any, feast_root: str) -> dict[str, Any]:
    """Day ``day`` against the last days of the candidate's training period, judged like the daily monitor
    judges a day (:func:`~mlscale.governance.drift_days.judge_against`): per column, thresholds learnt from
    those days' own day-to-day spread (two whole weeks, so the weekday mix is in the reference), windows not yet
    full and features that move by construction left out. A single day against the whole period at fixed PSI
    cut-offs would refuse every version on a busy Saturday or after months of growth."""
    from mlscale.feature_store import feature_store_for
    from mlscale.governance.drift_days import DayProfiles, judge_against, training_days
    from mlscale.governance.drift_plan import monitoring_plan

    store = feature_store_for(lake, root=feast_root or None)
    profiles = DayProfiles(lake, store, spec, candidate, monitoring_plan(spec, candidate.features))
    days = training_days(profiles, day, tier.rolling)
    judged = judge_against(profiles, day, days, tier.rolling)
    return {"day": day, "verdict": judged.verdict, "drift_detected": judged.drift_detected,
            "drifted_features": list(judged.drifted), "share_drifted": judged.share_drifted,
            "reference_days": list(judged.reference_days), "columns_compared": judged.n_judged,
            "reasons": {c.name: c.reason for c in judged.columns if c.drifted},
            "warming_up": list(judged.warming_up), "left_out": list(judged.excluded)}


def _record(lake: Lake, mlflow: Any, result: GateDecision, day: str, run_id: str) -> None:
    stamp = dt.datetime.now(dt.UTC)
    doc = result.as_dict() | {"run_id": run_id, "dt": day, "decided_at": stamp.isoformat(timespec="seconds")}
    key = (f"{day_prefix(GOVERNANCE_AUDIT, parse_day(day).isoformat())}/"
           f"{stamp:%H%M%S%f}-{result.model}-{result.version}-{uuid.uuid4().hex[:8]}.json")
    lake.write_json(key, doc)  # a new object per decision: the audit log is append-only
    tags = {"gate_decision": result.decision, "gate_reasons": json.dumps(list(result.reasons))[:4000],
            "gate_decided_at": doc["decided_at"], "gate_audit_record": key}
    if result.evidence.get("approval", {}).get("approved_by"):
        tags["approved_by"] = result.evidence["approval"]["approved_by"]
        tags["approved_at"] = result.evidence["approval"]["approved_at"]
    for k, v in tags.items():
        mlflow.set_model_version_tag(result.model, result.version, k, v)


def rollback(lake: Lake, *, model: str, version: str, by: str, reason: str, day: str,
             tracking_uri: str = "") -> GateDecision:
    """Point ``champion`` at ``version`` again (it must have been registered and stored); recorded like a gate
    decision, with who and why, in the version's tags and the audit log."""
    from mlscale.training import registry

    StoredModel.load(lake, model, version)  # only a version whose model files exist can serve
    mlflow = registry.client_for(registry.RegistryConfig.for_lake(lake, tracking_uri))
    before = registry.set_alias(mlflow, model, registry.CHAMPION, version)
    result = GateDecision(model=model, version=str(version), decision=ROLLED_BACK, reasons=(f"{by}: {reason}",),
                          evidence={"rolled_back_by": by, "from_version": before}, champion_before=before,
                          champion_after=str(version))
    _record(lake, mlflow, result, day, run_id=f"rollback by {by}")
    logger.warning("champion of %s rolled back from %s to %s by %s: %s", model, before, version, by, reason)
    return result
