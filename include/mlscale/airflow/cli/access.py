"""``mlscale access-report``: who read sensitive data, why, and which columns, over a range of days."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import sys
from typing import Any

from mlscale.airflow.cli.lake_root import lake_for_cli

DEFAULT_DAYS = 7


def access_report_command(first: dt.date | None, last: dt.date | None, *, as_json: bool, records: bool,
                          lake: str | None) -> int:
    """Print the report of ``first`` .. ``last`` (default: the last 7 UTC days up to today); the exit code."""
    from mlscale.audit.access_report import access_report, read_access_log

    last = last or dt.datetime.now(dt.UTC).date()
    first = first or last - dt.timedelta(days=DEFAULT_DAYS - 1)
    if last < first:
        print(f"access-report: --to {last} is before --from {first}", file=sys.stderr)
        return 2
    with contextlib.redirect_stdout(sys.stderr):  # Airflow's log handler writes to stdout: keep it for results
        the_lake = lake_for_cli(lake)
        report = access_report(the_lake, first, last)
        listed = read_access_log(the_lake, first, last) if records else []
    if as_json:
        if records:
            report["records"] = [r.as_dict() for r in listed]
        print(json.dumps(report, indent=1, sort_keys=True))
        return 0
    print("\n".join(format_report(report)))
    if records:
        print("records:")
    for r in listed:
        print(f"  {r.at}  {_who(r.actor)}  {r.purpose}  {r.uri}  {r.rows:,} rows  columns: {', '.join(r.columns)}")
    return 0


def format_report(report: dict[str, Any]) -> list[str]:
    lines = [f"access log of {report['lake']}, {report['from']} .. {report['to']}: {report['accesses']:,} accesses "
             f"({report['sensitive_accesses']:,} to sensitive data), {report['rows']:,} rows"]
    if report["unreadable_records"]:
        lines.append(f"warning: {report['unreadable_records']} unreadable records skipped (see the task log)")
    for title, section in (("purpose", "by_purpose"), ("actor", "by_actor"), ("dataset", "by_dataset")):
        lines.append(f"by {title}:")
        if not report[section]:
            lines.append("  (none)")
        for name, group in report[section].items():
            sensitive = ", ".join(group["sensitive_columns"]) or "none"
            lines.append(f"  {name:<28} {group['accesses']:>5} accesses {group['rows']:>12,} rows   "
                         f"sensitive columns: {sensitive}")
            if section == "by_dataset":
                lines.append(f"  {'':<28} columns read: {', '.join(group['columns'])}")
    return lines


def _who(actor: dict[str, str]) -> str:
    if "dag_id" in actor:
        return f"{actor['dag_id']}.{actor['task_id']} ({actor['run_id']})"
    return actor.get("name", "?")

