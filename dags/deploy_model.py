"""deploy_model: roll a promoted version out to online scoring — canary, live checks, then full or rollback."""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG, Param, task
from mlscale.airflow.assets import champion_asset
from mlscale.airflow.dag_defaults import DEFAULT_ARGS, START_DATE, day_param
from mlscale.airflow.fail_fast import fail_fast

DOC = """
### Roll a version out to online scoring

Runs when `audit_bias` promotes a version (the `models_champion` asset), or on demand (`model` and `version`;
`previous`: the version it replaces, default the champion now). `mlscale serve` re-reads the rollout record
every `refresh_s` seconds, so each step reaches the service without a restart.

1. `start_canary` — writes `_meta/serving/<model>/rollout.json`: the new version answers `canary_share` of the
   traffic (sticky by customer) while the previous one keeps deciding the rest. No previous version: full at once.
2. `watch_canary` — every minute (reschedule mode), reads the service's response log since the canary started:
   the canary's p99 latency against the model's SLO (`serving.latency_slo_p99_ms`) and its share of fallback
   answers against `max_fallback_rate` (and the previous version's). Done at the first breach, or once
   `window_minutes` passed with at least `min_answers` canary answers (at most 4 windows without traffic).
3. `finish_rollout` — healthy: the version serves all traffic (stage `full`). Breach: the registry's champion
   goes back to the previous version (a rollback recorded like a gate decision) and the stage is `rolled_back`.

Every step is appended to `_meta/governance_audit/dt=D/`. No backfill: a rollout is about a version, not a day.
"""

with DAG(
    dag_id="deploy_model",
    description="Canary rollout of a promoted version to online scoring, with rollback",
    schedule=[champion_asset()],
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["serving", "models"],
    doc_md=DOC,
    params={
        "dt": day_param(),
        "model": Param("", type="string", description="Model specification in include/models/ (with version)"),
        "version": Param("", type="string", description="Registry version to roll out (empty: the promoted one)"),
        "previous": Param("", type="string", description="The version it replaces (empty: the champion now)"),
        "canary_share": Param(0.1, type="number", minimum=0.01, maximum=1, description="Canary's share of traffic"),
        "window_minutes": Param(30, type="number", minimum=0, description="How long the canary is watched"),
        "min_answers": Param(200, type="integer", minimum=0, description="Canary answers needed for a verdict"),
        "max_fallback_rate": Param(0.01, type="number", minimum=0, maximum=1,
                                   description="Largest share of fallback answers the canary may give"),
    },
) as dag:

    def _lake():
        from mlscale.airflow.hooks.lake_hook import LakeHook

        return LakeHook().get_lake()

    def _tracking_uri() -> str:
        from mlscale.airflow.settings import platform

        return platform().tracking_uri

    @task(execution_timeout=dt.timedelta(minutes=5))
    @fail_fast
    def targets(params, **context) -> list[dict]:
        from mlscale.airflow.run_context import rollout_targets
        from mlscale.training import registry

        client = registry.client_for(registry.RegistryConfig.for_lake(_lake(), _tracking_uri()))
        return rollout_targets({**context, "params": params},
                               lambda model: registry.alias_version(client, model, registry.CHAMPION))

    @task(execution_timeout=dt.timedelta(minutes=5))
    @fail_fast
    def start_canary(target: dict, params, **context) -> dict:
        from mlscale.serving.deploy import start_canary as start

        rollout = start(_lake(), model=target["model"], version=target["version"], previous=target["previous"],
                        share=float(params["canary_share"]), by=f"deploy_model {context['run_id']}",
                        day=target["dt"], run_id=context["run_id"])
        return {**target, "rollout": rollout.as_dict()}

    @task.sensor(mode="reschedule", poke_interval=60, timeout=dt.timedelta(days=2))
    def watch_canary(started: dict, params, **context):
        from airflow.sdk import PokeReturnValue
        from mlscale.serving.deploy import BREACH, HEALTHY, canary_health
        from mlscale.serving.rollout import Rollout
        from mlscale.training import load_model_spec

        rollout = Rollout(**started["rollout"])
        if rollout.stage != "canary":
            return PokeReturnValue(is_done=True, xcom_value={**started, "health": None})
        health = canary_health(_lake(), model=started["model"], rollout=rollout,
                               slo_p99_ms=load_model_spec(started["model"]).serving.latency_slo_p99_ms,
                               max_fallback_rate=float(params["max_fallback_rate"]),
                               min_answers=int(params["min_answers"]))
        waited = (dt.datetime.now(dt.UTC) - dt.datetime.fromisoformat(rollout.updated_at)).total_seconds() / 60
        window = float(params["window_minutes"])
        done = (health.verdict == BREACH or (health.verdict == HEALTHY and waited >= window)
                or waited >= 4 * max(window, 1))
        import logging

        logging.getLogger(__name__).info("canary %s v%s after %.1f min: %s (%s); %d canary answers, p99 %s ms",
                                         started["model"], started["version"], waited, health.verdict,
                                         "; ".join(health.reasons) or "ok", health.canary_answers,
                                         health.canary_p99_ms)
        return PokeReturnValue(is_done=done, xcom_value={**started, "health": health.as_dict()})

    @task(execution_timeout=dt.timedelta(minutes=10))
    @fail_fast
    def finish_rollout(watched: dict, **context) -> dict:
        from mlscale.serving.deploy import CanaryHealth
        from mlscale.serving.deploy import finish_rollout as finish

        if watched["health"] is None:
            return watched["rollout"]
        health = CanaryHealth(**{**watched["health"], "reasons": tuple(watched["health"]["reasons"])})
        return finish(_lake(), model=watched["model"], health=health, by=f"deploy_model {context['run_id']}",
                      day=watched["dt"], run_id=context["run_id"], tracking_uri=_tracking_uri()).as_dict()

    finish_rollout.expand(watched=watch_canary.expand(started=start_canary.expand(target=targets())))
