"""compact_lake: merge small Parquet files per partition on Spark, verified, with an atomic manifest swap."""

from __future__ import annotations

import datetime as dt
import sys

from airflow.sdk import DAG, AssetAny, Param, PartitionedAssetTimetable, task
from mlscale.airflow.assets import lake_asset
from mlscale.airflow.dag_defaults import DEFAULT_ARGS, START_DATE, day_param
from mlscale.airflow.operators.spark_job import SparkJobOperator
from mlscale.layout import declared, spark_application

DATASETS = declared("contracts")
PLAN_KEY = "{{ ti.xcom_pull(task_ids='plan')['plan_key'] }}"
LAKE_ROOT = "{{ ti.xcom_pull(task_ids='plan')['lake_root'] }}"
SPARK_CONF = "{{ ti.xcom_pull(task_ids='plan')['spark_conf'] }}"

DOC = """
### Compact the lake

Runs after each ingestion (one run per day D, from the raw assets' partition key) and on demand. For the
days `D - lookback_days .. D` (or `first_day .. last_day`), the `plan` task reads each partition's manifest
and decides, with `mlscale.sizing`, which sub-partitions have too many or too small files, how many files
of `target_file_mb` they become, and the Spark settings for the job (all reasons are in its log).
`compact` runs `include/mlscale/spark_apps/compact_partitions.py` with `spark-submit` on `spark_default`: it reads the
files the manifests list, rewrites them sorted by event time, verifies rows and a content checksum, and
commits a new manifest (readers switch atomically; old files are removed). A failed verification keeps the
old partition. Before/after figures: `_meta/compaction_runs/dt=D/`. An already compact partition is a no-op,
so reruns and backfills are safe:
`airflow backfill create --dag-id compact_lake --from-date 2026-11-01 --to-date 2026-11-07T23:59:59`
(or trigger with `first_day`/`last_day`). `dry_run` plans only.
"""

with DAG(
    dag_id="compact_lake",
    description="Merge small files per partition on Spark (verified, atomic manifest swap)",
    schedule=PartitionedAssetTimetable(assets=AssetAny(*(lake_asset("raw", d) for d in DATASETS))),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["compaction", "spark", "storage"],
    doc_md=DOC,
    render_template_as_native_obj=True,
    params={
        "zone": Param("raw", type="string", enum=["raw", "features", "predictions"], description="Lake zone"),
        "datasets": Param(DATASETS, type="array", items={"type": "string"}, description="Tables of the zone"),
        "dt": day_param(),
        "lookback_days": Param(7, type="integer", minimum=0, maximum=365,
                               description="Also compact stragglers this many days before the run's day"),
        "first_day": Param(None, type=["null", "string"], format="date",
                           description="Explicit range start (overrides dt/lookback_days)"),
        "last_day": Param(None, type=["null", "string"], format="date", description="Explicit range end"),
        "target_file_mb": Param(128, type="integer", minimum=1, description="Target size of output files (MB)"),
        "max_files": Param(8, type="integer", minimum=1, description="More files than this in a sub-partition -> compact"),
        "min_median_file_mb": Param(32, type="integer", minimum=0, description="Median file below this (MB) -> compact"),
        "dry_run": Param(False, type="boolean", description="Plan and log only"),
    },
) as dag:

    @task(execution_timeout=dt.timedelta(minutes=30))
    def plan(params: dict, **context) -> dict:
        from mlscale.airflow.hooks.lake_hook import LakeHook
        from mlscale.airflow.hooks.spark_resources import cluster_resources
        from mlscale.airflow.tasks.compaction import plan_for_run

        return plan_for_run(LakeHook().get_lake(), params, context, cluster_resources("spark_default"))

    @task.short_circuit(execution_timeout=dt.timedelta(minutes=5))
    def anything_to_compact(summary: dict, params: dict) -> bool:
        return summary["to_compact"] > 0 and not params["dry_run"]

    compact = SparkJobOperator(
        task_id="compact",
        application=str(spark_application("compact_partitions")),
        conn_id="spark_default",
        application_args=["--plan", PLAN_KEY, "--lake", LAKE_ROOT],
        conf=SPARK_CONF,
        env_vars={"PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable},
        name="mlscale-compaction",
        pool="spark",
        execution_timeout=dt.timedelta(hours=2),
    )

    @task(trigger_rule="none_failed", execution_timeout=dt.timedelta(minutes=10))
    def report(summary: dict) -> dict:
        from mlscale.airflow.hooks.lake_hook import LakeHook
        from mlscale.airflow.tasks.compaction import log_results

        return log_results(LakeHook().get_lake(), summary)

    summary = plan()
    anything_to_compact(summary) >> compact >> report(summary)
