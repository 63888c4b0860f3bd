"""Compute prices (``include/policies/prices.yaml``) and the cost of a task's resource use.

A task's cost = CPU seconds / 3600 x ``vcpu_hour`` + memory held (each worker's peak, for the task's wall time)
in GiB-hours x ``gb_hour`` + GPU seconds / 3600 x ``gpu_hour``; on ``spot`` capacity, less ``spot_discount``.
CPU is priced as used (busy seconds), memory as reserved (the peak for the whole run): what a cluster that
scales to the work would bill, not what an idle always-on cluster costs (the idle report says that).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import Field

from mlscale.config_schema import StrictModel, load_yaml_document
from mlscale.errors import NotRetryable
from mlscale.layout import config_dir

GIB = 2**30


class PricesError(ValueError, NotRetryable):
    """The price table is invalid; the message names the file and the key."""


class ComputeDoc(StrictModel):
    vcpu_hour: float = Field(ge=0)
    gb_hour: float = Field(ge=0)
    gpu_hour: float = Field(default=0.0, ge=0)
    spot_discount: float = Field(default=0.0, ge=0, le=1)
    capacity: str = "on_demand"


class PricesDoc(StrictModel):
    compute: ComputeDoc


@dataclass(frozen=True)
class ComputePrices:
    vcpu_hour: float
    gb_hour: float
    gpu_hour: float = 0.0
    spot_discount: float = 0.0
    capacity: str = "on_demand"

    def cost(self, *, cpu_seconds: float, gib_hours: float, gpu_seconds: float = 0.0) -> dict[str, float]:
        factor = 1.0 - self.spot_discount if self.capacity == "spot" else 1.0
        parts = {"cpu": cpu_seconds / 3600 * self.vcpu_hour * factor, "memory": gib_hours * self.gb_hour * factor,
                 "gpu": gpu_seconds / 3600 * self.gpu_hour * factor}
        return {**{k: round(v, 8) for k, v in parts.items()}, "total": round(sum(parts.values()), 8)}


def load_prices(path: str | Path | None = None) -> ComputePrices:
    path = Path(path) if path is not None else config_dir("policies") / "prices.yaml"
    doc = load_yaml_document(path, PricesDoc, PricesError, "price table")
    if doc.compute.capacity not in ("on_demand", "spot"):
        raise PricesError(f"{path}: compute.capacity {doc.compute.capacity!r} is not on_demand or spot")
    return ComputePrices(**doc.compute.model_dump())


def usage_cost(record: Any, prices: ComputePrices) -> dict[str, float]:
    """The cost of one :class:`~mlscale.usage.sampler.UsageRecord`."""
    gib_hours = sum(record.peak_memory_bytes.values()) / GIB * record.wall_seconds / 3600
    return prices.cost(cpu_seconds=record.cpu_seconds, gib_hours=gib_hours, gpu_seconds=record.gpu_seconds)


def compute_summary(records: list[Any]) -> dict[str, Any]:
    """Compute use and cost of a day's task records, in total and per DAG and task (largest cost first)."""
    by_task: dict[tuple[str, str], dict[str, float]] = {}
    for r in records:
        row = by_task.setdefault((r.dag_id, r.task_id), {"runs": 0, "wall_seconds": 0.0, "cpu_seconds": 0.0,
                                                         "gpu_seconds": 0.0, "cost": 0.0})
        row["runs"] += 1
        row["wall_seconds"] += r.wall_seconds
        row["cpu_seconds"] += r.cpu_seconds
        row["gpu_seconds"] += r.gpu_seconds
        row["cost"] += float((r.cost or {}).get("total", 0.0))
    ordered = sorted(by_task.items(), key=lambda kv: (-kv[1]["cost"], kv[0]))
    rows: list[dict[str, Any]] = [{"dag_id": d, "task_id": t, **{k: round(v, 6) for k, v in row.items()}}
                                  for (d, t), row in ordered]
    totals = {k: round(sum(row[k] for _, row in ordered), 6)
              for k in ("runs", "wall_seconds", "cpu_seconds", "gpu_seconds", "cost")}
    return {"totals": totals, "by_task": rows}
