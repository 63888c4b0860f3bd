"""The bottleneck and right-sizing report: ``reports/bottlenecks/<day>/report.json`` and ``report.html``.

From the usage records of a window of days: each pipeline's fitted cost model (:mod:`mlscale.usage.bottlenecks`),
each stage's right-sizing advice (:func:`mlscale.sizing.advise_from_history`) and the compute cost per day and
per model version.
"""

from __future__ import annotations

import logging
from typing import Any

from mlscale.lake import Lake
from mlscale.layout import report_prefix
from mlscale.rendering import render
from mlscale.sizing import TARGET_CPU_BUSY, advise_from_history
from mlscale.usage.bottlenecks import analyse, describe
from mlscale.usage.history import by_stage, cost_by, usage_history

logger = logging.getLogger(__name__)


def bottleneck_document(lake: Lake, day: str, days: int, records: list[Any] | None = None) -> dict[str, Any]:
    """The report's document; ``records``: the window's usage records when the caller has read them already."""
    records = usage_history(lake, day, days) if records is None else records
    advice = [a for stage in by_stage(records).values() if (a := advise_from_history(stage)) is not None]
    return {"day": day, "days": days, "bottlenecks": analyse(records),
            "sizing": sorted((a.as_dict() for a in advice), key=lambda a: (a["dag_id"], a["task_id"])),
            "sizing_target_busy": TARGET_CPU_BUSY, "cost_by_day": cost_by(records, "day"),
            "cost_by_model_version": cost_by(records, "model_version")}


def write_bottleneck_report(lake: Lake, day: str, days: int = 30, records: list[Any] | None = None) -> dict[str, Any]:
    """Build and write the report of the ``days`` days ending ``day``; returns the document and its location."""
    doc = bottleneck_document(lake, day, days, records)
    folder = f"{report_prefix('bottlenecks')}/{day}"
    lake.write_json(f"{folder}/report.json", doc)
    lake.write_bytes(f"{folder}/report.html", render("bottlenecks.html.j2", doc=doc).encode())
    for line in describe(doc["bottlenecks"]):
        logger.info("bottlenecks: %s", line)
    for advice in doc["sizing"]:
        logger.info("right-sizing: %s.%s %s -> %s", advice["dag_id"], advice["task_id"],
                    "change" if advice["change"] else "keep", advice["recommended"])
    logger.info("bottleneck report: %s", lake.uri(f"{folder}/report.html"))
    return {**doc, "report": lake.uri(f"{folder}/report.html")}
