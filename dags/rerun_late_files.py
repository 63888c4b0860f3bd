"""rerun_late_files: ingest again the days whose drops got files after they were committed.

Wiring only: the work is mlscale.airflow.tasks.late_files.
"""

from __future__ import annotations

from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import DAG, AssetAny, task
from mlscale.airflow.assets import late_files_asset
from mlscale.airflow.dag_defaults import DEFAULT_ARGS, START_DATE
from mlscale.layout import declared

DOC = """
### Rerun the days that got late files

A day's `ingest_<dataset>` run lists the files of the days before it (within the contract's dedupe window) that
landed after those days were committed, and its `flag_late_files` task updates the `late_files_<dataset>` asset
with them. This DAG runs on those events:

1. `plan` — one rerun per dataset and day the events name (the task log lists them);
2. `rerun_day` — triggers `ingest_<dataset>` for each with `dt` and `downstream` on: the rerun reads every file of
   the day, the late ones included, replaces the day's raw partition exactly (idempotent), and keys its raw event
   by the day, so compaction, features, scoring and monitoring run for it again.

Where the files were found, and when: the run log `_meta/ingestion_runs/dt=D/` of the day that found them
(`late_files`) and the `late_files_<dataset>` asset event. Triggered by hand it reruns nothing; there is nothing to
backfill here (a day is rerun by triggering `ingest_<dataset>` with `dt` and `downstream`, or by backfilling it).
"""

with DAG(
    dag_id="rerun_late_files",
    description="Ingest again the days whose drops got files after they were committed",
    schedule=AssetAny(*(late_files_asset(d) for d in declared("contracts"))),
    start_date=START_DATE,
    catchup=False,
    default_args=DEFAULT_ARGS,
    tags=["ingestion"],
    doc_md=DOC,
) as dag:

    @task
    def plan(**context) -> list[dict]:
        from mlscale.airflow.run_context import triggering_events
        from mlscale.airflow.tasks.late_files import late_reruns

        return late_reruns(triggering_events(context))

    TriggerDagRunOperator.partial(task_id="rerun_day", logical_date=None).expand_kwargs(plan())
