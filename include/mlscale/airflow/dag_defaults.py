"""Defaults every mlscale DAG shares: ownership, retries, timeouts and the daily partition schedule.

Imported by DAG files, so it stays light (no pandas, dask or pyarrow here).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from airflow.sdk import CronPartitionTimetable, Param

from mlscale.airflow.alerts import record_task_failure

OWNER = "ml-platform"
START_DATE = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)

DEFAULT_ARGS: dict[str, Any] = {
    "owner": OWNER,
    "retries": 2,
    "retry_delay": dt.timedelta(minutes=2),
    "retry_exponential_backoff": True,
    "execution_timeout": dt.timedelta(hours=2),
    # every failed task is logged loudly and recorded for pipeline_health (_meta/task_failures/)
    "on_failure_callback": record_task_failure,
}


def daily_partitions(cron: str = "0 2 * * *") -> CronPartitionTimetable:
    """One run per day D, fired at ``cron`` on D+1, with partition key ``YYYY-MM-DD`` = D."""
    return CronPartitionTimetable(cron, timezone="UTC", run_offset=-1, key_format="%Y-%m-%d")


def day_param() -> Param:
    return Param(None, type=["null", "string"], format="date", title="Day (manual runs)",
                 description="YYYY-MM-DD to process when triggering by hand; scheduled and backfill runs "
                             "use their partition key.")
