"""audit_bias: bias audit of the challenger → human approval where the tier needs it → promotion gate → model card."""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG, Param, task
from mlscale.airflow.assets import champion_asset, lake_asset
from mlscale.airflow.dag_defaults import DEFAULT_ARGS, START_DATE, day_param
from mlscale.airflow.fail_fast import fail_fast

DOC = """
### Audit a model and decide its promotion

Runs after every `train_model` run (the `models_registry` asset: it audits each version those runs registered,
and the gate checks drift against the day each was trained for) and on demand from the UI (`version` empty: the
current `challenger` of the `model` param's model, else of every declared model; `dt`: the day whose data the drift condition checks, default the day before the run).

0. `targets` — the versions to audit: the `version` param, else those the triggering asset events name (runs
   that finished while an earlier audit ran are batched into one run; each version is audited), else the
   challenger. Every following task is mapped over them (one task instance per version).
1. `audit` — scores the version's holdout, joins gender, age band and region (and gender×age band) from the
   customer snapshot through the access log (purpose `bias_audit`; never model features), and computes with
   fairlearn per group: selection rate, TPR, FPR, precision, PR-AUC with bootstrap intervals, the disparity
   figures and the four-fifths rule, at the thresholds of the model's risk tier
   (`include/policies/model_risk.yaml`). Groups below the minimum size are "insufficient data", not judged.
   Report: `reports/bias/<model>/<version>/report.html|json`; the verdict is tagged on the registry version.
2. `wait_for_approval` — for tiers that require it (high), waits (reschedule mode, `approval_timeout_hours`)
   for `_meta/approvals/<model>/<version>.json`, written by `mlscale approve --version N --by <name>`.
3. `promote` — the gate: metrics vs the champion within the tolerance, bias verdict `pass`, day `dt` not
   drifted from the last two weeks of the version's training period (judged like the daily monitor: thresholds
   from those days' own spread), and the approval. Only then `champion` moves. Every decision, passed
   or refused, goes to the version's tags and to `_meta/governance_audit/dt=D/`.
4. `model_card` — regenerates `reports/model_card/<model>/<version>.html` from the evidence.
5. `announce_champion` — when the gate promoted, updates the `models_champion` asset (model, version, previous
   champion): `deploy_model` rolls the version out to online scoring. Skipped otherwise.

No catch-up and no backfill: an audit is about a registered version, not a day. Re-run it by triggering
with `version` (idempotent: the report is rewritten, the decision appended to the audit log).
"""

with DAG(
    dag_id="audit_bias",
    description="Bias audit and promotion gate of the challenger",
    schedule=[lake_asset("models", "registry")],
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["governance", "models"],
    doc_md=DOC,
    params={
        "dt": day_param(),
        "model": Param("", type="string",
                       description="Model specification in include/models/ (empty: every declared model)"),
        "version": Param("", type="string", description="Registry version to audit (empty: the challenger)"),
        "approval_timeout_hours": Param(24, type="number", minimum=0,
                                        description="How long to wait for a required human approval"),
    },
) as dag:

    def _lake():
        from mlscale.airflow.hooks.lake_hook import LakeHook

        return LakeHook().get_lake()

    def platform():
        from mlscale.airflow.settings import platform

        return platform()

    @task(execution_timeout=dt.timedelta(minutes=5))
    @fail_fast
    def targets(params, **context) -> list[dict]:
        import logging

        from mlscale.airflow.run_context import audit_targets

        found = audit_targets({**context, "params": params})
        logging.getLogger(__name__).info("versions to audit: %s", ", ".join(
            f"{t['model']} {t['version'] or '(the challenger)'} (drift checked against {t['dt']})" for t in found))
        return found

    @task(execution_timeout=dt.timedelta(hours=1))
    @fail_fast
    def audit(target: dict, **context) -> dict:
        from mlscale.audit.access import Actor
        from mlscale.governance.audit_run import audit_model

        result = audit_model(lake=_lake(), dt=target["dt"], run_id=context["run_id"], model=target["model"],
                             version=target["version"], tracking_uri=platform().tracking_uri,
                             actor=Actor.from_context(context)).as_dict()
        return {**result, "dt": target["dt"]}

    @task.sensor(mode="reschedule", poke_interval=60, timeout=dt.timedelta(days=7), soft_fail=True)
    def wait_for_approval(audited: dict, params, **context) -> bool:
        from mlscale.governance.gate import approval_of
        from mlscale.governance.risk_policy import load_risk_policy

        if audited["verdict"] == "fail" or not load_risk_policy().tier_for(audited["model"]).promotion.requires_human_approval:
            return True  # nothing to approve: the gate records the refusal or promotes without approval
        if approval_of(_lake(), audited["model"], audited["version"]) is not None:
            return True
        started = context["ti"].start_date
        waited = (dt.datetime.now(dt.UTC) - started).total_seconds() / 3600 if started else 0
        return waited >= float(params["approval_timeout_hours"])  # then the gate records "pending_approval"

    @task(trigger_rule="none_failed", execution_timeout=dt.timedelta(hours=1))
    @fail_fast
    def promote(audited: dict, **context) -> dict:
        from mlscale.airflow.alerting import on_gate
        from mlscale.governance.gate import promote_model

        decision = promote_model(lake=_lake(), dt=audited["dt"], run_id=context["run_id"], model=audited["model"],
                                 version=audited["version"], tracking_uri=platform().tracking_uri,
                                 feast_root=platform().feast_root).as_dict()
        on_gate(decision)
        return {**decision, "dt": audited["dt"]}

    @task(trigger_rule="none_failed", execution_timeout=dt.timedelta(minutes=20))
    @fail_fast
    def model_card(decision: dict) -> str:
        import logging

        from mlscale.governance.model_card import write_model_card
        from mlscale.reports.catalog import report_url

        model, version = decision["model"], decision["version"]
        uri = write_model_card(_lake(), model, version)
        logging.getLogger(__name__).info("model card of %s version %s (gate: %s): %s (in the UI: %s)", model, version,
                                         decision.get("decision"), uri,
                                         report_url("model_card", f"{model}/{version}", f"{version}.html"))
        return uri

    @task(outlets=[champion_asset()], execution_timeout=dt.timedelta(minutes=5))
    @fail_fast
    def announce_champion(decision: dict, **context) -> dict:
        """Skipped (no asset event) unless the gate promoted: then deploy_model rolls the version out online."""
        from airflow.sdk.exceptions import AirflowSkipException
        from mlscale.governance.gate import PROMOTED

        if decision.get("decision") != PROMOTED:
            raise AirflowSkipException(f"{decision['model']} v{decision['version']}: {decision.get('decision')}, "
                                       "nothing to roll out")
        context["outlet_events"][champion_asset()].extra = {
            "model": decision["model"], "version": decision["version"],
            "previous": decision.get("champion_before"), "dt": decision["dt"]}
        return decision

    audited = audit.expand(target=targets())
    approved = wait_for_approval.expand(audited=audited)
    decisions = promote.expand(audited=audited)
    approved >> decisions
    model_card.expand(decision=decisions)
    announce_champion.expand(decision=decisions)
