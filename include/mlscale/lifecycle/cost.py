"""The storage cost report: ``reports/cost/<day>/report.json`` and ``report.html``.

From one paged listing of the whole lake: bytes and object counts per zone, dataset and tier (hot, or
cold: the local ``cold/`` root or any non-STANDARD S3 storage class), the monthly cost estimate from the
policy's price table, what this run saved (or would save, in a dry run), the top growth against the
previous report, and small-file counts per dataset (a hint for compaction). The HTML page is
self-contained: a table and an inline SVG bar chart, no scripts.
"""

from __future__ import annotations

import html
import logging
import posixpath
from collections import defaultdict
from typing import Any

from mlscale.lake import Lake
from mlscale.lake.lake import COLD_ROOT
from mlscale.lifecycle.listing import LakeLister
from mlscale.lifecycle.policy import Policy

logger = logging.getLogger(__name__)

REPORTS_PREFIX = "reports/cost"
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
    }
    folder = f"{REPORTS_PREFIX}/{run_day}"
    lake.write_json(f"{folder}/report.json", doc)
    lake.write_bytes(f"{folder}/report.html", render_html(doc).encode())
    logger.info("cost report %s: %d objects, %.3f GB, %.2f %s/month (hot %.3f GB, cold %.3f GB); saved %s",
                lake.uri(folder), totals["objects"], totals["bytes"] / GB, totals["monthly_cost"], doc["currency"],
                totals["hot_bytes"] / GB, totals["cold_bytes"] / GB, doc["saved"])
    return {"report": lake.uri(f"{folder}/report.json"), "html": lake.uri(f"{folder}/report.html"), "totals": totals,
            "saved": doc["saved"]}


def _fmt_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:,.1f} {unit}" if unit != "B" else f"{int(n):,} B"
        n /= 1024
    return f"{n:,.1f} TiB"


def svg_bars(rows: list[tuple[str, float, float]], currency: str, width: int = 720) -> str:
    """Horizontal bars of (label, hot, cold) values, stacked; inline SVG, no scripts."""
    bar_h, gap, label_w = 18, 6, 220
    top = max((h + c for _, h, c in rows), default=0) or 1
    scale = (width - label_w - 110) / top
    height = len(rows) * (bar_h + gap) + 30
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
             f'aria-label="monthly cost by dataset" font-family="sans-serif" font-size="12">']
    for i, (label, hot, cold) in enumerate(rows):
        y = i * (bar_h + gap) + 4
        hw, cw = hot * scale, cold * scale
        parts.append(f'<text x="{label_w - 6}" y="{y + 13}" text-anchor="end">{html.escape(label)}</text>')
        parts.append(f'<rect x="{label_w}" y="{y}" width="{hw:.1f}" height="{bar_h}" fill="#d9534f"/>')
        parts.append(f'<rect x="{label_w + hw:.1f}" y="{y}" width="{cw:.1f}" height="{bar_h}" fill="#5bc0de"/>')
        parts.append(f'<text x="{label_w + hw + cw + 6:.1f}" y="{y + 13}">{hot + cold:,.4f} {html.escape(currency)}</text>')
    y = len(rows) * (bar_h + gap) + 16
    parts.append(f'<rect x="{label_w}" y="{y - 10}" width="12" height="12" fill="#d9534f"/>'
                 f'<text x="{label_w + 16}" y="{y}">hot</text>'
                 f'<rect x="{label_w + 60}" y="{y - 10}" width="12" height="12" fill="#5bc0de"/>'
                 f'<text x="{label_w + 76}" y="{y}">cold</text></svg>')
    return "".join(parts)


def render_html(doc: dict[str, Any]) -> str:
    cur = doc["currency"]
    per: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for r in doc["by_dataset"]:
        per[f"{r['zone']}/{r['dataset']}"][0 if r["tier"] == "hot" else 1] += r["monthly_cost"]
    bars = sorted(((k, v[0], v[1]) for k, v in per.items()), key=lambda b: -(b[1] + b[2]))[:25]
    esc = html.escape
    table = "".join(
        f"<tr><td>{esc(r['zone'])}</td><td>{esc(r['dataset'])}</td><td>{esc(r['tier'])}</td>"
        f"<td class=n>{r['objects']:,}</td><td class=n>{_fmt_bytes(r['bytes'])}</td>"
        f"<td class=n>{r['small_files']:,}</td><td class=n>{r['monthly_cost']:,.4f}</td></tr>"
        for r in doc["by_dataset"])
    growth = "".join(
        f"<tr><td>{esc(g['zone'])}/{esc(g['dataset'])}</td><td class=n>{_fmt_bytes(g['bytes_before'])}</td>"
        f"<td class=n>{_fmt_bytes(g['bytes_after'])}</td><td class=n>{_fmt_bytes(g['delta_bytes'])}</td></tr>"
        for g in doc["growth"]["top"]) or "<tr><td colspan=4>no previous report</td></tr>"
    small = "".join(
        f"<tr><td>{esc(s['zone'])}/{esc(s['dataset'])}</td><td class=n>{s['small_files']:,}</td>"
        f"<td class=n>{s['data_files']:,}</td></tr>" for s in doc["small_files"]) or "<tr><td colspan=3>none</td></tr>"
    idle = "".join(
        f"<tr><td>{esc(i['kind'])}</td><td>{esc(i['id'])}</td><td>{esc(i['reason'])}</td>"
        f"<td class=n>{i['monthly_cost']:,.2f}</td><td>{'yes' if i['actionable'] else 'report only'}</td></tr>"
        for i in doc["idle_resources"]) or "<tr><td colspan=5>none found</td></tr>"
    t, s = doc["totals"], doc["saved"]
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Storage cost {esc(doc['run_day'])}</title>
<style>body{{font-family:sans-serif;margin:2em;color:#222}}table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #ccc;padding:3px 8px}}th{{background:#eee}}td.n{{text-align:right}}</style></head>
<body><h1>Storage cost report — {esc(doc['run_day'])}</h1>
<p>Lake <code>{esc(doc['lake_root'])}</code>, run <code>{esc(doc['run_id'])}</code>{' (dry run)' if doc['dry_run'] else ''}.
{t['objects']:,} objects, {_fmt_bytes(t['bytes'])} (hot {_fmt_bytes(t['hot_bytes'])}, cold {_fmt_bytes(t['cold_bytes'])}):
estimated <b>{t['monthly_cost']:,.4f} {esc(cur)}/month</b>
(hot {doc['prices']['hot']} and cold {doc['prices']['cold']} {esc(cur)} per GB-month).</p>
<p>This run {'would save' if doc['dry_run'] else 'saved'} <b>{s['monthly_saving']:,.4f} {esc(cur)}/month</b>:
deleted {_fmt_bytes(s['bytes_deleted_hot'])} hot and {_fmt_bytes(s['bytes_deleted_cold'])} cold, moved
{_fmt_bytes(s['bytes_moved_cold'])} to the cold tier ({esc(s['basis'])}).</p>
<h2>Monthly cost by dataset</h2>{svg_bars(bars, cur)}
<table><tr><th>zone</th><th>dataset</th><th>tier</th><th>objects</th><th>size</th><th>small files</th><th>{esc(cur)}/month</th></tr>{table}</table>
<h2>Top growth since {esc(str(doc['growth']['previous_day']))}</h2>
<table><tr><th>dataset</th><th>before</th><th>now</th><th>growth</th></tr>{growth}</table>
<h2>Small files (under {_fmt_bytes(doc['small_file_bytes'])}): compaction candidates</h2>
<table><tr><th>dataset</th><th>small files</th><th>data files</th></tr>{small}</table>
<h2>Idle resources</h2>
<table><tr><th>kind</th><th>id</th><th>why</th><th>{esc(cur)}/month</th><th>actionable</th></tr>{idle}</table>
</body></html>
"""
