"""Summaries of the sensitive-data access log for a range of days (see :mod:`mlscale.audit.access`)."""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterator
from typing import Any

from mlscale.audit.access import ACCESS_LOG_PREFIX, AccessRecord
from mlscale.lake import Lake, parse_day

logger = logging.getLogger(__name__)


def days_between(first_day: str | dt.date, last_day: str | dt.date) -> list[str]:
    first, last = parse_day(first_day), parse_day(last_day)
    if last < first:
        raise ValueError(f"last day {last} is before first day {first}")
    return [(first + dt.timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]


def read_access_log(lake: Lake, first_day: str | dt.date, last_day: str | dt.date,
                    unreadable: list[str] | None = None) -> list[AccessRecord]:
    """Every record logged on the UTC days ``first_day .. last_day`` (inclusive), ordered by time then id.

    A line that is not a valid record is skipped with a warning and its ``<key>:<line>`` appended to
    ``unreadable`` when given (a report shows how many).
    """
    records = []
    for key, number, line in _lines(lake, days_between(first_day, last_day)):
        try:
            records.append(AccessRecord.from_dict(json.loads(line)))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            logger.warning("access log: %s line %d is not a valid record (%s); skipped", lake.uri(key), number, exc)
            if unreadable is not None:
                unreadable.append(f"{key}:{number}")
    return sorted(records, key=lambda r: (r.at, r.id))


def _lines(lake: Lake, days: list[str]) -> Iterator[tuple[str, int, str]]:
    for day in days:
        for stored in lake.list_files(f"{ACCESS_LOG_PREFIX}/dt={day}"):
            if not stored.key.endswith(".jsonl"):
                continue
            text = lake.read_bytes(stored.key).decode("utf-8", errors="replace")
            for number, line in enumerate(text.splitlines(), start=1):
                if line.strip():
                    yield stored.key, number, line


def access_report(lake: Lake, first_day: str | dt.date, last_day: str | dt.date) -> dict[str, Any]:
    """Accesses, rows and columns read per purpose, per actor (the DAG of a task, else the name) and per
    dataset (``zone/dataset``) over ``first_day .. last_day``. JSON-serialisable; keys sorted."""
    unreadable: list[str] = []
    records = read_access_log(lake, first_day, last_day, unreadable)
    by_purpose: dict[str, dict[str, Any]] = {}
    by_actor: dict[str, dict[str, Any]] = {}
    by_dataset: dict[str, dict[str, Any]] = {}
    for record in records:
        _add(by_purpose, record.purpose, record, "actors", record.actor_label)
        _add(by_actor, record.actor_label, record, "purposes", record.purpose)
        _add(by_dataset, f"{record.zone}/{record.dataset}", record, "purposes", record.purpose)
    return {
        "from": parse_day(first_day).isoformat(), "to": parse_day(last_day).isoformat(),
        "lake": lake.root,
        "accesses": len(records),
        "sensitive_accesses": sum(r.sensitive for r in records),
        "rows": sum(r.rows for r in records),
        "by_purpose": _finish(by_purpose), "by_actor": _finish(by_actor), "by_dataset": _finish(by_dataset),
        "unreadable_records": len(unreadable),
    }


def _add(groups: dict[str, dict[str, Any]], name: str, record: AccessRecord, facet: str, value: str) -> None:
    group = groups.setdefault(name, {"accesses": 0, "rows": 0, "columns": set(), "sensitive_columns": set(),
                                     facet: {}})
    group["accesses"] += 1
    group["rows"] += record.rows
    group["columns"].update(record.columns)
    group["sensitive_columns"].update(record.sensitive_columns)
    group[facet][value] = group[facet].get(value, 0) + 1


def _finish(groups: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for name in sorted(groups):
        group = groups[name]
        out[name] = {k: sorted(v) if isinstance(v, set) else dict(sorted(v.items())) if isinstance(v, dict) else v
                     for k, v in group.items()}
    return out
