"""``mlscale rollback``: point ``champion`` back at an earlier registered version, recorded in the audit log."""

from __future__ import annotations

import argparse
import datetime as dt
import json


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mlscale rollback", description=__doc__)
    parser.add_argument("--model", default="fraud_detector")
    parser.add_argument("--version", required=True, help="the registered version to serve again")
    parser.add_argument("--by", required=True, help="who decides the rollback")
    parser.add_argument("--reason", required=True)
    parser.add_argument("--lake", default=None)
    parser.add_argument("--tracking-uri", default="", help="an MLflow server (default: the lake's embedded registry)")
    args = parser.parse_args(argv)
    from mlscale.cli.lake_root import lake_for_cli
    from mlscale.governance.gate import rollback

    decision = rollback(lake_for_cli(args.lake), model=args.model, version=args.version, by=args.by,
                        reason=args.reason, tracking_uri=args.tracking_uri,
                        day=dt.datetime.now(dt.UTC).date().isoformat())
    print(json.dumps(decision.as_dict(), default=str))
    return 0
