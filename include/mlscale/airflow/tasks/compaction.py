"""Glue between the compact_lake DAG and :mod:`mlscale.compaction`: params in, plan summary out."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from mlscale.airflow.run_context import run_day
from mlscale.compaction import RUNS, plan_compaction
from mlscale.lake import Lake, parse_day
from mlscale.sizing import MB, ClusterResources, CompactionPolicy

logger = logging.getLogger(__name__)
SPARK_TASK = "compact"        # the SparkJobOperator's task: its usage records size the next job
HISTORY_DAYS = 30
SORT_BY = {"transactions": ["event_ts"], "labels": ["event_id"], "customers": ["customer_id"]}


def plan_for_run(lake: Lake, params: dict[str, Any], context: Any, cluster: ClusterResources) -> dict[str, Any]:
    if params.get("first_day") and params.get("last_day"):
        first, last = params["first_day"], params["last_day"]
    else:
        day = parse_day(run_day({**context, "params": params}))
        first, last = (day - dt.timedelta(days=int(params["lookback_days"]))).isoformat(), day.isoformat()
    policy = CompactionPolicy(target_file_bytes=int(params["target_file_mb"]) * MB,
                              max_files=int(params["max_files"]),
                              min_median_file_bytes=int(params["min_median_file_mb"]) * MB)
    from mlscale.usage.history import usage_history

    dag_id = getattr(context.get("dag"), "dag_id", "compact_lake")
    history = [r for r in usage_history(lake, last, HISTORY_DAYS) if (r.dag_id, r.task_id) == (dag_id, SPARK_TASK)]
    plan = plan_compaction(lake, zone=params["zone"], datasets=params["datasets"], first_day=first, last_day=last,
                           run_id=context["run_id"], policy=policy, cluster=cluster, sort_columns=SORT_BY,
                           history=history)
    summary = plan.as_dict()
    summary["days"] = [first, last]
    summary.pop("skipped")
    summary["partitions"] = [p["partition"] for p in summary["partitions"]]
    return summary


def log_results(lake: Lake, summary: dict[str, Any]) -> dict[str, Any]:
    """Before/after figures of this run's compactions, read back from ``_meta/compaction_runs``."""
    results = []
    for partition in summary["partitions"]:
        day = partition.split("/dt=")[1][:10]
        for stored in lake.list_files(f"{RUNS}/dt={day}"):
            record = lake.read_json(stored.key)
            if record["partition"] == partition and record["run_id"] == summary["run_id"]:
                results.append(record)
    for r in results:
        logger.info("%s: %d -> %d files, %.1f -> %.1f MB, %d rows", r["partition"], r["files_before"],
                    r["files_after"], r["bytes_before"] / MB, r["bytes_after"] / MB, r["rows"])
    totals = {"partitions": len(results), "files_before": sum(r["files_before"] for r in results),
              "files_after": sum(r["files_after"] for r in results)}
    logger.info("compaction of %s..%s: %s", *summary["days"], totals)
    return totals
