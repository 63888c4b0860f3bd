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

from mlscale.lake import Lake, parse_day
from mlscale.reports.health_attention import attention_items, mark_missing
from mlscale.reports.health_compute import compute_cost
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
from mlscale.reports.health_types import (  # noqa: F401 - the report's types, re-exported
    ATTENTION,
    CRITICAL,
    CRITICAL_FLAGS,
    DAILY,
    DRY_RUN,
    NO_DATA,
    OK,
    PIPELINES,
    REPORTS_PREFIX,
    WARNING,
    AttentionItem,
    FeatureFreshness,
    HealthReport,
    HealthThresholds,
    PipelineDay,
)

logger = logging.getLogger(__name__)


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
    compute = compute_cost(src, days)
    mark_missing(pipelines)
    flag_failures(pipelines, task_failures(src, days), days)
    flag_unaudited(pipelines, models, days[-1])
    attention = attention_items(pipelines, models, drift, performance, th, days[-1])
    for source in ("ingestion_runs", "compaction_runs", "feature_manifests", "models", "bias_reports",
                   "governance_audit", "drift_reports", "predictions", "lifecycle_audit", "cost_reports",
                   "task_failures", "resource_usage"):
        src.note(source, 0)
    folder = f"{REPORTS_PREFIX}/{days[-1]}"
    report = HealthReport(
        dt=days[-1], days=days, pipelines={k: tuple(v) for k, v in pipelines.items()}, features=tuple(freshness),
        models=tuple(models), labelled_performance=tuple(performance), drift=tuple(drift), cost=cost,
        attention=tuple(attention), sources=dict(sorted(src.status.items())), thresholds=th, compute_cost=compute,
        report_json=lake.uri(f"{folder}/report.json"), report_html=lake.uri(f"{folder}/report.html"))
    doc = report.as_dict()
    lake.write_bytes(f"{folder}/report.html", render_health_html(doc).encode())
    lake.write_json(f"{folder}/report.json", doc)
    logger.info("health report %s..%s: %d pipelines, %d attention items (%d critical); %s", days[0], days[-1],
                len(pipelines), len(attention), report.summary()["critical"], report.report_html)
    return report


__all__ = ["ATTENTION", "CRITICAL", "NO_DATA", "OK", "PIPELINES", "REPORTS_PREFIX", "WARNING", "AttentionItem",
           "FeatureFreshness", "HealthReport", "HealthThresholds", "PipelineDay", "build_health_report"]
