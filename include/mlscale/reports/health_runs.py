"""The health report's run-level checks: task runs that failed, and model versions nobody audited.

Failed runs come from the records the failure callback of every mlscale task writes
(:mod:`mlscale.reports.failures`); a version is *unaudited* when it was registered before D and has
neither a bias report nor a gate decision by D (the automatic audit after training did not run or failed).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from mlscale.reports.failures import TASK_FAILURES
from mlscale.reports.health_sources import SourceReader, pipeline_row
from mlscale.reports.health_types import ATTENTION, NO_DATA, PipelineDay

FAILED, UNAUDITED = "failed_runs", "unaudited_versions"


def task_failures(src: SourceReader, days: Sequence[str]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """Failed tries per (DAG id, day), oldest first."""
    found: dict[tuple[str, str], list[dict[str, Any]]] = {}
    count = 0
    for day in days:
        for stored in src.listing(f"{TASK_FAILURES}/dt={day}"):
            doc = src.json("task_failures", stored.key)
            if isinstance(doc, dict) and doc.get("dag_id"):
                found.setdefault((str(doc["dag_id"]), day), []).append(doc)
                count += 1
    src.note("task_failures", count)
    for docs in found.values():
        docs.sort(key=lambda d: str(d.get("recorded_at") or ""))
    return found


def flag_failures(pipelines: dict[str, list[PipelineDay]], failures: dict[tuple[str, str], list[dict[str, Any]]],
                  days: Sequence[str]) -> None:
    """Flag ``failed_runs`` on each pipeline and day with a failed task (adding the pipeline if it is new)."""
    for (dag_id, day), docs in sorted(failures.items()):
        rows = pipelines.setdefault(dag_id, [pipeline_row(dag_id, d, status=NO_DATA) for d in days])
        index = next((i for i, r in enumerate(rows) if r.day == day), None)
        if index is None:
            continue
        row = rows[index]
        detail = {**row.detail, "failures": [{k: d.get(k) for k in ("task_id", "run_id", "run_type", "try_number",
                                                                      "error")} for d in docs]}
        rows[index] = dataclasses.replace(row, status=ATTENTION, flags=tuple(dict.fromkeys((*row.flags, FAILED))),
                                          detail=detail)


def unaudited_versions(models: list[dict[str, Any]], day: str) -> list[dict[str, Any]]:
    """Versions registered before ``day`` with no bias verdict and no gate decision."""
    return [m for m in models if m["registered_day"] < day and not m.get("bias_verdict")
            and not m.get("gate_decision")]


def flag_unaudited(pipelines: dict[str, list[PipelineDay]], models: list[dict[str, Any]], day: str) -> None:
    """Flag ``unaudited_versions`` on ``audit_bias``'s row of ``day``."""
    waiting = unaudited_versions(models, day)
    rows = pipelines.get("audit_bias")
    if not waiting or not rows or rows[-1].day != day:
        return
    row = rows[-1]
    detail = {**row.detail, "unaudited": [{"model": m["model"], "version": m["version"],
                                           "registered_day": m["registered_day"]} for m in waiting]}
    rows[-1] = dataclasses.replace(row, status=ATTENTION, flags=tuple(dict.fromkeys((*row.flags, UNAUDITED))),
                                   detail=detail)


def failure_message(name: str, rows: list[PipelineDay], on: str) -> str:
    last = rows[-1]
    failures = last.detail.get("failures", [])
    newest = failures[-1] if failures else {}
    return (f"{name}: task runs failed {on}; {last.day}: {len(failures)} failed "
            f"({', '.join(sorted({str(f.get('task_id')) for f in failures}))}); latest: task "
            f"{newest.get('task_id')} of run {newest.get('run_id')} (try {newest.get('try_number')}): "
            f"{str(newest.get('error'))[:300]}")


def unaudited_message(rows: list[PipelineDay]) -> str:
    waiting = rows[-1].detail.get("unaudited", [])
    names = ", ".join(f"{w['model']} version {w['version']} (registered {w['registered_day']})" for w in waiting[-5:])
    return (f"audit_bias: {len(waiting)} registered version(s) have no bias audit and no gate decision: {names}; "
            "the automatic audit after training did not run or failed: trigger audit_bias with the version")
