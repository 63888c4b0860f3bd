"""The usage records of a window of days, for the bottleneck model, the right-sizing advisor and cost roll-ups."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

from mlscale.lake import Lake
from mlscale.usage.sampler import UsageRecord, read_usage


def window_days(end_day: str, days: int) -> list[str]:
    """``days`` days ending with ``end_day`` (ISO dates), oldest first."""
    end = dt.date.fromisoformat(end_day)
    return [(end - dt.timedelta(days=i)).isoformat() for i in range(max(1, days) - 1, -1, -1)]


def usage_history(lake: Lake, end_day: str, days: int) -> list[UsageRecord]:
    """Every task's usage records of the ``days`` days ending with ``end_day``."""
    return [r for day in window_days(end_day, days) for r in read_usage(lake, day)]


def by_stage(records: list[UsageRecord]) -> dict[tuple[str, str], list[UsageRecord]]:
    """The records of successful tries grouped by (DAG id, task id) (a failed try's times say nothing of the
    work's size)."""
    found: dict[tuple[str, str], list[UsageRecord]] = defaultdict(list)
    for r in records:
        if r.succeeded:
            found[(r.dag_id, r.task_id)].append(r)
    return dict(found)


def cost_by(records: list[UsageRecord], attribute: str) -> dict[str, float]:
    """Total cost of the records per value of ``attribute`` (``day``, ``dag_id``, ``model_version`` …); records
    without that attribute are left out."""
    totals: dict[str, float] = defaultdict(float)
    for r in records:
        key: Any = getattr(r, attribute, None)
        if key:
            totals[str(key)] += float((r.cost or {}).get("total", 0.0))
    return {k: round(v, 8) for k, v in sorted(totals.items())}
