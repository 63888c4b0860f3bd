"""Callbacks for missed deadlines (run by the triggerer): say loudly what is late and where to look."""

from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger("mlscale.deadlines")


async def log_missed_deadline(context: dict[str, Any] | None = None, **kwargs: Any) -> None:
    """Log a missed freshness deadline with the DAG, run and what consumers should expect."""
    context = context or {}
    dag_run = context.get("dag_run")
    logger.error("DEADLINE MISSED: %s run %s (partition %s) is not finished by its deadline: %s. Downstream "
                 "readers see the previous day's data until it completes; check the run's task logs.",
                 kwargs.get("dag_id") or getattr(dag_run, "dag_id", "?"), getattr(dag_run, "run_id", "?"),
                 getattr(dag_run, "partition_key", "?"), kwargs.get("what", "data"))
