"""Callbacks: missed deadlines (run by the triggerer) and failed tasks: say loudly what broke and where to look,
and alert the people the deployment names (:mod:`mlscale.airflow.alerting`)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

logger = logging.getLogger("mlscale.alerts")


async def log_missed_deadline(context: dict[str, Any] | None = None, **kwargs: Any) -> None:
    """Log a missed freshness deadline with the DAG, run and what consumers should expect."""
    context = context or {}
    dag_run = context.get("dag_run")
    dag_id = str(kwargs.get("dag_id") or getattr(dag_run, "dag_id", "?"))
    run_id, partition = str(getattr(dag_run, "run_id", "?")), str(getattr(dag_run, "partition_key", None) or "?")
    logger.error("DEADLINE MISSED: %s run %s (partition %s) is not finished by its deadline: %s. Downstream "
                 "readers see the previous day's data until it completes; check the run's task logs.",
                 dag_id, run_id, partition, kwargs.get("what", "data"))
    try:
        from mlscale.airflow.alerting import on_missed_deadline

        await asyncio.to_thread(on_missed_deadline, dag_id, run_id, partition, str(kwargs.get("what", "data")))
    except Exception as exc:  # noqa: BLE001 - alerting must not break the callback
        logger.warning("the missed deadline could not be alerted (%s: %s)", type(exc).__name__, exc)


def record_task_failure(context: dict[str, Any]) -> None:
    """Failure callback of every mlscale task: log the failure and record it for the pipeline health report.

    The record goes to ``_meta/task_failures/dt=<day>/`` (one JSON object per failed try that will not be
    retried), so ``pipeline_health`` can flag failed runs without reading Airflow's database. A record that
    cannot be written (the lake itself is what failed) is logged and skipped: the callback never raises.
    """
    from mlscale.airflow.run_context import RunDayError, run_day
    from mlscale.reports.failures import TaskFailure, record_failure

    ti, dag_run = context.get("ti"), context.get("dag_run")
    try:
        day = run_day(context)
    except RunDayError:
        when = getattr(dag_run, "run_after", None)
        day = when.date().isoformat() if when else "unknown"
    exception = context.get("exception")
    failure = TaskFailure(dag_id=str(getattr(ti, "dag_id", "?")), task_id=str(getattr(ti, "task_id", "?")),
                          run_id=str(context.get("run_id") or getattr(dag_run, "run_id", "?")),
                          run_type=str(getattr(dag_run, "run_type", "") or ""), day=day,
                          try_number=int(getattr(ti, "try_number", 0) or 0),
                          error=f"{type(exception).__name__}: {exception}" if exception else "unknown error")
    logger.error("TASK FAILED: %s.%s run %s (day %s, try %d): %s", failure.dag_id, failure.task_id, failure.run_id,
                 failure.day, failure.try_number, failure.error)
    try:
        from mlscale.airflow.hooks.lake_hook import LakeHook

        record_failure(LakeHook().get_lake(), failure)
    except Exception as exc:  # the lake may be what failed: never mask the task's own error
        logger.warning("could not record the failure in the lake (%s: %s)", type(exc).__name__, exc)
    try:
        from mlscale.airflow.alerting import on_task_failure

        on_task_failure(failure.dag_id, failure.day, f"{failure.task_id} (try {failure.try_number}): {failure.error}",
                        context)
    except Exception as exc:  # noqa: BLE001 - alerting must not mask the task's own error
        logger.warning("the failure could not be alerted (%s: %s)", type(exc).__name__, exc)
