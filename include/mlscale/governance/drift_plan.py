"""What the drift monitor watches for a model, and how, derived from its specification and feature sets.

Comparing like with like:

* an **entity feature** (a column of a feature set) repeats its entity's value on every event of that entity:
  a hundred merchants' values copied onto twenty thousand payments are not twenty thousand observations. It
  is profiled once per entity active that day (``entity``);
* a **windowed feature** needs its window's worth of history before one day is comparable with the next:
  until the reference days have it, the column is ``warming_up`` (``window_days``). Sums and counts grow with
  the days the window holds, so they are monitored per day of history (``per_day``: divided by the days
  available, at most the window), which is comparable from the second day of the world on;
* a feature that moves **by construction** (``days_since_first_seen`` rises by one a day for every returning
  entity) says nothing about the world: it is left out, and the report says why (``excluded``);
* the **score** depends on every input, so it warms up with the slowest of them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from mlscale.training.model import SCORE

BY_CONSTRUCTION = {"days_since_first_seen": "rises by one a day for every returning entity, by construction"}
PER_DAY_KINDS = ("sum", "count")


@dataclass(frozen=True)
class MonitoredColumn:
    name: str
    window_days: int = 0       #: days of history its value needs to be comparable from day to day
    entity: str = ""           #: the entity column it is tested per (one row per entity and day); "" per event
    per_day: bool = False      #: divided by the days of history its window holds (sums and counts)
    excluded: str = ""         #: why it is not monitored ("" when it is)
    family: str = ""           #: the input it encodes, when one of several columns (a one-hot's feature)

    @property
    def history_needed(self) -> int:
        """Days of history the reference days need before this column is judged."""
        return 1 if self.per_day else self.window_days

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _feature_set_columns(fs: Any) -> list[MonitoredColumn]:
    columns = []
    for feature in fs.features:
        for window in fs.windows_of(feature):
            names = ([f"{feature.name}_{label}_{window}d" for label in feature.labels()]
                     if feature.kind == "category_share" else [f"{feature.name}_{window}d"])
            family = f"{fs.table}__{feature.name}_{window}d" if feature.kind == "category_share" else ""
            columns += [MonitoredColumn(f"{fs.table}__{name}", window, fs.entity, feature.kind in PER_DAY_KINDS,
                                        family=family) for name in names]
    for feature in fs.point_features:
        name = f"{fs.table}__{feature.name}"
        if feature.kind in BY_CONSTRUCTION:
            columns.append(MonitoredColumn(name, entity=fs.entity, excluded=BY_CONSTRUCTION[feature.kind]))
        else:
            columns.append(MonitoredColumn(name, int(feature.baseline_window or 1), fs.entity))
    return columns


def input_families(plan: list[MonitoredColumn]) -> dict[str, str]:
    """Column → the input it encodes, for the columns of a one-hot (a drifted share counts inputs, so adding
    a category to a one-hot never dilutes it)."""
    return {c.name: c.family for c in plan if c.family}


def monitoring_plan(spec: Any, model_features: tuple[str, ...] | list[str] | None = None) -> list[MonitoredColumn]:
    """One entry per model input (restricted to ``model_features``, the stored model's inputs, when given) plus
    the score, in the model's input order."""
    from mlscale.features import load_feature_set
    from mlscale.training.inputs import feature_sets_of

    columns = [c for fs in feature_sets_of(spec) for c in _feature_set_columns(fs)]
    by_name = {c.name: c for c in columns}
    for event in spec.event_features:
        window = 0
        if event.kind == "ratio" and event.over:
            set_name, feature = event.over.split(".", 1)
            over = by_name.get(f"{load_feature_set(set_name).table}__{feature}")
            window = over.window_days if over else 0
        family = event.name if event.kind == "one_hot" else ""
        columns += [MonitoredColumn(name, window, family=family) for name in event.columns()]
    if model_features is not None:
        wanted = set(model_features)
        columns = [c for c in columns if c.name in wanted]
    score_window = max((c.window_days for c in columns if not c.excluded), default=0)
    return [*columns, MonitoredColumn(SCORE, score_window)]
