"""pipeline_health: one page per day connecting model quality to upstream pipeline health."""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG, CronTriggerTimetable, Param, task
from mlscale.airflow.assets import lake_asset
from mlscale.airflow.dag_defaults import DEFAULT_ARGS, START_DATE, day_param
from mlscale.airflow.fail_fast import fail_fast

DOC = """
### Pipeline health

Runs daily at 06:00 UTC for day D = the day before the run (or the `dt` param), after the night's ingestion,
features, drift monitoring and lifecycle runs. For every pipeline (`ingest_<dataset>`, `compact_lake`,
`build_features`, `train_model`, `audit_bias`, `monitor_drift`, `score_batch`, `lifecycle_cleanup`) and every
day of the last `history_days` days up to D it shows rows in/out, quarantine rate, duration, retries, feature
freshness (days the newest as-of table is behind), holdout PR-AUC per registered version and labelled PR-AUC
per day, the drift verdict per day and the monthly storage cost estimate, plus an **attention list**
(quarantine rate above 5%, stale features, failed feature validation, drift, a labelled PR-AUC drop, a failed
bias audit or refused promotion, retries, failed lifecycle actions, a daily pipeline with no run for D), each
with what the upstream pipelines recorded that day.

Reads (never writes): `_meta/ingestion_runs/`, `_meta/compaction_runs/`, the manifests of `features/`,
`quarantine/<set>_v<version>/`, `models/<model>/<version>/model.json`, `reports/training/`, `reports/bias/`,
`_meta/governance_audit/`, `reports/drift/`, the manifests of `predictions/`, `_meta/lifecycle_audit/`,
`reports/cost/`. A missing source shows as "no data", never as a failure.
Writes `reports/health/D/report.json` and `report.html` (Browse → Reports; the task log prints the link).

Task `economics_reports` writes, from the tasks' recorded resource use (`_meta/resource_usage/`) over the same
window, `reports/bottlenecks/D/` (each pipeline's time fitted as fixed + per-row + per-row-and-feature cost, the
stage that dominates, what doubling the volume would take, right-sizing advice, compute cost per day and per
model version) and `reports/retrain_cadence/<model>/D/` (labelled PR-AUC decay since training against the cost
of a retrain: the recommended interval, which `training.retrain_every_days` adopts).

Reruns rewrite the day's report from the lake as it is then. Backfill (each run reports the day before it):
`airflow backfill create --dag-id pipeline_health --from-date 2026-11-02 --to-date 2026-11-08T23:59:59`
reports 2026-11-01 … 2026-11-07; or trigger with `dt` for one day.
"""

with DAG(
    dag_id="pipeline_health",
    description="Daily pipeline health report: rows, quarantine, durations, retries, freshness, model quality, drift, cost",
    schedule=CronTriggerTimetable("0 6 * * *", timezone="UTC"),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["monitoring", "reports"],
    doc_md=DOC,
    params={
        "dt": day_param(),
        "history_days": Param(30, type="integer", minimum=1, maximum=366,
                              description="Days of history up to D the report covers"),
        "max_quarantine_rate": Param(0.05, type="number", minimum=0, maximum=1,
                                     description="Ingestion quarantine rate above which a day needs attention"),
    },
) as dag:

    @task(outlets=[lake_asset("reports", "health")], execution_timeout=dt.timedelta(minutes=30))
    @fail_fast
    def health_report(**context) -> dict:
        import logging

        from mlscale.airflow.alerting import on_health
        from mlscale.airflow.hooks.lake_hook import LakeHook
        from mlscale.airflow.run_context import run_day
        from mlscale.contracts import contract_names
        from mlscale.features.definitions import feature_set_names
        from mlscale.reports.catalog import report_url
        from mlscale.reports.health import HealthThresholds, build_health_report

        log = logging.getLogger(__name__)
        params = context["params"]
        day = run_day(context, days_before_logical_date=1)
        report = build_health_report(
            LakeHook().get_lake(), day, history_days=int(params["history_days"]),
            datasets=contract_names(), feature_sets=feature_set_names(),
            thresholds=HealthThresholds(max_quarantine_rate=float(params["max_quarantine_rate"])))
        for item in report.attention:
            log.warning("attention [%s] %s", item.severity, item.message)
        if not report.attention:
            log.info("nothing needs attention for %s", report.dt)
        on_health([item.as_dict() for item in report.attention], report.dt)
        url = report_url("health", report.dt)
        log.info("pipeline health report for %s: %s (%s)", report.dt, url, report.report_html)
        return {**report.summary(), "url": url}

    @task(execution_timeout=dt.timedelta(minutes=30))
    @fail_fast
    def economics_reports(**context) -> dict:
        """Bottlenecks and right-sizing over the window, and each declared model's retrain cadence."""
        from mlscale.airflow.hooks.lake_hook import LakeHook
        from mlscale.airflow.run_context import run_day
        from mlscale.governance.retrain_cadence import write_cadence_report
        from mlscale.layout import declared
        from mlscale.usage.history import usage_history
        from mlscale.usage.reports import write_bottleneck_report

        lake, day, days = LakeHook().get_lake(), run_day(context, days_before_logical_date=1), int(context["params"]["history_days"])
        records = usage_history(lake, day, days)   # read once for both reports
        bottlenecks = write_bottleneck_report(lake, day, days, records)
        cadence = {m: write_cadence_report(lake, m, day, records) for m in declared("models")}
        return {"dt": day, "bottlenecks": bottlenecks["report"],
                "within_stage_r2": bottlenecks["bottlenecks"]["within_stage_r2"],
                "retrain_every_days": {m: d["recommendation"]["interval_days"] for m, d in cadence.items()},
                "retrain_cadence": {m: d["report"] for m, d in cadence.items()}}

    health_report()
    economics_reports()
