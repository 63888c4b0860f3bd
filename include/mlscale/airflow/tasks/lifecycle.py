"""Glue between the lifecycle_cleanup DAG and :mod:`mlscale.lifecycle`: params and run context in, small dicts out.

* **Dry run by default unless scheduled**: the ``dry_run`` param is ``None`` by default, which means
  "apply only if this run is a scheduled one" (``dag_run.run_type == "scheduled"``); manual triggers,
  backfills and ``airflow dags test`` only plan, unless ``dry_run`` is set to false explicitly.
* **The run's day and logical time** come from the run (``dt`` param, logical date, ``run_after``), never
  from the wall clock. A ``dt`` after the day the run was triggered is refused: it would expire data early.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from typing import Any

from mlscale.airflow.aws import AWS_CONN_ID
from mlscale.airflow.run_context import RunDayError, run_day
from mlscale.errors import NotRetryable
from mlscale.lake import Lake, parse_day
from mlscale.lifecycle.run import DEFAULT_ZONES

logger = logging.getLogger(__name__)



class LifecycleParamError(ValueError, NotRetryable):
    """A trigger param of lifecycle_cleanup cannot be used; the message says which and why."""


def _value(x: Any) -> str:
    return str(getattr(x, "value", x) or "")


def is_scheduled(context: Mapping[str, Any]) -> bool:
    return _value(getattr(context.get("dag_run"), "run_type", None)) == "scheduled"


def resolve_dry_run(param: Any, context: Mapping[str, Any]) -> bool:
    """``dry_run`` param None → dry run unless the run is scheduled; True/False → as given."""
    if param is None or param == "":
        dry = not is_scheduled(context)
        logger.info("dry_run not set: %s run -> %s", _value(getattr(context.get("dag_run"), "run_type", None))
                    or "unknown", "dry run (plan only)" if dry else "apply")
        return dry
    if isinstance(param, str):
        return param.strip().lower() not in ("false", "0", "no")
    return bool(param)


def _aware(value: Any) -> dt.datetime | None:
    if not value:
        return None
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    return None


def run_times(context: Mapping[str, Any]) -> tuple[dt.date, dt.datetime]:
    """(the run's day, the run's logical time) for retention ages and orphan grace periods.

    The logical time is the earliest of the logical date, ``run_after`` and (with a ``dt`` param) the end
    of that day, so a manual run for an earlier day never removes younger orphans.
    """
    dag_run = context.get("dag_run")
    run_after = _aware(getattr(dag_run, "run_after", None))
    logical = _aware(context.get("logical_date") or getattr(dag_run, "logical_date", None))
    try:
        day = parse_day(run_day(context))
    except RunDayError:
        if run_after is None:
            raise
        day = run_after.date()
    params = context.get("params") or {}
    if params.get("dt") and run_after is not None and day > run_after.date():
        raise LifecycleParamError(f"dt {day} is after the day this run was triggered ({run_after.date()}): "
                                  "retention would expire data early; use a day up to today")
    end_of_day = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), dt.UTC)
    candidates = [t for t in (logical, run_after) if t is not None]
    if params.get("dt") or not candidates:
        candidates.append(end_of_day)
    return day, min(candidates)


def _lake() -> Lake:
    from mlscale.airflow.hooks.lake_hook import LakeHook

    return LakeHook().get_lake()


def ec2_client(conn_id: str = AWS_CONN_ID) -> tuple[Any, str]:
    """(an EC2 client from the Airflow connection, "") or (None, why not).

    Credentials: the connection's login/password, else boto3's default chain; the endpoint is
    ``extra.ec2_endpoint_url`` (moto, LocalStack) or AWS's own (``extra.endpoint_url`` is S3/MinIO's).
    """
    from mlscale.airflow.aws import aws_connection, s3_options
    from mlscale.lifecycle.listing import aws_client

    conn = aws_connection(conn_id)
    if conn is None:
        return None, f"connection {conn_id} is not defined"
    if not conn.login:
        import boto3

        if boto3.Session().get_credentials() is None:
            return None, f"connection {conn_id} has no credentials and none are in the environment"
    options = s3_options(conn_id, service="ec2")
    return aws_client("ec2", options), ""


def idle_for_run(policy: Any, logical_time: dt.datetime, act: bool, ec2: Any = None) -> tuple[list[Any], str]:
    """Idle-resource actions (``planned`` only when ``act``), or ([], why the check did not run)."""
    from botocore.exceptions import BotoCoreError, ClientError

    from mlscale.lifecycle.idle import find_idle, idle_actions

    why = ""
    if ec2 is None:
        ec2, why = ec2_client()
    if ec2 is None:
        if act:
            raise LifecycleParamError(f"idle_resources is true but no EC2 access: {why}")
        logger.info("idle-resource check skipped: %s", why)
        return [], why
    try:
        found = find_idle(ec2, now=logical_time, policy=policy.idle, prices=policy.prices)
    except (BotoCoreError, ClientError) as exc:
        if act:
            raise
        logger.warning("idle-resource check failed (report only, so the run goes on): %s", exc)
        return [], f"check failed: {exc}"
    return idle_actions(found, act=act), ""


def plan_for_run(params: Mapping[str, Any], context: Mapping[str, Any], *, lake: Lake | None = None,
                 ec2: Any = None) -> dict[str, Any]:
    """The plan task: build and store the plan, audit it, return its summary for XCom."""
    from mlscale.lifecycle import load_policy
    from mlscale.lifecycle.run import plan_lifecycle

    lake = lake or _lake()
    day, logical = run_times(context)
    dry_run = resolve_dry_run(params.get("dry_run"), context)
    policy = load_policy()
    idle, idle_note = idle_for_run(policy, logical, bool(params.get("idle_resources")), ec2)
    grace = params.get("grace_hours")
    summary = plan_lifecycle(lake, run_id=context["run_id"], day=day, logical_time=logical, dry_run=dry_run,
                             zones=list(params.get("zones") or DEFAULT_ZONES),
                             grace_hours=None if grace is None else float(grace), extra_actions=idle, policy=policy)
    summary["idle_note"] = idle_note
    return summary


def apply_for_run(summary: Mapping[str, Any], context: Mapping[str, Any], *, lake: Lake | None = None,
                  ec2: Any = None) -> dict[str, Any]:
    """The apply task: skipped in a dry run; otherwise apply the stored plan (holds re-read first)."""
    from airflow.sdk.exceptions import AirflowSkipException

    from mlscale.lifecycle.run import apply_lifecycle

    if summary["dry_run"]:
        raise AirflowSkipException("dry run: the plan is in the plan task's log and at "
                                   f"{summary['plan_key']}; trigger with dry_run=false to apply it")
    lake = lake or _lake()
    plan = lake.read_json(summary["plan_key"])
    if any(a["status"] == "planned" and a["rule"] == "idle-resources" for a in plan["actions"]) and ec2 is None:
        ec2, _ = ec2_client()
    from mlscale.airflow.settings import platform

    return apply_lifecycle(lake, summary, ec2=ec2, feast_root=platform().feast_root or None)


def cost_report_for_run(summary: Mapping[str, Any], applied: Mapping[str, Any] | None, *,
                        lake: Lake | None = None) -> dict[str, Any]:
    """The cost_report task: ``reports/cost/<day>/`` (JSON and HTML)."""
    from mlscale.lifecycle.run import cost_report

    return cost_report(lake or _lake(), summary, applied)
