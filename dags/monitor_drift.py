"""monitor_drift: day D's model inputs and predictions vs a rolling reference of recent days → report → retrain signal."""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG, Param, PartitionedAssetTimetable, task
from mlscale.airflow.assets import lake_asset
from mlscale.airflow.dag_defaults import DEFAULT_ARGS, START_DATE, day_param
from mlscale.airflow.fail_fast import fail_fast

DRIFT_ALERT = lake_asset("monitoring", "drift_alert")

DOC = """
### Monitor drift

Runs for day D once the day's features are built (the `features_customer_activity` partition of D), for the
serving version (`champion`, else `challenger`) of the `model` param's model, else of **every model declared in
`include/models/`** (one mapped task per model). Three separate verdicts:

* **data drift** — every model input of D against a **rolling reference** of the 14 days before it (days that
  drifted themselves are skipped), PSI and KS from KLL sketches of all rows, with per-column thresholds learnt
  from the reference days' own day-to-day variability; entity features once per entity; windowed features
  `warming_up` until the reference has their window's history; `days_since_first_seen` left out (it rises by
  construction). Day profiles are kept (`_meta/drift_profiles/`), so comparisons never re-read old rows;
* **prediction drift** — the `score`, likewise (its drift alone alerts);
* **labelled performance** — D-5 (labels arrive late) against the version's holdout PR-AUC.

Beside them: the distance from the training reference (what the promotion gate checks), **Evidently's** report on
a bounded sample and the **upstream ingestion quality** of D: `reports/drift/<model>/D/report.html|json`.

Data or prediction drift updates the `drift_alert` asset, which schedules `train_model` — unless the retrain
policy holds it back (`raise_drift_alert` is then skipped): a drift-triggered retrain needs the last one to be
`training.drift_retrain.cooldown_days` old and fewer than `max_per_30_days` in the last 30 days (the model
specification); each decision and its reasons go to the log and `_meta/retrain_decisions/<model>/dt=D/`. The
monitor's settings are the risk tier's `drift.monitor` (`include/policies/model_risk.yaml`). Reruns rewrite the
day's report; backfill in day order (each day's reference skips the days before it that drifted):
`airflow backfill create --dag-id monitor_drift --from-date 2026-11-01 --to-date 2026-11-07T23:59:59`
(after features exist for those days), or trigger with `dt`.
"""

with DAG(
    dag_id="monitor_drift",
    description="Daily data drift, prediction drift and labelled performance of the declared models",
    schedule=PartitionedAssetTimetable(assets=lake_asset("features", "customer_activity")),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["governance", "monitoring"],
    doc_md=DOC,
    params={"dt": day_param(), "model": Param("", type="string",
                                              description="Model to monitor (empty: every declared model)")},
) as dag:

    @task(execution_timeout=dt.timedelta(minutes=5))
    def models(params, **context) -> list[str]:
        from mlscale.airflow.run_context import models_to_run

        return models_to_run({**context, "params": params})

    @task(execution_timeout=dt.timedelta(hours=1))
    @fail_fast
    def check(model: str, params, **context) -> dict:
        from mlscale.airflow.alerting import on_drift
        from mlscale.airflow.hooks.lake_hook import LakeHook
        from mlscale.airflow.run_context import run_day
        from mlscale.airflow.settings import platform
        from mlscale.governance.monitor import monitor_drift

        result = monitor_drift(lake=LakeHook().get_lake(), dt=run_day({**context, "params": params}),
                               run_id=context["run_id"], model=model,
                               tracking_uri=platform().tracking_uri, feast_root=platform().feast_root).as_dict()
        on_drift(result)
        return result

    @task(outlets=[DRIFT_ALERT], execution_timeout=dt.timedelta(minutes=5))
    @fail_fast
    def raise_drift_alert(result: dict, **context) -> dict:
        """Skipped (no asset event) unless the day drifted and the model's retrain policy allows a retrain."""
        import logging

        from airflow.sdk.exceptions import AirflowSkipException
        from mlscale.airflow.hooks.lake_hook import LakeHook
        from mlscale.governance.retrain_policy import decide_retrain
        from mlscale.training import load_model_spec

        settings = load_model_spec(result["model"]).training
        decision = decide_retrain(LakeHook().get_lake(), model=result["model"], dt_=result["dt"],
                                  drift_detected=bool(result["drift_detected"]),
                                  drifted=list(result["drifted_features"]),
                                  cooldown_days=settings.drift_retrain_cooldown_days,
                                  budget=settings.drift_retrain_budget)
        if not decision.retrain:
            raise AirflowSkipException(f"no drift retrain for {result['model']} on {result['dt']}: "
                                       f"{'; '.join(decision.reasons) or 'no drift'}")
        context["outlet_events"][DRIFT_ALERT].extra = {"dt": result["dt"], "model": result["model"],
                                                       "version": result["version"],
                                                       "drifted": result["drifted_features"][:20]}
        logging.getLogger(__name__).warning("drift alert for %s v%s on %s: %s; train_model is scheduled",
                                            result["model"], result["version"], result["dt"],
                                            ", ".join(result["drifted_features"][:20]))
        return result

    raise_drift_alert.expand(result=check.expand(model=models()))
