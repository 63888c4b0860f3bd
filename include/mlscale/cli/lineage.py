"""``mlscale lineage <uri>``: what a partition or file was built from, and what it influenced."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys

from mlscale.cli.lake_root import lake_for_cli
from mlscale.lineage import DIRECTIONS, LineageGraph, LineageLookupError, render_tree, summarize


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mlscale lineage",
        description="Walk the lake's lineage (partition manifests' inputs) from a lake URI, key or local path. "
                    "A file inside a partition stands for its partition.")
    parser.add_argument("uri", help="e.g. predictions/fraud_xgb/dt=2026-11-25, s3://lake/raw/…, data/lake/landing/…")
    parser.add_argument("--direction", choices=DIRECTIONS, default="both",
                        help="up: what it was built from (to the landing files); down: what it influenced")
    parser.add_argument("--json", action="store_true", help="print nodes, depths and edges as JSON")
    parser.add_argument("--lake", default=None, help="lake root URI (default: the Airflow Variable / data/lake)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    with contextlib.redirect_stdout(sys.stderr):  # Airflow's log handler writes to stdout: keep it for results
        lake = lake_for_cli(args.lake)
        graph = LineageGraph.from_lake(lake)
        try:
            result = graph.lineage(args.uri, args.direction)
        except LineageLookupError as exc:
            print(f"lineage: {exc}")
            return 2
    if args.json:
        doc = result.as_dict() | {"lake": lake.root, "unreadable_manifests": list(graph.unreadable)}
        print(json.dumps(doc, indent=1, sort_keys=True, default=str))
        return 0
    print(f"lake: {lake.root}")
    if graph.unreadable:
        print(f"warning: {len(graph.unreadable)} unreadable manifests skipped (lineage through them is missing): "
              + ", ".join(graph.unreadable[:5]))
    if args.direction in ("up", "both"):
        print("\nupstream (what it was built from):")
        print("\n".join(render_tree(graph, list(result.start), "up")))
        print(summarize([n for n, _ in result.upstream]))
    if args.direction in ("down", "both"):
        print("\ndownstream (what it influenced):")
        print("\n".join(render_tree(graph, list(result.start), "down")))
        print(summarize([n for n, _ in result.downstream]))
    return 0




if __name__ == "__main__":
    sys.exit(main())
