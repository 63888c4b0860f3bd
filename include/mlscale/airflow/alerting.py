"""When the DAGs alert someone, and what the alert says (delivered by :mod:`mlscale.airflow.notify`).

* a task failed after its last retry (:func:`mlscale.airflow.alerts.record_task_failure`) — critical;
* a run missed its ``DeadlineAlert`` (:func:`mlscale.airflow.alerts.log_missed_deadline`) — critical;
* a day's drift check found drift (``monitor_drift``) — warning, linking the drift report;
* a day's quarantined share is above the contract's ``max_quarantine_rate`` (``ingest_<dataset>``) — critical;
* the promotion gate refused a version (``audit_bias``) — warning, linking the model card;
* the health report finds a feature set stale on its day (``pipeline_health``) — critical.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mlscale.airflow.notify import report_link, run_url, send_alert, task_log_url
from mlscale.alerts import CRITICAL, WARNING, Alert


def _task_link(context: Mapping[str, Any]) -> str:
    ti = context.get("ti")
    run_id = str(context.get("run_id") or getattr(context.get("dag_run"), "run_id", ""))
    map_index = getattr(ti, "map_index", None)
    return task_log_url(str(getattr(ti, "dag_id", "")), run_id, str(getattr(ti, "task_id", "")),
                        -1 if map_index is None else int(map_index), int(getattr(ti, "try_number", 0) or 0))


def on_drift(result: Mapping[str, Any], dag_id: str = "monitor_drift") -> Alert | None:
    """``result``: a drift check (:class:`~mlscale.governance.monitor.DriftCheck` as a dict)."""
    if not result.get("drift_detected"):
        return None
    drifted = list(result.get("drifted_features") or [])
    verdicts = result.get("verdicts") or {}
    alert = Alert("drift", WARNING, dag_id, f"{result['model']} v{result['version']} {result['dt']}",
                  f"{len(drifted)} columns drifted ({', '.join(drifted[:5])}{', ...' if len(drifted) > 5 else ''}); "
                  f"data drift {verdicts.get('data_drift', '?')}, prediction drift "
                  f"{verdicts.get('prediction_drift', '?')}",
                  report_link("drift", f"{result['model']}/{result['dt']}"))
    send_alert(alert)
    return alert


def on_quarantine(result: Mapping[str, Any], limit: float, run_id: str) -> Alert | None:
    """``result``: an ingestion run (:class:`~mlscale.ingest.report.IngestionResult` as a dict) of ``run_id``."""
    rows_in = int(result.get("rows_in") or 0)
    quarantined = int(result.get("rows_quarantined") or 0)
    if result.get("dry_run") or not rows_in or quarantined / rows_in <= limit:  # a dry run pages nobody
        return None
    reasons = sorted((result.get("quarantine_by_reason") or {}).items(), key=lambda kv: -kv[1])[:3]
    alert = Alert("quarantine_rate", CRITICAL, f"ingest_{result['dataset']}", str(result["dt"]),
                  f"{quarantined / rows_in:.2%} of {rows_in} records quarantined (limit {limit:.2%}); top reasons "
                  f"{', '.join(f'{r} {n}' for r, n in reasons)}; rows in {result.get('quarantine_uri', '')}",
                  task_log_url(f"ingest_{result['dataset']}", run_id, "ingest"))
    send_alert(alert)
    return alert


def on_gate(decision: Mapping[str, Any], dag_id: str = "audit_bias") -> Alert | None:
    """``decision``: a gate decision (:class:`~mlscale.governance.gate.GateDecision` as a dict)."""
    if decision.get("decision") != "refused":
        return None
    model, version = decision["model"], decision["version"]
    alert = Alert("gate_refused", WARNING, dag_id, f"{model} v{version}",
                  f"refused: {'; '.join(decision.get('reasons') or [])}; champion stays "
                  f"{decision.get('champion_after') or 'unset'}",
                  report_link("model_card", f"{model}/{version}", f"{version}.html"))
    send_alert(alert)
    return alert


def on_health(attention: list[Mapping[str, Any]], day: str, dag_id: str = "pipeline_health") -> list[Alert]:
    """Critical ``stale_features`` items of the day's health report (:class:`~mlscale.reports.health.AttentionItem`
    as dicts)."""
    alerts = []
    for item in attention:
        if item.get("kind") == "stale_features" and item.get("severity") == CRITICAL:
            alert = Alert("stale_features", CRITICAL, dag_id, day, str(item.get("message", "")),
                          report_link("health", day))
            send_alert(alert)
            alerts.append(alert)
    return alerts


def on_task_failure(dag_id: str, day: str, error: str, context: Mapping[str, Any]) -> Alert:
    alert = Alert("task_failed", CRITICAL, dag_id, day, error, _task_link(context))
    send_alert(alert)
    return alert


def on_missed_deadline(dag_id: str, run_id: str, partition: str, what: str) -> Alert:
    alert = Alert("deadline_missed", CRITICAL, dag_id, partition,
                  f"run {run_id} is not finished by its deadline ({what}); readers see the previous day's data "
                  "until it completes", run_url(dag_id, run_id))
    send_alert(alert)
    return alert
