"""The health report's attention list: what to look at first, and what happened upstream that day.

One item per pipeline and flagged condition over the days it held; an item is critical when its condition
holds on D itself and is one of :data:`~mlscale.reports.health.CRITICAL_FLAGS`, else a warning. Messages
of model conditions (drift, a labelled performance drop) name the upstream ingestion quality and feature
freshness of the day concerned.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from mlscale.layout import LIFECYCLE_AUDIT
from mlscale.reports.health_runs import FAILED, UNAUDITED, failure_message, unaudited_message
from mlscale.reports.health_types import (
    CRITICAL,
    CRITICAL_FLAGS,
    DAILY,
    NO_DATA,
    WARNING,
    AttentionItem,
    HealthThresholds,
    PipelineDay,
)


def mark_missing(pipelines: dict[str, list[PipelineDay]]) -> None:
    """Flag D as ``missing`` for a daily pipeline that recorded runs earlier in the window but none for D."""
    for name, rows in pipelines.items():
        if not (name.startswith("ingest_") or name in DAILY) or rows[-1].status != NO_DATA or rows[-1].flags:
            continue
        seen = [r.day for r in rows if r.status != NO_DATA]
        if seen:
            rows[-1] = dataclasses.replace(rows[-1], flags=("missing",), detail={"last_recorded": seen[-1]})


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2%}"


def _on(days: Sequence[str]) -> str:
    return f"on {days[0]}" if len(days) == 1 else f"on {len(days)} days (latest {days[-1]})"


def _upstream(pipelines: dict[str, list[PipelineDay]], day: str) -> str:
    """What the upstream pipelines recorded on ``day``: ingestion quality and feature freshness."""
    parts = []
    for name, rows in pipelines.items():
        row = next((r for r in rows if r.day == day), None)
        if row is None or not name.startswith("ingest_"):
            continue
        if row.status == NO_DATA:
            parts.append(f"{name} no run recorded")
            continue
        text = f"{name} quarantine {_pct(row.quarantine_rate)}"
        change = row.detail.get("volume_change")
        if change is not None:
            text += f", volume {change:+.0%}"
        if row.retries:
            text += f", {row.retries} retries"
        parts.append(text)
    features = next((r for r in pipelines.get("build_features", []) if r.day == day), None)
    if features is not None:
        lags = {k: v for k, v in features.detail.get("lag_days", {}).items() if v}
        parts.append("features " + (", ".join(f"{k} {v} day(s) behind" for k, v in sorted(lags.items()))
                                    if lags else "fresh"))
        if features.detail.get("quarantined"):
            parts.append("feature validation failed: " + ", ".join(features.detail["quarantined"]))
    return f"upstream on {day}: " + ("; ".join(parts) if parts else "no records")


def _message(name: str, flag: str, rows: list[PipelineDay], pipelines: dict[str, list[PipelineDay]],
             models: list[dict[str, Any]], drift: list[dict[str, Any]], performance: list[dict[str, Any]],
             th: HealthThresholds) -> tuple[str, tuple[str, ...]]:
    last, days = rows[-1], [r.day for r in rows]
    if flag == "quarantine_rate":
        reasons = ", ".join(f"{k} {v}" for k, v in last.detail.get("top_reasons", {}).items())
        return (f"{name}: quarantine rate above {th.max_quarantine_rate:.0%} {_on(days)}; {last.day}: "
                f"{_pct(last.quarantine_rate)} ({last.rows_quarantined} of {last.rows_in} records)"
                + (f", top reasons: {reasons}" if reasons else ""), ())
    if flag == "volume_change":
        return (f"{name}: records in changed by more than {th.max_volume_change:.0%} against the day before "
                f"{_on(days)}; {last.day}: {last.detail.get('volume_change', 0):+.0%} ({last.rows_in} records)", ())
    if flag == "retries":
        return f"{name}: needed retries {_on(days)} ({last.day}: {last.retries} beyond the first attempt)", ()
    if flag == "missing":
        return f"{name}: no run recorded for {last.day} (last recorded {last.detail.get('last_recorded')})", ()
    if flag == "stale_features":
        lags = {k: v for k, v in last.detail.get("lag_days", {}).items()
                if v is not None and v > th.max_feature_lag_days}
        return (f"build_features: feature tables behind the day {_on(days)}; {last.day}: "
                + ", ".join(f"{k} {v} day(s) behind" for k, v in sorted(lags.items()))
                + "; models trained or scored on those days read older features", ())
    if flag == "validation_failed":
        return (f"build_features: as-of tables failed validation and were quarantined {_on(days)} "
                f"({', '.join(last.detail.get('quarantined', []))} on {last.day})", ())
    if flag == "drift":
        entry = next(d for d in drift if d["day"] == last.day)
        critical = ", ".join(entry["critical_drifted"]) or "none"
        return (f"monitor_drift: drift detected {_on(days)}; {last.day}: {entry['drifted']} of {entry['n_features']} "
                f"monitored columns drifted (share {entry['share_drifted'] or 0:.2f}, critical: {critical}) for "
                f"{entry['model']} version {entry['version']}; {_upstream(pipelines, last.day)}",
                tuple(d["link"] for d in drift if d["day"] in days[-3:] and d.get("link")))
    if flag == "performance_drop":
        perf = next(p for p in performance if p["day"] == last.day)
        return (f"monitor_drift: labelled PR-AUC of the events of {perf['performance_day']} is {perf['pr_auc']:.3f}, "
                f"more than {th.max_pr_auc_drop:.0%} below version {perf['version']}'s holdout "
                f"{perf['holdout_pr_auc']:.3f} ({_on(days)}); {_upstream(pipelines, str(perf['performance_day']))}",
                tuple(d["link"] for d in drift if d["day"] == last.day and d.get("link")))
    if flag == "bias_fail":
        failed = [m for m in models if m["bias_verdict"] == "fail"
                  and any(f"{m['model']}/{m['version']}" in r.detail.get("verdicts", {}) for r in rows)]
        parts = []
        for m in failed[-3:]:
            reasons = "; ".join(m["bias_reasons"][:2]) + (f" (+{len(m['bias_reasons']) - 2} more)"
                                                          if len(m["bias_reasons"]) > 2 else "")
            parts.append(f"{m['model']} version {m['version']} (trained {m['registered_day']}, holdout PR-AUC "
                         f"{m['pr_auc'] if m['pr_auc'] is None else round(m['pr_auc'], 4)}) failed: {reasons}; "
                         f"gate: {m['gate_decision'] or 'no decision'}")
        return (f"audit_bias: bias audit failed {_on(days)}: " + " | ".join(parts),
                tuple(m["links"]["bias"] for m in failed[-3:] if m["links"].get("bias")))
    if flag == "gate_refused":
        decisions = [d for d in last.detail.get("decisions", []) if d["decision"] == "refused"]
        return (f"audit_bias: the promotion gate refused {_on(days)}: "
                + " | ".join(f"{d['model']} version {d['version']}: {'; '.join(d['reasons'][:3])}" for d in decisions),
                ())
    if flag == FAILED:
        return failure_message(name, rows, _on(days)), ()
    if flag == UNAUDITED:
        return unaudited_message(rows), ()
    if flag == "failed_actions":
        return (f"lifecycle_cleanup: {last.detail.get('statuses', {}).get('failed', 0)} actions failed on {last.day} "
                f"({_on(days)}); see {LIFECYCLE_AUDIT}/dt={last.day}/", ())
    return f"{name}: {flag} {_on(days)}", ()


def attention_items(pipelines: dict[str, list[PipelineDay]], models: list[dict[str, Any]],
                    drift: list[dict[str, Any]], performance: list[dict[str, Any]], th: HealthThresholds,
                    day: str) -> list[AttentionItem]:
    """One item per pipeline and condition, over the days it held; critical first, then newest first."""
    grouped: dict[tuple[str, str], list[PipelineDay]] = defaultdict(list)
    for name, rows in pipelines.items():
        for row in rows:
            for flag in row.flags:
                grouped[(name, flag)].append(row)
    order = list(pipelines)
    items = []
    for (name, flag), rows in grouped.items():
        message, links = _message(name, flag, rows, pipelines, models, drift, performance, th)
        severity = CRITICAL if rows[-1].day == day and flag in CRITICAL_FLAGS else WARNING
        items.append(AttentionItem(severity=severity, kind=flag, pipeline=name, days=tuple(r.day for r in rows),
                                   message=message, links=tuple(dict.fromkeys(links))))
    items.sort(key=lambda a: order.index(a.pipeline))
    items.sort(key=lambda a: a.days[-1], reverse=True)
    items.sort(key=lambda a: a.severity != CRITICAL)
    return items


__all__ = ["attention_items", "mark_missing"]
