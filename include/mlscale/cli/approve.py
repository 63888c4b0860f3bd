"""``mlscale approve``: record a human approval of a model version for the promotion gate."""

from __future__ import annotations

import argparse
import json


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mlscale approve", description=__doc__)
    parser.add_argument("--model", default="fraud_detector")
    parser.add_argument("--version", required=True)
    parser.add_argument("--by", required=True, help="the approver's name")
    parser.add_argument("--note", default="")
    parser.add_argument("--accept", action="append", default=[], metavar="GAP",
                        help="a gap the approver accepts explicitly: insufficient_bias_evidence (the audit could "
                             "not judge any protected attribute for lack of data)")
    parser.add_argument("--lake", default=None)
    args = parser.parse_args(argv)
    from mlscale.cli.lake_root import lake_for_cli
    from mlscale.governance.gate import record_approval

    doc = record_approval(lake_for_cli(args.lake), model=args.model, version=args.version, approved_by=args.by,
                          note=args.note, accepts=tuple(args.accept))
    print(json.dumps(doc))
    return 0
