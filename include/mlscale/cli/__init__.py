"""The ``mlscale`` command: ``generate`` demo data, ``apply-settings``, ``wait-runs``, ``summary``."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mlscale", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    gen = sub.add_parser("generate", help="write synthetic card-payment drops to landing/")
    gen.add_argument("--lake", default=None, help="lake root URI (default: the Airflow Variable / data/lake)")
    gen.add_argument("--start", required=True, type=dt.date.fromisoformat, help="first day, YYYY-MM-DD")
    gen.add_argument("--days", type=int, default=3)
    gen.add_argument("--rows-per-day", type=int, default=20_000)
    gen.add_argument("--seed", type=int, default=7)
    gen.add_argument("--drift-from", type=dt.date.fromisoformat, default=None, help="inject drift from this day")

    settings = sub.add_parser("apply-settings", help="apply airflow_settings.yaml to the local Airflow")
    settings.add_argument("path", nargs="?", default="airflow_settings.yaml")

    summary = sub.add_parser("summary", help="rows and files per zone of the lake")
    summary.add_argument("--lake", default=None)
    lifecycle = sub.add_parser("lifecycle-summary", help="the newest lifecycle plan and cost report")
    lifecycle.add_argument("--lake", default=None)

    wait = sub.add_parser("wait-runs", help="wait for DAG runs of a range of days to finish")
    wait.add_argument("--dags", required=True, help="comma-separated DAG ids")
    wait.add_argument("--from-day", required=True)
    wait.add_argument("--to-day", required=True)
    wait.add_argument("--timeout", type=float, default=1800)

    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.command == "generate":
        from mlscale.cli.generate import generate_command

        reports = generate_command(args.lake, start=args.start, days=args.days, rows_per_day=args.rows_per_day,
                                   seed=args.seed, drift_from=args.drift_from)
        print(f"{reports['rows']:,} records for {len(reports['days'])} days "
              f"({reports['days'][0]} .. {reports['days'][-1]}) in {reports['lake']}/landing")
    elif args.command == "apply-settings":
        from mlscale.cli.apply_settings import apply_settings

        print(json.dumps(apply_settings(args.path)))
    elif args.command == "wait-runs":
        from mlscale.cli.runs import wait_for_runs

        return 0 if wait_for_runs(args.dags.split(","), args.from_day, args.to_day, timeout_s=args.timeout) else 1
    elif args.command == "summary":
        from mlscale.cli.summary import print_summary

        print_summary(args.lake)
    elif args.command == "lifecycle-summary":
        from mlscale.cli.summary import print_lifecycle

        print_lifecycle(args.lake)
    return 0


if __name__ == "__main__":
    sys.exit(main())
