"""The pipeline health report: ``reports/health/<D>/report.json`` and ``report.html``.

One page per day D that connects model quality to upstream pipeline health. For every pipeline
(``ingest_<dataset>``, ``compact_lake``, ``build_features``, ``train_model``, ``audit_bias``,
``monitor_drift``, ``score_batch``, ``lifecycle_cleanup``) and every day of the window
D-(history_days-1)..D it reads what the pipelines already record in the lake — ingestion and compaction run
records, feature-table manifests, registered model versions, bias reports and gate decisions, drift
reports, prediction manifests, the lifecycle audit log and cost reports — and derives rows in/out,
quarantine rate, duration, retries, feature freshness, model metrics over time, drift status and cost, plus
a short attention list that names what to look at first and what happened upstream on the same day.

Guarantees: only reads, apart from the two report files; a missing or unreadable source is reported as
"no data", never an error; the window comes from D alone (never the wall clock), so a rerun for D
rewrites the same report from the lake as it is then.

The sources are read by :mod:`mlscale.reports.health_sources` (data pipelines) and
:mod:`mlscale.reports.health_models` (model pipelines); :mod:`mlscale.reports.health_attention` derives the
attention list and :mod:`mlscale.reports.health_html` renders the page.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from mlscale.lake import Lake, parse_day

logger = logging.getLogger(__name__)

REPORTS_PREFIX = "reports/health"
INGESTION_RUNS = "_meta/ingestion_runs"
COMPACTION_RUNS = "_meta/compaction_runs"
GOVERNANCE_AUDIT = "_meta/governance_audit"
LIFECYCLE_AUDIT = "_meta/lifecycle_audit"

OK, ATTENTION, NO_DATA, DRY_RUN = "ok", "attention", "no data", "dry run"
CRITICAL, WARNING = "critical", "warning"
#: Pipelines after the per-dataset ingestion pipelines, in the order the page shows them.
PIPELINES = ("compact_lake", "build_features", "train_model", "audit_bias", "monitor_drift", "score_batch",
             "lifecycle_cleanup")
#: Pipelines expected to record something every day once they run at all ("missing" on D otherwise).
DAILY = ("build_features", "monitor_drift", "score_batch", "lifecycle_cleanup")
#: Flags that make an item critical when they hold on D itself (the others stay warnings).
CRITICAL_FLAGS = ("quarantine_rate", "stale_features", "validation_failed", "drift", "performance_drop",
                  "bias_fail", "failed_actions", "failed_runs", "unaudited_versions")


@dataclass(frozen=True)
class HealthThresholds:
    """When a day needs attention.

    ``max_quarantine_rate``: share of records quarantined by an ingestion run; ``max_feature_lag_days``:
    days a feature set's newest committed as-of table may lag the day; ``max_volume_change``: relative
    change of records in against the day before; ``max_pr_auc_drop``: relative drop of the labelled
    PR-AUC (drift report) below the serving version's holdout PR-AUC.
    """

    max_quarantine_rate: float = 0.05
    max_feature_lag_days: int = 0
    max_volume_change: float = 0.5
    max_pr_auc_drop: float = 0.2

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class PipelineDay:
    """One pipeline on one day. ``None`` means the source does not record that figure.

    ``flags`` name the conditions that need attention (``quarantine_rate``, ``volume_change``, ``retries``,
    ``stale_features``, ``validation_failed``, ``drift``, ``performance_drop``, ``bias_fail``,
    ``gate_refused``, ``failed_actions``, ``missing``, ``failed_runs``, ``unaudited_versions``); ``seconds`` is the duration of the run that
    produced the day's result.
    """

    pipeline: str
    day: str
    status: str
    runs: int = 0
    retries: int | None = None
    rows_in: int | None = None
    rows_out: int | None = None
    rows_quarantined: int | None = None
    quarantine_rate: float | None = None
    seconds: float | None = None
    flags: tuple[str, ...] = ()
    detail: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["flags"] = list(self.flags)
        return doc


@dataclass(frozen=True)
class FeatureFreshness:
    """The newest committed as-of table of a feature set up to D, and how many days it is behind D."""

    feature_set: str
    status: str  # "fresh", "stale" or "no data"
    table: str | None = None
    newest_day: str | None = None
    lag_days: int | None = None
    versions: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["versions"] = list(self.versions)
        return doc


@dataclass(frozen=True)
class AttentionItem:
    """One thing to look at: a condition of one pipeline, on the days it held (newest last)."""

    severity: str  # "critical" when it holds on D itself, else "warning"
    kind: str
    pipeline: str
    days: tuple[str, ...]
    message: str
    links: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {"severity": self.severity, "kind": self.kind, "pipeline": self.pipeline, "days": list(self.days),
                "message": self.message, "links": list(self.links)}


@dataclass(frozen=True)
class HealthReport:
    """The health of every pipeline over ``days`` (oldest first, ending at ``dt``); see the module docs."""

    dt: str
    days: tuple[str, ...]
    pipelines: dict[str, tuple[PipelineDay, ...]]
    features: tuple[FeatureFreshness, ...]
    models: tuple[dict[str, Any], ...]
    labelled_performance: tuple[dict[str, Any], ...]
    drift: tuple[dict[str, Any], ...]
    cost: dict[str, Any]
    attention: tuple[AttentionItem, ...]
    sources: dict[str, dict[str, Any]]
    thresholds: HealthThresholds
    report_json: str = ""
    report_html: str = ""

    @property
    def history_days(self) -> int:
        return len(self.days)

    def as_dict(self) -> dict[str, Any]:
        return {
            "dt": self.dt, "first_day": self.days[0], "history_days": self.history_days, "days": list(self.days),
            "thresholds": self.thresholds.as_dict(),
            "attention": [a.as_dict() for a in self.attention],
            "pipelines": {name: [row.as_dict() for row in rows] for name, rows in self.pipelines.items()},
            "features": [f.as_dict() for f in self.features],
            "models": list(self.models), "labelled_performance": list(self.labelled_performance),
            "drift": list(self.drift), "cost": self.cost, "sources": self.sources,
            "report_json": self.report_json, "report_html": self.report_html,
        }

    def summary(self) -> dict[str, Any]:
        """A small dict for XCom and the task log."""
        return {"dt": self.dt, "history_days": self.history_days, "report": self.report_html,
                "attention": len(self.attention),
                "critical": sum(1 for a in self.attention if a.severity == CRITICAL)}


# -- the report -------------------------------------------------------------------------------------------
def build_health_report(lake: Lake, dt: str, *, history_days: int = 30, datasets: Iterable[str] = (),
                        feature_sets: Iterable[str] = (), thresholds: HealthThresholds | None = None) -> HealthReport:
    """Build the health report of day ``dt`` over the ``history_days`` days ending at ``dt``; write it.

    ``datasets`` and ``feature_sets`` name what is expected (their pipelines appear, as "no data", even
    without records); what the lake records is always added. Writes ``reports/health/<dt>/report.json``
    and ``report.html`` (a rerun replaces them). Raises ``ValueError`` only for a bad ``dt`` or
    ``history_days``; missing or unreadable sources are reported as "no data".
    """
    if history_days < 1:
        raise ValueError(f"history_days must be at least 1, not {history_days}")
    day = parse_day(dt)
    days = tuple((day - datetime.timedelta(days=i)).isoformat() for i in range(history_days - 1, -1, -1))
    # The readers and the page build on this module's result types, so they are imported here.
    from mlscale.reports.health_attention import attention_items, mark_missing
    from mlscale.reports.health_html import render_health_html
    from mlscale.reports.health_models import (
        audit_rows,
        bias_reports,
        drift_rows,
        gate_decisions,
        registered_models,
        scoring_rows,
        training_rows,
    )
    from mlscale.reports.health_runs import flag_failures, flag_unaudited, task_failures
    from mlscale.reports.health_sources import (
        SourceReader,
        compaction_rows,
        feature_rows,
        ingestion_rows,
        lifecycle_rows,
    )

    th = thresholds or HealthThresholds()
    src = SourceReader(lake)
    pipelines: dict[str, list[PipelineDay]] = dict(ingestion_rows(src, days, datasets, th))
    pipelines["compact_lake"] = compaction_rows(src, days)
    pipelines["build_features"], freshness = feature_rows(src, days, feature_sets, th)
    bias, gates = bias_reports(src), gate_decisions(src, days[-1])
    models = registered_models(src, days[-1], days, bias, gates)
    pipelines["train_model"] = training_rows(models, days)
    pipelines["audit_bias"] = audit_rows(gates, models, days)
    pipelines["monitor_drift"], drift, performance = drift_rows(src, days, models, th)
    pipelines["score_batch"] = scoring_rows(src, days)
    pipelines["lifecycle_cleanup"], cost = lifecycle_rows(src, days)
    mark_missing(pipelines)
    flag_failures(pipelines, task_failures(src, days), days)
    flag_unaudited(pipelines, models, days[-1])
    attention = attention_items(pipelines, models, drift, performance, th, days[-1])
    for source in ("ingestion_runs", "compaction_runs", "feature_manifests", "models", "bias_reports",
                   "governance_audit", "drift_reports", "predictions", "lifecycle_audit", "cost_reports",
                   "task_failures"):
        src.note(source, 0)
    folder = f"{REPORTS_PREFIX}/{days[-1]}"
    report = HealthReport(
        dt=days[-1], days=days, pipelines={k: tuple(v) for k, v in pipelines.items()}, features=tuple(freshness),
        models=tuple(models), labelled_performance=tuple(performance), drift=tuple(drift), cost=cost,
        attention=tuple(attention), sources=dict(sorted(src.status.items())), thresholds=th,
        report_json=lake.uri(f"{folder}/report.json"), report_html=lake.uri(f"{folder}/report.html"))
    doc = report.as_dict()
    lake.write_bytes(f"{folder}/report.html", render_health_html(doc).encode())
    lake.write_json(f"{folder}/report.json", doc)
    logger.info("health report %s..%s: %d pipelines, %d attention items (%d critical); %s", days[0], days[-1],
                len(pipelines), len(attention), report.summary()["critical"], report.report_html)
    return report


__all__ = ["ATTENTION", "CRITICAL", "NO_DATA", "OK", "PIPELINES", "REPORTS_PREFIX", "WARNING", "AttentionItem",
           "FeatureFreshness", "HealthReport", "HealthThresholds", "PipelineDay", "build_health_report"]
