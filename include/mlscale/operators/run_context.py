"""What a task needs from its run: which day it is for, and who it is (run id, try)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any


class RunDayError(ValueError):
    """The run does not say which day it is for."""


def run_day(context: Mapping[str, Any]) -> str:
    """The day (``YYYY-MM-DD``) a run is for, never derived from the wall clock.

    In order: the ``dt`` param (a manual trigger from the UI), the run's partition key (partitioned
    assets and their backfills), the start of its data interval, its logical date.
    """
    params = context.get("params") or {}
    candidates: list[Any] = [params.get("dt")]
    dag_run = context.get("dag_run")
    candidates.append(getattr(dag_run, "partition_key", None))
    candidates.append(context.get("data_interval_start"))
    candidates.append(context.get("logical_date"))
    for value in candidates:
        if not value:
            continue
        if isinstance(value, dt.datetime):
            return value.date().isoformat()
        try:
            return dt.date.fromisoformat(str(value)[:10]).isoformat()
        except ValueError as exc:
            raise RunDayError(f"cannot read a day from {value!r}: use YYYY-MM-DD for the `dt` param") from exc
    raise RunDayError("this run has no partition key, data interval or logical date: trigger it with the `dt` param")
