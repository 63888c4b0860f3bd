"""One lifecycle run over the lake — plan, apply, cost report — as the ``lifecycle_cleanup`` DAG's tasks and a
replay (:mod:`mlscale.simulation`) run it.

:func:`plan_lifecycle` builds and stores the plan and records every action in the audit log (phase ``plan``);
:func:`apply_lifecycle` applies a stored plan, re-reading legal holds and lineage first (phase ``apply``);
:func:`cost_report` writes ``reports/cost/<day>/``. Ages count from the run's day and logical time, never the
wall clock, so a replayed day acts as that day's scheduled run did.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from mlscale.lake import Lake

#: the zones a run covers unless told otherwise
DEFAULT_ZONES = ("landing", "raw", "quarantine", "features", "training", "predictions", "checkpoints", "models")


def plan_lifecycle(lake: Lake, *, run_id: str, day: dt.date, logical_time: dt.datetime, dry_run: bool,
                   zones: Iterable[str] = DEFAULT_ZONES, grace_hours: float | None = None,
                   extra_actions: Iterable[Any] = (), policy: Any = None) -> dict[str, Any]:
    """Build, store and audit the plan of one run; returns its summary (``plan_key``, counts, bytes)."""
    from mlscale.lifecycle import AuditLog, build_plan, load_holds, load_lineage, load_policy

    plan = build_plan(lake, policy or load_policy(), load_holds(lake=lake), load_lineage(lake), run_id=run_id,
                      run_day=day, logical_time=logical_time, zones=list(zones), grace_hours=grace_hours,
                      dry_run=dry_run, extra_actions=list(extra_actions))
    audit = AuditLog(lake, run_id=plan.run_id, run_day=plan.run_day, phase="plan", dry_run=dry_run)
    for action in plan.actions:
        audit.record(action)
    audit.flush()
    summary = plan.summary()
    summary["idle"] = [a.detail for a in plan.actions if a.rule == "idle-resources"][:50]
    return summary


def apply_lifecycle(lake: Lake, summary: Mapping[str, Any], *, ec2: Any = None,
                    feast_root: str | None = None) -> dict[str, Any]:
    """Apply the plan a summary names (holds and lineage re-read first); returns the apply result. ``feast_root``:
    the Feast directory whose published copies of deleted feature partitions go with them."""
    from mlscale.lifecycle import AuditLog, apply_plan, load_holds, load_lineage

    plan = lake.read_json(summary["plan_key"])
    audit = AuditLog(lake, run_id=plan["run_id"], run_day=plan["run_day"], phase="apply", dry_run=False)
    return apply_plan(lake, plan, load_holds(lake=lake), load_lineage(lake), audit=audit, ec2=ec2,
                      feast_root=feast_root).as_dict()


def cost_report(lake: Lake, summary: Mapping[str, Any], applied: Mapping[str, Any] | None, *,
                policy: Any = None) -> dict[str, Any]:
    """``reports/cost/<day>/`` (JSON and HTML) of the run a summary describes."""
    from mlscale.lifecycle import build_cost_report, load_policy

    return build_cost_report(lake, policy or load_policy(), run_day=summary["run_day"], run_id=summary["run_id"],
                             dry_run=bool(summary["dry_run"]), planned_bytes=summary["bytes"],
                             applied=dict(applied) if applied else None, idle=list(summary.get("idle", [])))
