"""Daily drift monitoring of a model: day D's inputs and predictions against a rolling reference of recent days.

The day's model inputs and scores are profiled once over all rows (KLL sketches; entity features once per
entity) and kept as a reference day for the days after (``_meta/drift_profiles/<model>/dt=D/``); PSI/KS then
compare small profiles against a rolling reference of recent days with thresholds learnt from those days
(:mod:`mlscale.governance.drift_days`), so the check's cost does not grow with history. Evidently's data drift
report runs on a bounded sample for the HTML a reviewer reads, on the days with a drift alarm (the risk tier's
``drift.evidently_report``: ``always``, ``on_alarm`` or ``never``). The prediction distribution (``score``) is
critical: its drift alone raises the alert.
Label-based performance is evaluated for D-k (labels arrive days later), and the upstream ingestion quality
of D (quarantine rate, volume change) sits in the same report so root causes are visible in one place.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import tempfile
from dataclasses import asdict, dataclass, field
from typing import Any

from mlscale.governance.drift_days import DayProfiles, day_inputs
from mlscale.lake import Lake, PartitionRef, parse_day
from mlscale.layout import INGESTION_RUNS, day_prefix, drift_report_prefix
from mlscale.reports.catalog import report_url
from mlscale.training.model import SCORE, StoredModel, read_reference_profile

logger = logging.getLogger(__name__)

EVIDENTLY_SAMPLE_ROWS = 2000
LABEL_LAG_DAYS = 5


@dataclass(frozen=True)
class DriftCheck:
    model: str
    version: str
    dt: str
    verdict: str
    drift_detected: bool
    drifted_features: tuple[str, ...]
    share_drifted: float
    score_drifted: bool
    rows: int
    report: str
    evidently_drifted: tuple[str, ...]
    performance: dict[str, Any]
    ingestion: dict[str, Any]
    verdicts: dict[str, str] = field(default_factory=dict)  # data_drift, prediction_drift, performance
    warming_up: tuple[str, ...] = ()
    reference_days: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def asset_extra(self) -> dict[str, Any]:
        return {"model": self.model, "version": self.version, "verdict": self.verdict,
                "drifted": list(self.drifted_features)[:20]}


def monitored_version(client: Any, model: str) -> str:
    """The champion, else the challenger (before any promotion the challenger is what would serve)."""
    from mlscale.training import registry

    return registry.version_or_alias(client, model, "", registry.CHAMPION, registry.CHALLENGER)


def drift_against_reference(reference: Any, data: Any, tier: Any, columns: list[str] | None = None,
                            families: dict[str, str] | None = None) -> Any:
    """``data`` (model inputs plus ``score``) profiled on the reference's bins and compared with it at the risk
    tier's drift thresholds; the score is critical. ``columns``: only these (the comparable ones, see
    :func:`~mlscale.governance.drift_days.comparable_with_training`); ``families``: one-hot columns → their input
    (:func:`~mlscale.governance.drift_plan.input_families`). Returns ``(DriftResult, the day's profile)``."""
    from mlscale.monitoring import (
        DriftThresholds,
        FeatureProfile,
        compare_profiles,
        profile_table,
        reference_edges,
    )

    if columns is not None:
        reference = FeatureProfile(rows=reference.rows, columns={c: s for c, s in reference.columns.items()
                                                                 if c in set(columns)},
                                   kll_k=reference.kll_k, max_categories=reference.max_categories)
        data = data[[c for c in data.columns if c in set(reference.columns)]]
    current = profile_table(data, edges=reference_edges(reference))
    thresholds = DriftThresholds(psi=tier.drift.max_psi, share=tier.drift.max_drifted_share, critical=(SCORE,))
    return compare_profiles(reference, current, thresholds, families), current


def monitor_drift(*, lake: Lake, dt: str, run_id: str, model: str, tracking_uri: str = "",
                  feast_root: str = "", risk_policy: str = "") -> DriftCheck:
    """Check day ``dt`` for ``model``; writes ``reports/drift/<model>/<dt>/`` (idempotent: a rerun rewrites it).

    Three separate verdicts: **data drift** (the model inputs against the rolling reference of recent days, see
    :mod:`mlscale.governance.drift_days`), **prediction drift** (the score, likewise) and **labelled performance**
    (day D-5, whose labels have mostly arrived, against the version's holdout). The distance from the training
    reference is reported beside them (what the promotion gate checks), and Evidently's report on a sample (on
    alarm days, or as the risk tier's ``drift.evidently_report`` says).
    ``risk_policy``: the model risk policy file (default ``include/policies/model_risk.yaml``).
    """
    from mlscale.feature_store import feature_store_for
    from mlscale.governance.drift_days import comparable_with_training, judge_day
    from mlscale.governance.drift_plan import input_families, monitoring_plan
    from mlscale.governance.risk_policy import load_risk_policy
    from mlscale.monitoring import evidently_drift_report
    from mlscale.training import load_model_spec, registry

    day = parse_day(dt).isoformat()
    spec = load_model_spec(model)
    mlflow = registry.client_for(registry.RegistryConfig.for_lake(lake, tracking_uri))
    version = monitored_version(mlflow, model)
    stored = StoredModel.load(lake, model, version)
    tier = load_risk_policy(risk_policy or None).tier_for(model)
    store = feature_store_for(lake, root=feast_root or None)
    profiles = DayProfiles(lake, store, spec, stored, monitoring_plan(spec, stored.features))
    data = profiles.scored(day)
    judged = judge_day(profiles, day, tier.rolling)
    training, current = drift_against_reference(read_reference_profile(lake, model, version), data, tier,
                                                comparable_with_training(lake, spec, stored, profiles.plan),
                                                input_families(profiles.plan))
    prefix = drift_report_prefix(model, day)
    lake.write_bytes(f"{prefix}/profile.json", current.to_json().encode())
    evidently = _evidently(lake, spec, profiles, data, prefix, evidently_drift_report, store) \
        if _renders_evidently(tier.drift.evidently_report, judged.drift_detected) \
        else {"skipped": f"no drift alarm on {day} (risk tier {tier.name}: drift.evidently_report "
                         f"{tier.drift.evidently_report})"}
    performance = _labelled_performance(lake, store, spec, stored, dt)
    ingestion = ingestion_quality(lake, spec.events_dataset, dt)
    verdicts = {"data_drift": judged.data_verdict, "prediction_drift": judged.prediction_verdict,
                "performance": performance_verdict(performance, stored)}
    doc = {"model": model, "version": version, "dt": day, "run_id": run_id, "verdicts": verdicts,
           "drift": judged.as_dict(), "training_reference": training.as_dict(), "evidently": evidently,
           "performance": performance, "ingestion": ingestion,
           "reference": f"rolling: {len(judged.reference_days)} days "
                        f"({', '.join(judged.reference_days) or 'none'})",
           "training_reference_profile": f"models/{model}/{version}/reference_profile.json"}
    lake.write_json(f"{prefix}/report.json", doc)
    from mlscale.governance.drift_report import render_drift_html

    lake.write_bytes(f"{prefix}/report.html", render_drift_html(doc).encode())
    check = DriftCheck(model=model, version=version, dt=day, verdict=judged.verdict,
                       drift_detected=judged.drift_detected, drifted_features=judged.drifted,
                       share_drifted=judged.share_drifted, score_drifted=SCORE in judged.drifted, rows=len(data),
                       report=lake.uri(f"{prefix}/report.html"),
                       evidently_drifted=tuple(evidently.get("drifted_columns", ())), performance=performance,
                       ingestion=ingestion, verdicts=verdicts, warming_up=judged.warming_up,
                       reference_days=judged.reference_days)
    logger.info("drift %s v%s on %s: %s (%d rows; %d of %d features drifted: %s; score drifted: %s); "
                "data drift: %s, prediction drift: %s, performance: %s; %d columns warming up, %d left out; "
                "reference days %s; against the training reference %d of %d columns moved; ingestion: %s; "
                "labelled performance: %s; report %s (in the UI: %s)", model, version, day, judged.verdict, len(data),
                len(judged.drifted), judged.n_judged, ", ".join(judged.drifted[:12]) or "none", check.score_drifted,
                verdicts["data_drift"], verdicts["prediction_drift"], verdicts["performance"], len(judged.warming_up),
                len(judged.excluded), ", ".join(judged.reference_days) or "none", len(training.drifted_features),
                training.n_features, ingestion, performance, check.report, report_url("drift", f"{model}/{day}"))
    return check


PERFORMANCE_MIN_POSITIVES = 30   # fewer labelled frauds on the day: no performance verdict
PERFORMANCE_MAX_DROP = 0.3       # PR-AUC below (1 - this) x the version's holdout PR-AUC: decayed


def performance_verdict(performance: dict[str, Any], stored: StoredModel) -> str:
    """``decayed``, ``ok``, or ``insufficient_labels`` for the labelled day against the version's holdout."""
    holdout = (stored.doc.get("holdout") or {}).get("pr_auc")
    positives = performance.get("positives")
    if performance.get("pr_auc") is None or not holdout or (positives or 0) < PERFORMANCE_MIN_POSITIVES:
        return "insufficient_labels"
    return "decayed" if performance["pr_auc"] < holdout * (1 - PERFORMANCE_MAX_DROP) else "ok"


def _renders_evidently(when: str, alarm: bool) -> bool:
    return when == "always" or (when == "on_alarm" and alarm)


def _evidently(lake: Lake, spec: Any, profiles: DayProfiles, data: Any, prefix: str, report: Any,
               store: Any) -> dict[str, Any]:
    """Evidently's report on bounded samples: the training set's last day (its kept sample of model inputs, else
    its events) vs day D."""
    stored = profiles.stored
    day = stored.doc.get("training_set", {}).get("last_event_day")
    if not day:
        return {"skipped": "no training set recorded for this version"}
    frame = profiles.sample(day)
    reference = stored.scored(frame if frame is not None else day_inputs(lake, store, spec, day))
    columns = [c for c in (*[f for e in spec.event_features for f in e.columns()], SCORE)]
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "evidently.html")
        out = report(reference, data, path, sample_rows=EVIDENTLY_SAMPLE_ROWS, columns=columns)
        with open(path, "rb") as f:
            lake.write_bytes(f"{prefix}/evidently.html", f.read())
    out["html_path"] = lake.uri(f"{prefix}/evidently.html")
    out["reference_day"] = day
    return out


def _labelled_performance(lake: Lake, store: Any, spec: Any, stored: StoredModel, dt_: str) -> dict[str, Any]:
    """Holdout-style metrics for the events of D-k whose labels have arrived by D (labels come days later)."""
    from mlscale.training.dataset import latest_labels
    from mlscale.training.evaluate import holdout_metrics

    day = parse_day(dt_)
    target = day - dt.timedelta(days=LABEL_LAG_DAYS)
    if lake.manifest(PartitionRef.of("raw", spec.events_dataset, target)) is None:
        return {"day": target.isoformat(), "skipped": "no events for that day"}
    labels, _ = latest_labels(lake, spec, target, day)
    frame = day_inputs(lake, store, spec, target.isoformat())
    labelled = frame.merge(labels.to_pandas()[[spec.label_key, spec.label_column]], left_on=spec.event_key,
                           right_on=spec.label_key, how="inner")
    if labelled.empty or labelled[spec.label_column].nunique() < 2:
        return {"day": target.isoformat(), "labelled": len(labelled), "skipped": "labels of one class or none"}
    metrics = holdout_metrics(labelled[spec.label_column].astype(int), stored.predict(labelled),
                              review_budget=spec.training.review_budget).scalars()
    return {"day": target.isoformat(), "labelled": len(labelled), "events": len(frame),
            "positives": int(labelled[spec.label_column].astype(int).sum()), **metrics,
            **_truth_ceiling(lake, labelled, spec, target)}


def _truth_ceiling(lake: Lake, labelled: Any, spec: Any, day: dt.date) -> dict[str, Any]:
    """``{"ceiling_pr_auc": …}``: the PR-AUC of the world's true probabilities on the same labelled rows, where
    the lake holds the generator's truth (a synthetic world); nothing on real data. It tells a hard day (the
    truth scores low too) from a model that decayed (the ratio to the ceiling falls)."""
    from sklearn.metrics import average_precision_score

    from mlscale.training.ceiling import truth_probabilities

    truth = truth_probabilities(lake, day, day)
    if truth is None:
        return {}
    rows = labelled[[spec.event_key, spec.label_column]].merge(truth, left_on=spec.event_key, right_on="event_id")
    if rows[spec.label_column].nunique() < 2:
        return {}
    return {"ceiling_pr_auc": float(average_precision_score(rows[spec.label_column].astype(int), rows["p_fraud"])),
            "ceiling_rows": len(rows)}


def ingestion_quality(lake: Lake, dataset: str, day: str) -> dict[str, Any]:
    """Rows written/quarantined for the day and the volume change against the day before (run log)."""
    def latest(d: str) -> dict[str, Any] | None:
        files = [f for f in lake.list_files(day_prefix(INGESTION_RUNS, d)) if f.key.rsplit("/", 1)[-1].startswith(f"{dataset}__")]
        runs = [lake.read_json(f.key) for f in sorted(files, key=lambda f: f.key)]
        runs = [r for r in runs if not r.get("dry_run")]
        return runs[-1] if runs else None

    today = latest(day)
    before = latest((parse_day(day) - dt.timedelta(days=1)).isoformat())
    if today is None:
        return {"dataset": dataset, "skipped": "no ingestion run recorded"}
    written, quarantined = int(today.get("rows_written", 0)), int(today.get("rows_quarantined", 0))
    total = written + quarantined
    out = {"dataset": dataset, "rows_written": written, "rows_quarantined": quarantined,
           "quarantine_rate": round(quarantined / total, 5) if total else 0.0}
    if before and before.get("rows_written"):
        out["volume_change"] = round(written / int(before["rows_written"]) - 1, 4)
    return out
