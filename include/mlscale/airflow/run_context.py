"""What a task needs from its run: which day it is for, and what triggered it.

One answer for every way a run can start — its cron, an asset event, a backfill, a manual trigger with or
without params — and never the wall clock.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from mlscale.errors import NotRetryable


class RunDayError(ValueError, NotRetryable):
    """The run does not say which day it is for."""


class NoModelError(ValueError, NotRetryable):
    """The run names no model and the configuration declares none."""


def _as_day(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    try:
        return dt.date.fromisoformat(str(value)[:10]).isoformat()
    except ValueError as exc:
        raise RunDayError(f"cannot read a day from {value!r}: use YYYY-MM-DD for the `dt` param") from exc


def triggering_events(context: Mapping[str, Any]) -> list[Any]:
    """The asset events that started this run, oldest first (empty for runs not started by an asset)."""
    accessor = context.get("triggering_asset_events") or {}
    try:
        groups = list(accessor.values())
    except (AttributeError, TypeError):
        return []
    events = [event for group in groups for event in (group or [])]
    return sorted(events, key=lambda e: getattr(e, "timestamp", None) or dt.datetime.min.replace(tzinfo=dt.UTC))


def triggering_extra(context: Mapping[str, Any]) -> dict[str, Any]:
    """The ``extra`` of the newest asset event that started this run (``{}`` when none did)."""
    events = triggering_events(context)
    return dict(getattr(events[-1], "extra", None) or {}) if events else {}


def _event_day(context: Mapping[str, Any]) -> str | None:
    for event in reversed(triggering_events(context)):
        key = getattr(event, "partition_key", None) or (getattr(event, "extra", None) or {}).get("dt")
        if key:
            return _as_day(key)
    return None


def run_day(context: Mapping[str, Any], *, days_before_logical_date: int = 0) -> str:
    """The day (``YYYY-MM-DD``) a run is for.

    In order:

    1. the ``dt`` param (a manual trigger from the UI or the CLI);
    2. the run's partition key (partitioned schedules, their backfills and partitioned asset events);
    3. the asset event that started the run: its partition key, else the ``dt`` in its ``extra``;
    4. the start of a data interval that has a length;
    5. the logical date, minus ``days_before_logical_date`` (1 for DAGs whose cron fires the day after the
       day they cover: a run fired on D+1, or backfilled with logical date D+1, is for D);
    6. for a manual run with no logical date: the day before it was triggered (the latest complete day).
    """
    params = context.get("params") or {}
    if params.get("dt"):
        return _as_day(params["dt"])
    dag_run = context.get("dag_run")
    partition_key = getattr(dag_run, "partition_key", None)
    if partition_key:
        return _as_day(partition_key)
    from_event = _event_day(context)
    if from_event:
        return from_event
    start, end = context.get("data_interval_start"), context.get("data_interval_end")
    if isinstance(start, dt.datetime) and isinstance(end, dt.datetime) and end > start:
        return start.date().isoformat()
    logical = context.get("logical_date") or getattr(dag_run, "logical_date", None)
    if logical:
        return (dt.date.fromisoformat(_as_day(logical)) - dt.timedelta(days=days_before_logical_date)).isoformat()
    run_after = getattr(dag_run, "run_after", None)
    if run_after:
        return (dt.date.fromisoformat(_as_day(run_after)) - dt.timedelta(days=1)).isoformat()
    raise RunDayError("this run has no dt param, partition key, triggering asset event, data interval, logical "
                      "date or trigger time: trigger it with the `dt` param")


def models_to_run(context: Mapping[str, Any]) -> list[str]:
    """The models a run works on: the ``model`` param; else those the triggering asset events name (a drift
    alert names its model); else every model declared in the configuration (``models/*.yaml``)."""
    from mlscale.layout import declared

    params = context.get("params") or {}
    if params.get("model"):
        return [str(params["model"])]
    named = [str(e.extra["model"]) for e in triggering_events(context) if (getattr(e, "extra", None) or {}).get("model")]
    if named:
        return list(dict.fromkeys(named))
    models = declared("models")
    if not models:
        from mlscale.layout import config_dir

        raise NoModelError(f"no model is declared: add a specification to {config_dir('models')}")
    return models


def audit_targets(context: Mapping[str, Any], *, days_before_logical_date: int = 1) -> list[dict[str, str]]:
    """The model versions a run should audit, each with the day its gate checks drift against.

    A ``version`` param names one (with the ``model`` param); else every version named by the asset events
    that started the run (training runs that finished while an earlier audit ran are batched into one run:
    each is audited), each with the day it was trained for; else the challenger (``version`` empty) of each
    model of :func:`models_to_run`, for the run's day.
    """
    params = context.get("params") or {}
    if not params.get("version"):
        found: dict[tuple[str, str], dict[str, str]] = {}
        for event in triggering_events(context):
            extra = getattr(event, "extra", None) or {}
            if extra.get("version"):
                model, version = str(extra.get("model") or params.get("model")), str(extra["version"])
                day = str(params.get("dt") or extra.get("dt") or run_day(context, days_before_logical_date=days_before_logical_date))
                found[(model, version)] = {"model": model, "version": version, "dt": _as_day(day)}
        if found:
            return list(found.values())
    day = run_day(context, days_before_logical_date=days_before_logical_date)
    return [{"model": model, "version": str(params.get("version") or ""), "dt": day} for model in models_to_run(context)]


def rollout_targets(context: Mapping[str, Any], current_champion: Any) -> list[dict[str, Any]]:
    """The versions a ``deploy_model`` run rolls out: the ``version`` param (with ``model``; the previous version
    is the param ``previous``, else the champion now, via ``current_champion(model)``), else each promotion the
    asset events that started the run announce (model, version, previous champion)."""
    params = context.get("params") or {}
    if params.get("version"):
        model, version = str(params.get("model") or ""), str(params["version"])
        if not model:
            raise RunDayError("deploy_model with a version needs the model param too")
        previous = str(params.get("previous") or "") or current_champion(model)
        return [{"model": model, "version": version, "previous": previous if previous != version else None,
                 "dt": run_day(context)}]
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for event in triggering_events(context):
        extra = getattr(event, "extra", None) or {}
        if extra.get("model") and extra.get("version"):
            found[(str(extra["model"]), str(extra["version"]))] = {
                "model": str(extra["model"]), "version": str(extra["version"]),
                "previous": str(extra["previous"]) if extra.get("previous") else None,
                "dt": _as_day(extra.get("dt") or run_day(context))}
    if not found:
        raise RunDayError("nothing to roll out: trigger deploy_model with the model and version params, or let "
                          "a promotion by audit_bias start it")
    return list(found.values())


def models_due(context: Mapping[str, Any], models: list[str], *, days_before_logical_date: int = 1) -> list[str]:
    """Of ``models``, those a run should retrain: all of them, unless the run is a plain scheduled one (no
    ``model`` param, no triggering asset event), which skips a model whose ``training.retrain_every_days``
    has not passed since its latest version (each decision is logged)."""
    import logging

    run_type = str(getattr(context.get("dag_run"), "run_type", "") or "")
    if "scheduled" not in run_type or (context.get("params") or {}).get("model") or triggering_events(context):
        return models
    from mlscale.airflow.hooks.lake_hook import LakeHook
    from mlscale.training.cadence import due_for_retrain
    from mlscale.training.spec import load_model_spec

    lake, day = LakeHook().get_lake(), run_day(context, days_before_logical_date=days_before_logical_date)
    due = []
    for model in models:
        yes, why = due_for_retrain(lake, load_model_spec(model), day)
        logging.getLogger(__name__).info("scheduled retrain of %s: %s (%s)", model, "due" if yes else "skipped", why)
        if yes:
            due.append(model)
    return due
