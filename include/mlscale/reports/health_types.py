"""The health report's vocabulary: pipelines, statuses, flags, thresholds and the row, item and report types.

Shared by the report's builder (:mod:`mlscale.reports.health`), its source readers and its attention rules,
so none of them needs to import another to know the types.
"""


from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from mlscale.layout import report_prefix

REPORTS_PREFIX = report_prefix("health")

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
    compute_cost: dict[str, Any] = field(default_factory=dict)   #: recorded compute (health_compute)

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
            "drift": list(self.drift), "cost": self.cost, "compute_cost": self.compute_cost, "sources": self.sources,
            "report_json": self.report_json, "report_html": self.report_html,
        }

    def summary(self) -> dict[str, Any]:
        """A small dict for XCom and the task log."""
        return {"dt": self.dt, "history_days": self.history_days, "report": self.report_html,
                "attention": len(self.attention),
                "critical": sum(1 for a in self.attention if a.severity == CRITICAL)}


