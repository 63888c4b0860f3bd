"""build_features: daily partials → rolling windows → validation → as-of feature tables, per feature set."""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG, AsyncCallback, DeadlineAlert, DeadlineReference, PartitionedAssetTimetable
from mlscale.airflow.assets import lake_asset
from mlscale.airflow.dag_defaults import DEFAULT_ARGS, START_DATE, day_param
from mlscale.airflow.operators.dask_operator import DaskOperator
from mlscale.layout import declared

FEATURE_SETS = declared("feature_repo")

DOC = """
### Build features

For drop day D (the `raw_transactions` partition key), for each feature set in `include/feature_repo/`:
1. recompute the **daily partials** (per entity: counts, sums, min/max, predicate counts, first event time,
   HyperLogLog registers, KLL quantile sketches) of the event days D-L..D from raw (L = the contract's
   lateness), so late events correct their own day; partials that changed are rewritten;
2. rebuild the **as-of tables** from the earliest changed day to D by merging partials over the 1/7/30/90-day
   windows (never re-reading raw history: the cost is flat in history length);
3. **validate** the as-of table of D (ranges, null rates, freshness, row-count change); a failure quarantines
   it under `quarantine/<set>_v<version>/dt=D/` and fails the task with the feature, rule and observed value.

4. **feature store**: publish the committed as-of tables of D-L..D+1 to `_feast/offline/`, register the Feast
   views and permissions, and materialise D into the online store (SQLite here, Redis in docker-compose);
   reruns are idempotent.

Writes `features/<set>_v<version>_partials/dt=E/`, `features/<set>_v<version>/dt=D/` (one row per entity,
`event_timestamp` = D+1 00:00 UTC). The version comes from the definition's content. Reruns and backfills are
idempotent: `airflow backfill create --dag-id build_features --from-date 2026-11-01 --to-date 2026-11-07T23:59:59`
(after the matching ingestion), or trigger with `dt`.
"""

with DAG(
    dag_id="build_features",
    description="Incremental rolling features with sketches, validated, per feature set",
    schedule=PartitionedAssetTimetable(assets=lake_asset("raw", "transactions")),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,  # as-of tables chain day to day (first-seen state)
    default_args=DEFAULT_ARGS,
    tags=["features"],
    doc_md=DOC,
    render_template_as_native_obj=True,
    params={"dt": day_param()},
    # freshness SLA: ingestion lands D at ~02:00 on D+1; features for D are due 4 hours after the run is queued
    deadline=DeadlineAlert(reference=DeadlineReference.DAGRUN_QUEUED_AT, interval=dt.timedelta(hours=4),
                           callback=AsyncCallback("mlscale.airflow.alerts.log_missed_deadline",
                                                  kwargs={"dag_id": "build_features",
                                                          "what": "feature tables for the day"})),
) as dag:
    builds = [
        DaskOperator(
            task_id=f"build_{feature_set}",
            python_callable="mlscale.features:build_features",
            op_kwargs={"feature_set": feature_set},
            dask_conn_id="dask_cpu_default",
            pool="dask_cpu",
            outlets=[lake_asset("features", feature_set)],
            execution_timeout=dt.timedelta(hours=1),
        )
        for feature_set in FEATURE_SETS
    ]
    # after every build (each validates D and fails instead of publishing): publish, register, materialise D
    builds >> DaskOperator(
        task_id="sync_feature_store",
        python_callable="mlscale.feature_store:sync_feature_store",
        op_kwargs={
            "feature_sets": FEATURE_SETS,
        },
        dask_conn_id="dask_cpu_default",
        outlets=[lake_asset("feature_store", "mlscale")],
        execution_timeout=dt.timedelta(minutes=30),
    )
