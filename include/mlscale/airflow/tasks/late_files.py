"""Glue between ingestion and the ``rerun_late_files`` DAG: files that land after their day was committed.

A day's ingestion lists the files of the days before it (within the dedupe window) that its run did not read
(:func:`mlscale.ingest.completeness.late_files`). :func:`flag_late_files` puts them on the dataset's
``late_files_<dataset>`` asset event (or skips: no event when nothing came late); ``rerun_late_files``,
scheduled on those assets, turns each event into reruns of the days it names (:func:`late_reruns`), which
read the late files and start the partitioned DAGs downstream for their day.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

logger = logging.getLogger(__name__)


def flag_late_files(result: Mapping[str, Any], outlet_events: Any, asset: Any) -> dict[str, Any]:
    """Record the late files found by the ingestion run ``result`` (its XCom) on ``asset``'s event; raises
    ``AirflowSkipException`` when there are none, so no event is sent."""
    from airflow.sdk.exceptions import AirflowSkipException

    if result.get("dry_run"):
        raise AirflowSkipException("a dry run changes nothing: late files are rerun only after a real run finds them")
    late = {day: list(files) for day, files in sorted((result.get("late_files") or {}).items()) if files}
    if not late:
        raise AirflowSkipException(f"no file of the days before {result.get('dt')} landed after its day was committed")
    extra = {"dataset": result["dataset"], "days": sorted(late), "files": late, "found_by": result.get("run_id"),
             "found_on": result.get("dt")}
    outlet_events[asset].extra.update(extra)
    for day, files in late.items():
        logger.warning("%s: %d file(s) of %s landed after that day was committed: %s; rerun_late_files ingests "
                       "the day again", result["dataset"], len(files), day, ", ".join(files))
    return extra


def late_reruns(events: Iterable[Any]) -> list[dict[str, Any]]:
    """The ingestion runs that the late-file events ask for: one per dataset and day (``TriggerDagRunOperator``
    keyword arguments), each keying its raw event by its day so that the partitioned DAGs downstream follow."""
    wanted: dict[tuple[str, str], None] = {}
    for event in events:
        extra = getattr(event, "extra", None) or {}
        dataset = extra.get("dataset")
        for day in extra.get("days") or []:
            if dataset:
                wanted[(str(dataset), str(day))] = None
    reruns = [{"trigger_dag_id": f"ingest_{dataset}", "trigger_run_id": f"late_files__{day}__{uuid.uuid4().hex[:8]}",
               "conf": {"dt": day, "downstream": True}} for dataset, day in sorted(wanted)]
    for dataset, day in sorted(wanted):
        logger.info("rerunning ingest_%s for %s: files landed after the day was committed", dataset, day)
    if not reruns:
        logger.info("no late files named by the events that started this run: nothing to rerun")
    return reruns
