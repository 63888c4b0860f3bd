"""Recording a task's resource use: run work under a :class:`~mlscale.usage.sampler.UsageSampler`, then fill
the record with the workload the result reports and its cost, write it and log its summary line."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from mlscale.lake import Lake
from mlscale.usage.cost import load_prices, usage_cost
from mlscale.usage.sampler import UsageRecord, UsageSampler, write_usage
from mlscale.usage.workload import workload_of

logger = logging.getLogger(__name__)


def finished_record(usage: UsageSampler, result: Any, *, dag_id: str, task_id: str, run_id: str, try_number: int,
                    day: str, map_index: int = -1) -> UsageRecord:
    """The record of ``usage``'s finished block, with ``result``'s workload and the cost at today's prices."""
    record = usage.record(dag_id=dag_id, task_id=task_id, run_id=run_id, try_number=try_number, day=day)
    record.map_index = map_index
    for name, value in workload_of(result).items():
        setattr(record, name, value)
    record.cost = usage_cost(record, load_prices())
    return record


def recorded(lake: Lake, client: Any, work: Callable[..., Any], *, dag_id: str, task_id: str, run_id: str,
             day: str, try_number: int = 1, **kwargs: Any) -> Any:
    """``work(client=client, lake=lake, run_id=run_id, **kwargs)`` with its resource use recorded to ``lake``
    (accounting never fails the work: a record that cannot be written is a warning)."""
    with UsageSampler(client) as usage:
        result = work(client=client, lake=lake, run_id=run_id, **kwargs)
    try:
        record = finished_record(usage, result, dag_id=dag_id, task_id=task_id, run_id=run_id, try_number=try_number,
                                 day=day)
        write_usage(lake, record)
        logger.info("%s.%s %s", dag_id, task_id, record.summary())
    except Exception as exc:  # noqa: BLE001 - accounting must never fail the work it accounts for
        logger.warning("resource use of %s.%s not recorded (%s: %s)", dag_id, task_id, type(exc).__name__, exc)
    return result
