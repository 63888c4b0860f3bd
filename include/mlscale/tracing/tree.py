"""Print the collector's spans as trees, to follow a slow run stage by stage without a trace viewer.

    python -m mlscale.tracing.tree .stack/traces/spans.jsonl              # the 3 latest traces
    python -m mlscale.tracing.tree spans.jsonl --grep ingest_transactions  # traces with a span of that name
    python -m mlscale.tracing.tree spans.jsonl --trace 4bf92f3577b34da6a3ce929d0e0e4736

Each line: offset from the trace's start, duration, span name, service, and the attributes that size the work
(rows, bytes, dataset, model, partition, round, ...). Children are ordered by start time.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from mlscale.tracing.collector import read_spans

SHOWN = ("dataset", "model", "dt", "zone", "partition", "file", "bucket", "round", "rows", "bytes", "files",
         "valid", "rejected", "duplicates", "rounds", "algorithm", "mode", "airflow.task_id", "airflow.dag_id")


def traces(spans: Iterable[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Spans by trace id, traces in order of their first start."""
    by_trace: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for s in spans:
        by_trace[s["trace_id"]].append(s)
    return dict(sorted(by_trace.items(), key=lambda kv: min(s["start_time_unix_nano"] for s in kv[1])))


def format_trace(spans: list[dict[str, Any]]) -> list[str]:
    """The lines of one trace; spans whose parent is not in the file start their own tree."""
    ids = {s["span_id"] for s in spans}
    children: dict[str | None, list[dict[str, Any]]] = defaultdict(list)
    for s in spans:
        children[s["parent_span_id"] if s["parent_span_id"] in ids else None].append(s)
    origin = min(s["start_time_unix_nano"] for s in spans)
    lines = [f"trace {spans[0]['trace_id']}"]

    def walk(parent: str | None, depth: int) -> None:
        for s in sorted(children[parent], key=lambda x: x["start_time_unix_nano"]):
            attrs = " ".join(f"{k}={s['attributes'][k]}" for k in SHOWN if k in s["attributes"])
            failed = " ERROR" if s["status"]["code"] == "error" else ""
            lines.append(f"{(s['start_time_unix_nano'] - origin) / 1e9:9.3f}s {s['duration_ms'] / 1e3:9.3f}s  "
                         f"{'  ' * depth}{s['name']} [{s['service']}]{failed} {attrs}".rstrip())
            walk(s["span_id"], depth + 1)

    walk(None, 0)
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mlscale.tracing.tree", description=__doc__.splitlines()[0])
    parser.add_argument("file", help="the collector's JSONL file")
    parser.add_argument("--trace", help="only this trace id")
    parser.add_argument("--grep", help="only traces with a span whose name contains this")
    parser.add_argument("--last", type=int, default=3, help="the latest N traces (default 3)")
    args = parser.parse_args(argv)
    found = traces(read_spans(args.file))
    if args.trace:
        found = {k: v for k, v in found.items() if k == args.trace}
    if args.grep:
        found = {k: v for k, v in found.items() if any(args.grep in s["name"] for s in v)}
    if not found:
        print(f"no matching spans in {args.file}", file=sys.stderr)
        return 1
    for spans in list(found.values())[-args.last:]:
        print("\n".join(format_trace(spans)) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
