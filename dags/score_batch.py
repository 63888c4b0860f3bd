"""score_batch: the champion scores day D's events on Dask; the challenger scores the same rows in shadow."""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG, Param, PartitionedAssetTimetable, task
from mlscale.airflow.assets import lake_asset
from mlscale.airflow.dag_defaults import DEFAULT_ARGS, START_DATE, day_param
from mlscale.airflow.devices import CONNECTIONS, DEVICES, POOLS, device_task_id
from mlscale.airflow.fail_fast import fail_fast
from mlscale.airflow.operators.dask_operator import DaskOperator

DOC = """
### Score a day

Runs for day D once the day's features are built (the `features_customer_activity` partition of D), for the
`model` param's model, else **every model declared in `include/models/`** (one mapped task per model).

1. `score` — on the Dask cluster (param `device` cpu: task `score` on `dask_cpu_default`, pool `dask_cpu`; gpu:
   task `score_gpu` on `dask_gpu_default`, pool `dask_gpu`, XGBoost predicting on the GPU), builds the model
   inputs of D's events (point-in-time features of the day before plus event features), scores each distinct
   input once (repeated entity rows share a score), with each model loaded **once per worker**. The `champion`
   decides (`decision` = score ≥ its threshold at the review budget, or the `threshold` param); the
   `challenger` scores the same rows in **shadow** (`role=shadow/`, never a decision). A `sample_rate` share
   of events (deterministic by event key) also gets its inputs logged in `predictions/<model>_features/dt=D/`.
   Writes `predictions/<model>/dt=D/` with a manifest naming its inputs (events, feature tables, model
   versions). **Idempotent**: a rerun with the same inputs and models recomputes nothing (`force` to redo).
2. `shadow_report` — agreement, score correlation, decisions that would change, and precision/recall of both
   models on the events whose labels have arrived: `reports/shadow/<model>/D/report.html`.

Backfill after features exist: `airflow backfill create --dag-id score_batch --from-date 2026-11-01
--to-date 2026-11-07T23:59:59`, or trigger with `dt`. No champion yet? The run fails naming how to promote one.
"""

with DAG(
    dag_id="score_batch",
    description="Daily batch scoring with the champion, the challenger in shadow",
    schedule=PartitionedAssetTimetable(assets=lake_asset("features", "customer_activity")),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["scoring", "models"],
    doc_md=DOC,
    render_template_as_native_obj=True,
    params={
        "dt": day_param(),
        "model": Param("", type="string",
                       description="Model specification in include/models/ (empty: every declared model)"),
        "device": Param("cpu", enum=["cpu", "gpu"], description="Dask connection: cpu or gpu workers"),
        "sample_rate": Param(0.01, type="number", minimum=0, maximum=1,
                             description="Share of events whose model inputs are logged"),
        "threshold": Param(None, type=["null", "number"], minimum=0, maximum=1,
                           description="Decision threshold (default: the champion's at the review budget)"),
        "force": Param(False, type="boolean", description="Recompute even when nothing changed"),
    },
) as dag:
    @task(execution_timeout=dt.timedelta(minutes=5))
    def models(params, **context) -> list[str]:
        from mlscale.airflow.run_context import models_to_run

        return models_to_run({**context, "params": params})

    @task(execution_timeout=dt.timedelta(minutes=5))
    def score_requests(model_names: list[str], device: str, params) -> list[dict]:
        from mlscale.airflow.devices import on_device

        return on_device([{"model": model, "sample_rate": params["sample_rate"], "threshold": params["threshold"],
                           "force": params["force"], "gpu": params["device"] == "gpu"} for model in model_names],
                         params["device"], device)

    @task(execution_timeout=dt.timedelta(minutes=30), trigger_rule="none_failed_min_one_success")
    @fail_fast
    def shadow_report(model: str, params, **context) -> dict:
        from mlscale.airflow.hooks.lake_hook import LakeHook
        from mlscale.airflow.run_context import run_day
        from mlscale.audit.access import Actor
        from mlscale.scoring import compare_shadow

        return compare_shadow(lake=LakeHook().get_lake(), dt=run_day({**context, "params": params}),
                              run_id=context["run_id"], model=model, actor=Actor.from_context(context)).as_dict()

    model_names = models()
    scores = [DaskOperator.partial(  # score on dask_cpu_default (pool dask_cpu), score_gpu on dask_gpu_default
        task_id=device_task_id("score", device),
        python_callable="mlscale.scoring:score_batch",
        dask_conn_id=CONNECTIONS[device],
        pool=POOLS[device],
        outlets=[lake_asset("predictions", "scores")],
        execution_timeout=dt.timedelta(hours=2),
    ).expand(op_kwargs=score_requests.override(task_id=device_task_id("score_requests", device))(model_names, device))
        for device in DEVICES]
    scores >> shadow_report.expand(model=model_names)
