"""The storage cost report: ``reports/cost/<day>/report.json`` and ``report.html``.

From one paged listing of the whole lake: bytes and object counts per zone, dataset and tier (hot, or
cold: the local ``cold/`` root or any non-STANDARD S3 storage class), the monthly cost estimate from the
policy's price table, what this run saved (or would save, in a dry run), the top growth against the
previous report, and small-file counts per dataset (a hint for compaction). The HTML page
(``templates/cost.html.j2``) is self-contained: tables and an inline SVG bar chart, no scripts.
"""

from __future__ import annotations

import logging
import posixpath
from collections import defaultdict
from typing import Any

from markupsafe import Markup

from mlscale.lake import Lake
from mlscale.lake.lake import COLD_ROOT
from mlscale.layout import report_prefix
from mlscale.lifecycle.listing import LakeLister
from mlscale.lifecycle.policy import Policy
from mlscale.rendering import render, render_macro
from mlscale.usage import read_usage
from mlscale.usage.cost import compute_summary

logger = logging.getLogger(__name__)

REPORTS_PREFIX = report_prefix("cost")
GB = 2**30
HOT_CLASSES = ("", "STANDARD")


def _where(key: str) -> tuple[str, str, bool]:
    """(zone, dataset, under the cold root) of a key."""
    parts = key.split("/")
    cold = parts[0] == COLD_ROOT and len(parts) > 2
    if cold:
        parts = parts[1:]
    dataset = parts[1] if len(parts) > 2 else "-"
    return parts[0], dataset, cold


def inventory(lister: LakeLister, policy: Policy) -> list[dict[str, Any]]:
    """Per (zone, dataset, tier): objects, bytes, small data files and the monthly cost estimate."""
    acc: dict[tuple[str, str, str], dict[str, Any]] = defaultdict(
        lambda: {"objects": 0, "bytes": 0, "small_files": 0, "data_files": 0, "cost": 0.0})
    for top in lister.children(""):
        for obj in lister.iter_objects(top):
            zone, dataset, under_cold = _where(obj.key)
            tier = "cold" if under_cold or obj.storage_class not in HOT_CLASSES else "hot"
            row = acc[(zone, dataset, tier)]
            row["objects"] += 1
            row["bytes"] += obj.size
            row["cost"] += obj.size / GB * policy.prices.per_gb_month(tier, obj.storage_class)
            if not posixpath.basename(obj.key).startswith(("_", ".")):
                row["data_files"] += 1
                row["small_files"] += obj.size < policy.small_file_bytes
    return [{"zone": z, "dataset": d, "tier": t, **{k: v for k, v in row.items() if k != "cost"},
             "monthly_cost": row["cost"]} for (z, d, t), row in sorted(acc.items())]


def previous_report(lake: Lake, run_day: str, lister: LakeLister) -> dict[str, Any] | None:
    days = [d for d in lister.children(REPORTS_PREFIX) if d < run_day]
    for day in sorted(days, reverse=True):
        body = lister.read_bytes(f"{REPORTS_PREFIX}/{day}/report.json")
        if body is not None:
            import json

            return json.loads(body)
    return None


def savings(policy: Policy, applied: dict[str, Any] | None, planned: dict[str, int], dry_run: bool) -> dict[str, Any]:
    """Monthly saving of what this run deleted and moved (or, in a dry run, would have)."""
    if applied is not None and not dry_run:
        hot, cold, moved = (applied.get("bytes_deleted_hot", 0), applied.get("bytes_deleted_cold", 0),
                            applied.get("bytes_moved_cold", 0))
        basis = "applied"
    else:
        hot, cold, moved = planned.get("delete_hot", 0), planned.get("delete_cold", 0), planned.get("move_cold", 0)
        basis = "planned (dry run: nothing was changed)" if dry_run else "planned (apply did not report)"
    p = policy.prices
    monthly = hot / GB * p.hot + cold / GB * p.cold + moved / GB * (p.hot - p.cold)
    return {"basis": basis, "bytes_deleted_hot": hot, "bytes_deleted_cold": cold, "bytes_moved_cold": moved,
            "monthly_saving": monthly}


def build_cost_report(lake: Lake, policy: Policy, *, run_day: str, run_id: str, dry_run: bool,
                      planned_bytes: dict[str, int], applied: dict[str, Any] | None = None,
                      idle: list[dict[str, Any]] | None = None, lister: LakeLister | None = None,
                      top: int = 10) -> dict[str, Any]:
    """Write ``reports/cost/<run_day>/report.json`` and ``report.html``; return a small summary."""
    lister = lister or LakeLister(lake)
    rows = inventory(lister, policy)
    totals = {
        "objects": sum(r["objects"] for r in rows), "bytes": sum(r["bytes"] for r in rows),
        "hot_bytes": sum(r["bytes"] for r in rows if r["tier"] == "hot"),
        "cold_bytes": sum(r["bytes"] for r in rows if r["tier"] == "cold"),
        "monthly_cost": sum(r["monthly_cost"] for r in rows),
    }
    by_dataset: dict[tuple[str, str], int] = defaultdict(int)
    small: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for r in rows:
        by_dataset[(r["zone"], r["dataset"])] += r["bytes"]
        small[(r["zone"], r["dataset"])][0] += r["small_files"]
        small[(r["zone"], r["dataset"])][1] += r["data_files"]
    previous = previous_report(lake, run_day, lister)
    growth: list[dict[str, Any]] = []
    if previous is not None:
        before: dict[tuple[str, str], int] = defaultdict(int)
        for r in previous.get("by_dataset", []):
            before[(r["zone"], r["dataset"])] += r["bytes"]
        for key in set(before) | set(by_dataset):
            delta = by_dataset.get(key, 0) - before.get(key, 0)
            growth.append({"zone": key[0], "dataset": key[1], "bytes_before": before.get(key, 0),
                           "bytes_after": by_dataset.get(key, 0), "delta_bytes": delta})
        growth.sort(key=lambda g: (-g["delta_bytes"], g["zone"], g["dataset"]))
    doc = {
        "run_day": run_day, "run_id": run_id, "lake_root": lake.root, "dry_run": dry_run,
        "currency": policy.prices.currency,
        "prices": {"hot": policy.prices.hot, "cold": policy.prices.cold,
                   "storage_classes": dict(policy.prices.storage_classes)},
        "totals": totals, "by_dataset": rows,
        "saved": savings(policy, applied, planned_bytes, dry_run),
        "growth": {"previous_day": previous.get("run_day") if previous else None, "top": growth[:top]},
        "small_files": [{"zone": z, "dataset": d, "small_files": s, "data_files": n}
                        for (z, d), (s, n) in sorted(small.items(), key=lambda kv: (-kv[1][0], kv[0])) if s][:top],
        "small_file_bytes": policy.small_file_bytes,
        "idle_resources": idle or [],
        "requests": dict(lister.counters),
        "compute": compute_summary(read_usage(lake, run_day)),   # the day's Dask tasks, priced (prices.yaml)
    }
    folder = f"{REPORTS_PREFIX}/{run_day}"
    lake.write_json(f"{folder}/report.json", doc)
    lake.write_bytes(f"{folder}/report.html", render_html(doc).encode())
    logger.info("cost report %s: %d objects, %.3f GB, %.2f %s/month (hot %.3f GB, cold %.3f GB); saved %s",
                lake.uri(folder), totals["objects"], totals["bytes"] / GB, totals["monthly_cost"], doc["currency"],
                totals["hot_bytes"] / GB, totals["cold_bytes"] / GB, doc["saved"])
    return {"report": lake.uri(f"{folder}/report.json"), "html": lake.uri(f"{folder}/report.html"), "totals": totals,
            "saved": doc["saved"]}


def svg_bars(rows: list[tuple[str, float, float]], currency: str, width: int = 720) -> Markup:
    """Horizontal bars of (label, hot, cold) values, stacked; inline SVG, no scripts."""
    bar_h, gap, label_w = 18, 6, 220
    top = max((h + c for _, h, c in rows), default=0) or 1
    scale = (width - label_w - 110) / top
    bars = [{"label": label, "y": i * (bar_h + gap) + 4, "hot": hot * scale, "cold": cold * scale, "total": hot + cold}
            for i, (label, hot, cold) in enumerate(rows)]
    return render_macro("charts.svg.j2", "stacked_bars", width=width, height=len(rows) * (bar_h + gap) + 30,
                        bar_h=bar_h, label_w=label_w, bars=bars, legend_y=len(rows) * (bar_h + gap) + 16,
                        currency=currency)


def render_html(doc: dict[str, Any]) -> str:
    per: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for r in doc["by_dataset"]:
        per[f"{r['zone']}/{r['dataset']}"][0 if r["tier"] == "hot" else 1] += r["monthly_cost"]
    bars = sorted(((k, v[0], v[1]) for k, v in per.items()), key=lambda b: -(b[1] + b[2]))[:25]
    return render("cost.html.j2", doc=doc, chart=svg_bars(bars, doc["currency"]))
