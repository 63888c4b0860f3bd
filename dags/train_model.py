"""train_model: point-in-time training set → XGBoost/LightGBM on Dask (CPU or GPU) → evaluation → registry."""

from __future__ import annotations

import datetime as dt
import os

from airflow.sdk import (
    DAG,
    AssetOrTimeSchedule,
    AsyncCallback,
    CronTriggerTimetable,
    DeadlineAlert,
    DeadlineReference,
    Param,
    task,
)
from mlscale.airflow.assets import lake_asset
from mlscale.airflow.dag_defaults import DEFAULT_ARGS, START_DATE, day_param
from mlscale.airflow.devices import CONNECTIONS, DEVICES, POOLS, device_task_id
from mlscale.airflow.operators.dask_operator import DaskOperator

MODELS = lake_asset("models", "registry")
# off-peak retraining: Sundays 03:00 UTC unless the deployment sets MLSCALE_TRAIN_CRON
TRAIN_CRON = os.environ.get("MLSCALE_TRAIN_CRON", "0 3 * * 0")
DRIFT_ALERT = lake_asset("monitoring", "drift_alert")

DOC = f"""
### Train the declared models

Runs on the cron `{TRAIN_CRON}` (UTC, off-peak; set `MLSCALE_TRAIN_CRON` to change it) **and** whenever
`monitor_drift` raises the `drift_alert` asset. It trains the `model` param's model, else the model a drift
alert names, else **every model declared in `include/models/`** (one mapped `train` task per model; a new
specification there is trained on the next run, no code change). A scheduled run skips a model whose
`training.retrain_every_days` (the `retrain_cadence` report's recommendation, adopted) has not passed since its
latest version; the `train_requests` log says why. For day D (the `dt` param, else the day before
the run):

1. **training set** — labels reported before D+1 00:00 UTC joined to the events of the last `history_days`
   and, point in time, to the feature store (each event sees the feature tables published before it);
   split by event time into train / validation / holdout and committed to `training/<model>/dt=D/` with a
   manifest; its fingerprint (file checksums, feature-set versions, label cut-off) is the dataset's identity;
2. **sizing** — single-process on one worker or distributed, from the rows and the workers' memory (logged
   with its reasons);
3. **training** — task `train` (param `device` cpu: `dask_cpu_default`, pool `dask_cpu`) or `train_gpu` (gpu:
   `dask_gpu_default`, pool `dask_gpu`, XGBoost `device=cuda`; the other task is skipped): XGBoost
   (`xgboost.dask`, `DaskQuantileDMatrix`, hist)
   or LightGBM (`lightgbm.dask`), early stopping on the validation split, class weights by `class_weight`,
   a checkpoint to `checkpoints/<model>/<run>/` every N rounds: **a retry resumes from the last checkpoint**;
   a lost worker fails the attempt by the collective timeout instead of hanging;
4. **evaluation and registry** — PR-AUC, ROC-AUC, precision/recall at the review budget, Brier and the
   reliability curve on the holdout, compared with the current `champion` on the same rows; the version is
   registered in MLflow with lineage tags (dataset fingerprint, feature-set versions, code version, run id,
   params), copied to `models/<model>/<version>/`, and gets the alias **`challenger`**. Only the promotion
   gate (`audit_bias`) moves `champion`. Report: `reports/training/<model>/<version>/report.html`.

Each model (events, label, feature sets, settings) is declared in `include/models/<model>.yaml`. Every version
registered updates the `models_registry` asset (its extra names the model, version and day), which starts
`audit_bias`.
Rerun a day: trigger with `dt`; the training set is rebuilt identically (same fingerprint). There is no
catch-up (a model is trained for the latest day); to retrain as of past days, backfill:
`airflow backfill create --dag-id train_model --from-date 2026-11-01 --to-date 2026-11-01T23:59:59`
(each run trains as of the day before its logical date).
Roll back: point `champion` at an earlier version (README, "Roll back a model").
"""

with DAG(
    dag_id="train_model",
    description="Retrain the declared models on Dask (CPU/GPU) and register each as its challenger",
    schedule=AssetOrTimeSchedule(timetable=CronTriggerTimetable(TRAIN_CRON, timezone="UTC"), assets=DRIFT_ALERT),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["training", "models"],
    doc_md=DOC,
    render_template_as_native_obj=True,
    params={
        "dt": day_param(),
        "model": Param("", type="string",
                       description="Model specification in include/models/ (empty: every declared model)"),
        "algorithm": Param("xgboost", enum=["xgboost", "lightgbm"], description="Gradient boosting library"),
        "device": Param("cpu", enum=["cpu", "gpu"],
                        description="cpu: dask_cpu_default; gpu: dask_gpu_default (XGBoost device=cuda)"),
        "class_weight": Param("",
                              enum=["", "sqrt_scale_pos_weight", "scale_pos_weight", "downsample_negatives", "none"],
                              description="Class-imbalance strategy (empty: the model specification's "
                                          "training.class_weight; calibration is reported either way)"),
        "max_rounds": Param(None, type=["null", "integer"], minimum=1,
                            description="Boosting rounds at most (default: the model specification's)"),
        "mode": Param("auto", enum=["auto", "single", "distributed"],
                      description="auto: the sizing decision; or force single-process / distributed"),
    },
    deadline=DeadlineAlert(reference=DeadlineReference.DAGRUN_QUEUED_AT, interval=dt.timedelta(hours=6),
                           callback=AsyncCallback("mlscale.airflow.alerts.log_missed_deadline",
                                                  kwargs={"dag_id": "train_model", "what": "the retrained model"})),
) as dag:

    @task(execution_timeout=dt.timedelta(minutes=5))
    def train_requests(device: str, params, **context) -> list[dict]:
        """One set of training arguments per model this run trains, when the run's device is ``device``."""
        from mlscale.airflow.devices import on_device
        from mlscale.airflow.run_context import models_due, models_to_run

        context = {**context, "params": params}
        return on_device([{"model": model, "algorithm": params["algorithm"], "gpu": params["device"] == "gpu",
                           "class_weight": params["class_weight"], "max_rounds": params["max_rounds"],
                           "mode": params["mode"]} for model in models_due(context, models_to_run(context))],
                         params["device"], device)

    for device in DEVICES:  # train on dask_cpu_default (pool dask_cpu), train_gpu on dask_gpu_default (dask_gpu)
        DaskOperator.partial(
            task_id=device_task_id("train", device),
            python_callable="mlscale.training:train_model",
            dask_conn_id=CONNECTIONS[device],
            days_before_logical_date=1,  # the cron fires on D+1 for D; a drift alert names its day
            pool=POOLS[device],
            outlets=[MODELS],
            execution_timeout=dt.timedelta(hours=4),
        ).expand(op_kwargs=train_requests.override(task_id=device_task_id("train_requests", device))(device))
