"""The health report's compute cost: what the tasks' recorded resource use cost per day and per model retrain.

From the usage records (``_meta/resource_usage/dt=D/``, priced when written with ``policies/prices.yaml``):
the total per day of the window, the cost per DAG over the window, and each retrain (a ``train_model`` task
run) with the model version it registered, its wall time and its cost. No records: "no data", never an error.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from mlscale.reports.health_sources import SourceReader
from mlscale.usage import read_usage

TRAINING_DAG = "train_model"


def _cost(record: Any) -> float:
    return float((record.cost or {}).get("total", 0.0))


def compute_cost(src: SourceReader, days: Sequence[str]) -> dict[str, Any]:
    """``{"by_day": [...], "by_dag": {...}, "retrains": [...], "total": …}`` of the window's usage records."""
    records = [r for day in days for r in read_usage(src.lake, day)]
    src.note("resource_usage", len(records))
    by_day: dict[str, float] = defaultdict(float)
    by_dag: dict[str, float] = defaultdict(float)
    for r in records:
        by_day[r.day] += _cost(r)
        by_dag[r.dag_id] += _cost(r)
    retrains = [{"day": r.day, "model_version": r.model_version or "(not registered)", "task_id": r.task_id,
                 "wall_seconds": r.wall_seconds, "cpu_seconds": r.cpu_seconds, "gpu_seconds": r.gpu_seconds,
                 "cost": round(_cost(r), 8)} for r in records if r.dag_id == TRAINING_DAG]
    return {"records": len(records), "total": round(sum(by_day.values()), 8),
            "by_day": [{"day": d, "cost": round(by_day.get(d, 0.0), 8)} for d in days],
            "by_dag": {k: round(v, 8) for k, v in sorted(by_dag.items(), key=lambda kv: -kv[1])},
            "retrains": sorted(retrains, key=lambda r: r["day"])}
