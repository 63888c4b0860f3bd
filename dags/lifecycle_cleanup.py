"""lifecycle_cleanup: retention, legal holds, lineage protection, cold tier, orphans, idle resources, cost report."""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG, CronTriggerTimetable, Param, task
from mlscale.airflow.dag_defaults import DEFAULT_ARGS, START_DATE, day_param

ZONES = ["landing", "raw", "quarantine", "features", "training", "predictions", "checkpoints", "models"]

DOC = """
### Storage lifecycle and cost

Runs daily at 03:30 UTC (off-peak) for the run's day D, driven by the policy in
`include/policies/retention.yaml` (validated on load: a contradiction fails the run naming the rule).

* `plan` pages through the lake and decides, by each partition's `dt=` day relative to D (never the wall
  clock): **retention** (partitions past `delete_after_days` are deleted through the manifest; landing
  drops by day; finished checkpoints; artifacts of model versions the registry deleted), **cold tier**
  (past `cold_after_days`: S3 objects tagged for the bucket lifecycle rules, or on a local lake moved to
  `cold/` with their manifest rewritten, so readers keep working), **orphans** (files no manifest lists,
  `_staging` leftovers, older than `grace_hours` by mtime) and **idle EC2/EBS resources**. Nothing under a
  **legal hold** (`include/policies/legal_holds.yaml`, `_meta/legal_holds/`, S3 Object Lock) or referenced
  by a registered model version (`_meta/lineage_refs/`) is ever deleted. The plan is stored at
  `_meta/lifecycle_plans/<run_id>.json`; its log lists counts per action and every skip with its reason.
* `apply` re-checks holds and lineage and applies the plan. **Dry run is the default for manual runs**:
  `dry_run` left empty means "apply only if this is the scheduled run"; set it to false to apply a manual
  run. Every action (planned, applied, skipped because of a hold, failed) is appended to the audit log
  `_meta/lifecycle_audit/dt=D/` with the rule that caused it.
* `cost_report` writes `reports/cost/D/report.json` and `report.html`: bytes and objects per
  zone/dataset/tier, the monthly cost estimate, what this run saved, top growth since the previous report,
  small-file counts (compaction hints) and idle resources.

`idle_resources` (default false) only reports idle volumes, stopped worker instances and old snapshots;
set it to true (and `dry_run` false) to delete/terminate the platform's own. Re-running a day is safe
(every action is idempotent). There is no catch-up: a backfill re-plans past days as if run then, e.g.
`airflow backfill create --dag-id lifecycle_cleanup --from-date 2026-11-01 --to-date 2026-11-03T23:59:59`
(backfill runs are dry runs unless triggered with `dry_run` false), or trigger with `dt` for one day.
"""

with DAG(
    dag_id="lifecycle_cleanup",
    description="Retention, legal holds, cold tier, orphans, idle resources and the storage cost report",
    schedule=CronTriggerTimetable("30 3 * * *", timezone="UTC"),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,  # one plan/apply at a time over the whole lake
    default_args=DEFAULT_ARGS,
    tags=["lifecycle", "storage", "cost"],
    doc_md=DOC,
    render_template_as_native_obj=True,
    params={
        "dry_run": Param(None, type=["null", "boolean"],
                         description="Plan only (true) or apply (false); empty = apply only on the scheduled run"),
        "dt": day_param(),
        "zones": Param(ZONES, type="array", items={"type": "string", "enum": ZONES},
                       description="Zones to manage this run (retention, cold tier, orphans)"),
        "idle_resources": Param(False, type="boolean",
                                description="Delete/terminate idle EC2/EBS resources of the platform "
                                            "(false: report them only)"),
        "grace_hours": Param(48, type="number", minimum=1,
                             description="Orphaned files younger than this (by mtime) are left alone"),
    },
) as dag:

    @task(execution_timeout=dt.timedelta(hours=1))
    def plan(params: dict, **context) -> dict:
        from mlscale.airflow.tasks.lifecycle import plan_for_run

        return plan_for_run(params, context)

    @task(execution_timeout=dt.timedelta(hours=2))
    def apply(summary: dict, **context) -> dict:
        from mlscale.airflow.tasks.lifecycle import apply_for_run

        return apply_for_run(summary, context)

    @task(trigger_rule="none_failed", execution_timeout=dt.timedelta(minutes=30))
    def cost_report(summary: dict, applied: dict | None) -> dict:
        from mlscale.airflow.tasks.lifecycle import cost_report_for_run

        return cost_report_for_run(summary, applied)

    summary = plan()
    cost_report(summary, apply(summary))
