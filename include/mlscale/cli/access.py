"""``mlscale access-report``: who read sensitive data, why, and which columns, over a range of days."""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import sys
from typing import Any

from mlscale.cli.lake_root import lake_for_cli

DEFAULT_DAYS = 7


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mlscale access-report",
                                     description="Summarise the sensitive-data access log (_meta/access_log/).")
    parser.add_argument("--from", dest="first", type=dt.date.fromisoformat, default=None,
                        help=f"first UTC day, YYYY-MM-DD (default: {DEFAULT_DAYS - 1} days before --to)")
    parser.add_argument("--to", dest="last", type=dt.date.fromisoformat, default=None,
                        help="last UTC day, YYYY-MM-DD (default: today)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--records", action="store_true", help="also list every record (who, what, why, when)")
    parser.add_argument("--lake", default=None, help="lake root URI (default: the Airflow Variable / data/lake)")
    return parser


def main(argv: list[str] | None = None) -> int:
    from mlscale.audit.access_report import access_report, read_access_log

    args = build_parser().parse_args(argv)
    last = args.last or dt.datetime.now(dt.UTC).date()
    first = args.first or last - dt.timedelta(days=DEFAULT_DAYS - 1)
    if last < first:
        print(f"access-report: --to {last} is before --from {first}", file=sys.stderr)
        return 2
    with contextlib.redirect_stdout(sys.stderr):  # Airflow's log handler writes to stdout: keep it for results
        lake = lake_for_cli(args.lake)
        report = access_report(lake, first, last)
        records = read_access_log(lake, first, last) if args.records else []
    if args.json:
        if args.records:
            report["records"] = [r.as_dict() for r in records]
        print(json.dumps(report, indent=1, sort_keys=True))
        return 0
    print("\n".join(format_report(report)))
    if args.records:
        print("records:")
    for r in records:
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


if __name__ == "__main__":
    sys.exit(main())
