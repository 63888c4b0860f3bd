"""``mlscale summary``: what the lake holds, zone by zone, read from manifests."""

from __future__ import annotations

from collections import defaultdict

from mlscale.airflow.cli.lake_root import lake_for_cli


def lake_summary(root: str | None) -> dict[str, dict[str, dict[str, int]]]:
    """rows, files, bytes and partitions per zone and dataset (committed data only)."""
    from mlscale.lake import MANIFEST_NAME, Manifest

    lake = lake_for_cli(root)
    summary: dict[str, dict[str, dict[str, int]]] = defaultdict(dict)
    for stored in lake.list_files(""):
        if not stored.key.endswith("/" + MANIFEST_NAME):
            continue
        zone, dataset = stored.key.split("/")[:2]
        manifest = Manifest.from_json(lake.read_bytes(stored.key), stored.key)
        entry = summary[zone].setdefault(dataset, {"partitions": 0, "rows": 0, "files": 0, "bytes": 0})
        entry["partitions"] += 1
        entry["rows"] += manifest.rows
        entry["files"] += len(manifest.files)
        entry["bytes"] += manifest.bytes
    landing: dict[str, dict[str, int]] = defaultdict(lambda: {"files": 0, "bytes": 0})
    for stored in lake.list_files("landing"):
        dataset = stored.key.split("/")[1]
        landing[dataset]["files"] += 1
        landing[dataset]["bytes"] += stored.size
    summary["landing"] = dict(landing)
    return dict(summary)


def print_summary(root: str | None) -> None:
    lake = lake_for_cli(root)
    print(f"lake: {lake.root}")
    for zone, datasets in sorted(lake_summary(root).items()):
        for dataset, stats in sorted(datasets.items()):
            figures = ", ".join(f"{k} {v:,}" for k, v in stats.items())
            print(f"  {zone + '/' + dataset:<34} {figures}")


def print_lifecycle(root: str | None) -> None:
    """The newest lifecycle plan's action counts and the newest cost report's totals."""
    lake = lake_for_cli(root)
    plans = lake.list_files("_meta/lifecycle_plans")
    if not plans:
        print("no lifecycle plan yet")
        return
    plan = lake.read_json(max(plans, key=lambda f: (f.mtime or 0, f.key)).key)
    mode = "dry run" if plan["dry_run"] else "applied"
    counts = ", ".join(f"{k} {v}" for k, v in sorted(plan["counts"].items())) or "nothing due"
    print(f"  lifecycle plan for {plan['run_day']} ({mode}): {counts}")
    reports = [f for f in lake.list_files("reports/cost") if f.key.endswith("report.json")]
    if reports:
        report = lake.read_json(max(reports, key=lambda f: f.key).key)
        totals, saved = report["totals"], report["saved"]
        print(f"  cost report {report['run_day']}: {totals['objects']:,} objects, {totals['bytes'] / 2**20:,.1f} MiB "
              f"(hot {totals['hot_bytes'] / 2**20:,.1f}, cold {totals['cold_bytes'] / 2**20:,.1f}), "
              f"{totals['monthly_cost']:.4f} {report['currency']}/month; saved by this run "
              f"{saved['monthly_saving']:.4f}/month ({saved['basis']})")
