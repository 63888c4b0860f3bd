"""``mlscale lineage <uri>``: what a partition or file was built from, and what it influenced."""

from __future__ import annotations

import contextlib
import json
import sys

from mlscale.airflow.cli.lake_root import lake_for_cli
from mlscale.lineage import LineageGraph, LineageLookupError, render_tree, summarize


def lineage_command(uri: str, *, direction: str, as_json: bool, lake: str | None) -> int:
    """Print the lineage of ``uri`` (a tree, or JSON); the exit code: 2 when ``uri`` names nothing in the lake."""
    with contextlib.redirect_stdout(sys.stderr):  # Airflow's log handler writes to stdout: keep it for results
        the_lake = lake_for_cli(lake)
        graph = LineageGraph.from_lake(the_lake)
        try:
            result = graph.lineage(uri, direction)
        except LineageLookupError as exc:
            print(f"lineage: {exc}")
            return 2
    if as_json:
        doc = result.as_dict() | {"lake": the_lake.root, "unreadable_manifests": list(graph.unreadable)}
        print(json.dumps(doc, indent=1, sort_keys=True, default=str))
        return 0
    print(f"lake: {the_lake.root}")
    if graph.unreadable:
        print(f"warning: {len(graph.unreadable)} unreadable manifests skipped (lineage through them is missing): "
              + ", ".join(graph.unreadable[:5]))
    if direction in ("up", "both"):
        print("\nupstream (what it was built from):")
        print("\n".join(render_tree(graph, list(result.start), "up")))
        print(summarize([n for n, _ in result.upstream]))
    if direction in ("down", "both"):
        print("\ndownstream (what it influenced):")
        print("\n".join(render_tree(graph, list(result.start), "down")))
        print(summarize([n for n, _ in result.downstream]))
    return 0
