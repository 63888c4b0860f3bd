"""The timeline of a period: ``reports/timeline/<last day>/report.json`` and ``report.html``.

Months of operation on one page, one row per day from ``first`` to ``last``: events ingested and quarantined
per dataset, feature freshness, each model's drift verdicts (data, prediction, labelled performance) and
labelled PR-AUC, retrains (and what started them), bias audits and gate decisions, storage cost and what the
lifecycle deleted or moved to the cold tier. In a synthetic world the scenario's episodes
(``_meta/generator/scenario.json``) are laid over the verdicts: each drift or outage episode gets its first
alarm and delay, and each alarm the episodes that explain it — or none, a false alarm.

It reads what the pipelines recorded, through the health report's readers
(:mod:`mlscale.reports.health_sources`, :mod:`mlscale.reports.health_models`), and writes only its two files; a
missing source is "no data". A rerun for the same period rewrites the same page from the lake as it is then.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
from collections.abc import Iterable
from typing import Any

from mlscale.lake import Lake, parse_day
from mlscale.layout import GENERATOR, drift_report_prefix, report_prefix
from mlscale.rendering import render
from mlscale.reports.health_html import bar_chart, line_chart
from mlscale.reports.health_models import bias_reports, gate_decisions, registered_models
from mlscale.reports.health_sources import SourceReader, feature_rows, ingestion_rows, lifecycle_rows
from mlscale.reports.health_types import HealthThresholds

logger = logging.getLogger(__name__)

SCENARIO = f"{GENERATOR}/scenario.json"


def timeline_prefix(last: str) -> str:
    return f"{report_prefix('timeline')}/{last}"


def lake_days(lake: Lake) -> list[str]:
    """The days the lake holds raw partitions of, sorted (the default period of a timeline)."""
    from mlscale.contracts import contract_names

    return sorted({p.dt for dataset in contract_names() for p in lake.partitions("raw", dataset)})


def build_timeline(lake: Lake, first: str, last: str, *, datasets: Iterable[str] = (),
                   feature_sets: Iterable[str] = ()) -> dict[str, Any]:
    """Build and write the timeline of ``first``..``last``; returns its document."""
    start, end = parse_day(first), parse_day(last)
    if end < start:
        raise ValueError(f"the timeline's last day {last} is before its first day {first}")
    days = tuple((start + dt.timedelta(days=i)).isoformat() for i in range((end - start).days + 1))
    th, src = HealthThresholds(), SourceReader(lake)
    ingest = dict(ingestion_rows(src, days, datasets, th))
    features, _ = feature_rows(src, days, feature_sets, th)
    gates = [g for g in gate_decisions(src, days[-1]) if g["dt"] >= days[0]]
    versions = [m for m in registered_models(src, days[-1], days, bias_reports(src), gates)
                if m["registered_day"] >= days[0]]
    lifecycle, cost = lifecycle_rows(src, days)
    drift = drift_verdicts(src, days)
    episodes = scenario_episodes(src)
    rows = []
    for i, day in enumerate(days):
        life = lifecycle[i].detail.get("statuses") or {}
        rows.append({
            "day": day,
            "ingested": {name.removeprefix("ingest_"): r[i].rows_out for name, r in ingest.items()},
            "quarantined": {name.removeprefix("ingest_"): r[i].rows_quarantined for name, r in ingest.items()},
            "features": features[i].status,
            "drift": drift.get(day, {}),
            "retrained": [f"{m['model']} v{m['version']} ({_why(m.get('run_id'))})" for m in versions
                          if m["registered_day"] == day],
            "gate": [f"{g['model']} v{g['version']}: {g['decision']}" + (f" ({'; '.join(g['reasons'][:2])})"
                                                                          if g["reasons"] else "")
                     for g in gates if g["dt"] == day],
            "lifecycle": {"applied": life.get("applied", 0), "bytes": lifecycle[i].detail.get("bytes_applied"),
                          "monthly_cost": lifecycle[i].detail.get("monthly_cost")},
            "episodes": [e["name"] for e in episodes if e["first"] <= day <= e["last"]],
        })
    alarms = explain_alarms(drift, episodes)
    doc: dict[str, Any] = {"first_day": days[0], "last_day": days[-1], "days": rows, "episodes": score_episodes(episodes, drift),
           "alarms": alarms, "versions": versions, "cost": cost,
           "lifecycle_actions": dict(sum((Counter(r.detail.get("statuses") or {}) for r in lifecycle), Counter()))}
    prefix = timeline_prefix(days[-1])
    doc["report"] = f"{prefix}/report.html"
    lake.write_json(f"{prefix}/report.json", doc)
    lake.write_bytes(f"{prefix}/report.html", render_timeline_html(doc).encode())
    false_alarms = sum(1 for a in alarms if not a["explained_by"])
    logger.info("timeline %s..%s: %d days, %d versions, %d gate decisions, %d alarm days (%s without an episode), "
                "lifecycle %s; %s", days[0], days[-1], len(days), len(versions), len(gates), len(alarms),
                false_alarms if episodes else "no scenario:", doc["lifecycle_actions"] or "no actions",
                lake.uri(f"{prefix}/report.html"))
    return doc


def _why(run_id: Any) -> str:
    text = str(run_id or "")
    return "drift alert" if "drift" in text else "schedule" if ("cron" in text or "scheduled" in text) else "manual"


def drift_verdicts(src: SourceReader, days: tuple[str, ...]) -> dict[str, dict[str, dict[str, Any]]]:
    """Day → model → the drift report's verdicts (data, prediction, performance) and drifted columns."""
    present = {s.key for s in src.listing(report_prefix("drift")) if s.key.endswith("/report.json")}
    models = sorted({k.split("/")[2] for k in present if k.count("/") == 4})
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for day in days:
        for model in models:
            key = f"{drift_report_prefix(model, day)}/report.json"
            doc = src.json("drift_reports", key) if key in present else None
            if not isinstance(doc, dict) or not isinstance(doc.get("drift"), dict):
                continue
            drift, perf = doc["drift"], doc.get("performance") or {}
            out.setdefault(day, {})[model] = {
                "version": doc.get("version"), "alarm": bool(drift.get("drift_detected")),
                **{k: v for k, v in (doc.get("verdicts") or {}).items()},
                "drifted": list(drift.get("drifted_features") or [])[:8],
                "windows": {f["name"]: int(f.get("window_days") or 0) for f in drift.get("features") or []
                            if f.get("drifted")},
                "labelled_pr_auc": perf.get("pr_auc") if isinstance(perf, dict) else None}
    return out


def scenario_episodes(src: SourceReader) -> list[dict[str, Any]]:
    """The generator's episodes with their first and last days (none in a lake without a scenario)."""
    doc = src.json("scenario", SCENARIO)
    return [e for e in (doc or {}).get("episodes") or [] if isinstance(e, dict) and e.get("first")]


def explain_alarms(drift: dict[str, dict[str, dict[str, Any]]], episodes: list[dict[str, Any]]
                    ) -> list[dict[str, Any]]:
    """Each alarm day and model, with the drift or outage episodes that explain it: the day is within the
    episode, or within a drifted column's window after it (a 30-day mean still holds a drifted week)."""
    alarms = []
    for day, models in sorted(drift.items()):
        for model, v in models.items():
            if not v["alarm"]:
                continue
            reach = max(v["windows"].values(), default=0)
            explained = [e["name"] for e in episodes if e["kind"] in ("drift", "outage") and e["first"] <= day
                         <= (parse_day(e["last"]) + dt.timedelta(days=reach)).isoformat()]
            alarms.append({"day": day, "model": model, "drifted": v["drifted"], "explained_by": explained})
    return alarms


def score_episodes(episodes: list[dict[str, Any]], drift: dict[str, dict[str, dict[str, Any]]]
                    ) -> list[dict[str, Any]]:
    """Each episode with the days it was monitored and, for drift and outages, its first alarm and delay."""
    scored = []
    for e in episodes:
        monitored = sorted(d for d in drift if e["first"] <= d <= e["last"])
        alarms = [d for d in monitored if any(v["alarm"] for v in drift[d].values())]
        entry = {k: e.get(k) for k in ("name", "kind", "first", "last", "columns")}
        if e["kind"] in ("drift", "outage"):
            entry.update(monitored_days=len(monitored), first_alarm=alarms[0] if alarms else None,
                         delay_days=(parse_day(alarms[0]) - parse_day(e["first"])).days if alarms else None)
        scored.append(entry)
    return scored


def render_timeline_html(doc: dict[str, Any]) -> str:
    rows = doc["days"]
    labels = [r["day"] for r in rows]
    datasets = sorted({d for r in rows for d in r["ingested"]})
    models = sorted({m for r in rows for m in r["drift"]})
    charts = [
        bar_chart("records written per day", labels, {d: [r["ingested"].get(d) for r in rows] for d in datasets}),
        line_chart("records quarantined per day", labels, {d: [r["quarantined"].get(d) for r in rows] for d in datasets}),
        line_chart("labelled PR-AUC per day (serving version)", labels,
                   {m: [r["drift"].get(m, {}).get("labelled_pr_auc") for r in rows] for m in models}),
        bar_chart("drift alarms (red) per day, by drifted columns", labels,
                  {"drifted columns": [float(sum(len(v["drifted"]) for v in r["drift"].values())) if r["drift"]
                                       else None for r in rows]},
                  alarm=[any(v["alarm"] for v in r["drift"].values()) for r in rows]),
        line_chart("storage cost per month (cost report days)", labels,
                   {"monthly cost": [r["lifecycle"]["monthly_cost"] for r in rows]}),
    ]
    return render("timeline.html.j2", doc=doc, charts=charts, models=models,
                  title=f"Timeline {doc['first_day']} … {doc['last_day']}")
