"""monitor_drift: day D's model inputs and predictions vs the training reference → report → retrain signal."""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG, Param, PartitionedAssetTimetable, task
from mlscale.airflow.assets import lake_asset
from mlscale.airflow.dag_defaults import DEFAULT_ARGS, START_DATE, day_param
from mlscale.airflow.fail_fast import fail_fast

MODEL = "fraud_detector"
DRIFT_ALERT = lake_asset("monitoring", "drift_alert")

DOC = f"""
### Monitor drift

Runs for day D once the day's features are built (the `features_customer_activity` partition of D). Against the
training reference of the serving version (`champion`, else `challenger`) of `{MODEL}`:

* per-feature **PSI and KS** computed from profiles (histograms on the reference's bins and KLL sketches)
  of all of D's model inputs and **predictions** (the `score` column is critical: its drift alone alerts);
  the day's profile is stored, so comparisons never re-read rows;
* **Evidently's data drift report** on a bounded sample (`reports/drift/D/evidently.html`);
* **label-based performance** for D-5 (labels arrive late), and the **upstream ingestion quality** of D
  (quarantine rate, volume change) in the same report: `reports/drift/D/report.html|json`.

A drift verdict updates the `drift_alert` asset, which schedules `train_model` — unless `retrain_allowed` holds it
back: a drift-triggered retrain needs the last one to be `training.drift_retrain.cooldown_days` old and fewer than
`max_per_30_days` in the last 30 days (the model specification); each decision and its reasons go to the log and
`_meta/retrain_decisions/<model>/dt=D/`. Thresholds come from the model's
risk tier (`include/policies/model_risk.yaml`). Reruns rewrite the day's report; backfill:
`airflow backfill create --dag-id monitor_drift --from-date 2026-11-01 --to-date 2026-11-07T23:59:59`
(after features exist for those days), or trigger with `dt`.
"""

with DAG(
    dag_id="monitor_drift",
    description="Daily feature and prediction drift against the model's training reference",
    schedule=PartitionedAssetTimetable(assets=lake_asset("features", "customer_activity")),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["governance", "monitoring"],
    doc_md=DOC,
    params={"dt": day_param(), "model": Param(MODEL, type="string", description="Model to monitor")},
) as dag:

    @task(execution_timeout=dt.timedelta(hours=1))
    @fail_fast
    def check(params, **context) -> dict:
        from mlscale.airflow.hooks.lake_hook import LakeHook
        from mlscale.airflow.run_context import run_day
        from mlscale.airflow.settings import platform
        from mlscale.governance.monitor import monitor_drift

        return monitor_drift(lake=LakeHook().get_lake(), dt=run_day({**context, "params": params}),
                             run_id=context["run_id"], model=params["model"],
                             tracking_uri=platform().tracking_uri, feast_root=platform().feast_root).as_dict()

    @task.short_circuit(execution_timeout=dt.timedelta(minutes=5))
    @fail_fast
    def retrain_allowed(result: dict) -> bool:
        from mlscale.airflow.hooks.lake_hook import LakeHook
        from mlscale.governance.retrain_policy import decide_retrain
        from mlscale.training import load_model_spec

        settings = load_model_spec(result["model"]).training
        return decide_retrain(LakeHook().get_lake(), model=result["model"], dt_=result["dt"],
                              drift_detected=bool(result["drift_detected"]), drifted=list(result["drifted_features"]),
                              cooldown_days=settings.drift_retrain_cooldown_days,
                              budget=settings.drift_retrain_budget).retrain

    @task(outlets=[DRIFT_ALERT])
    def raise_drift_alert(result: dict, **context) -> dict:
        import logging

        context["outlet_events"][DRIFT_ALERT].extra = {"dt": result["dt"], "model": result["model"],
                                                       "version": result["version"],
                                                       "drifted": result["drifted_features"][:20]}
        logging.getLogger(__name__).warning("drift alert for %s v%s on %s: %s; train_model is scheduled",
                                            result["model"], result["version"], result["dt"],
                                            ", ".join(result["drifted_features"][:20]))
        return result

    result = check()
    retrain_allowed(result) >> raise_drift_alert(result)
