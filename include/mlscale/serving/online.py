"""Entity features for online scoring, from the Feast online store (SQLite embedded, Redis in the stack).

The online store holds, per entity, the row last materialised by ``sync_feature_store``: after the sync of day
D it holds the as-of table of D, which is exactly what batch scoring looks up for the events of D+1. The columns
are named like the batch model inputs (``<view>__<feature>``), so both paths feed the shared
:func:`mlscale.training.inputs.with_event_features`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from mlscale.training.inputs import feature_sets_of, looked_up_columns
from mlscale.training.spec import ModelSpec

logger = logging.getLogger(__name__)


class FeatureStoreUnavailable(RuntimeError):
    """The online store could not be read (down, locked, misconfigured): the request gets the fallback."""


@dataclass(frozen=True)
class Lookup:
    values: dict[str, np.ndarray]       #: column -> float64 values, one per row (NaN: unknown)
    cold: list[tuple[str, ...]]         #: per row, the feature sets with no online row for its entity


class OnlineFeatures:
    def __init__(self, store: Any, spec: ModelSpec) -> None:
        self.store = store
        self.sets = feature_sets_of(spec)
        self.refs = [f"{fs.table}:{name}" for fs in self.sets for name in fs.feature_columns()]
        self.columns = [ref.replace(":", "__", 1) for ref in self.refs]
        if self.columns != looked_up_columns(spec):
            raise ValueError(f"{spec.name}: online feature columns do not follow the model's input order")
        self.entities = list(dict.fromkeys(fs.entity for fs in self.sets))
        self._by_set = [(fs.name, [f"{fs.table}__{name}" for name in fs.feature_columns()]) for fs in self.sets]

    def lookup(self, frame: Any) -> Lookup:
        """The online values for the rows of ``frame`` (which holds every entity column, composites included)."""
        n = len(frame)
        if not self.refs:
            return Lookup({}, [()] * n)
        entity_rows = [{k: ("" if v is None or v != v else v) for k, v in zip(self.entities, values, strict=True)}
                       for values in zip(*(frame[e].tolist() for e in self.entities), strict=True)]
        try:
            response = self.store.get_online_features(features=self.refs, entity_rows=entity_rows,
                                                      full_feature_names=True).to_dict()
        except Exception as exc:  # noqa: BLE001 - any store failure becomes the documented fallback
            raise FeatureStoreUnavailable(f"the online store could not be read: {type(exc).__name__}: {exc}") from exc
        values = {c: np.array([np.nan if v is None else v for v in response[c]], dtype=np.float64)
                  for c in self.columns}
        missing = {name: np.all([np.isnan(values[c]) for c in columns], axis=0) for name, columns in self._by_set}
        cold = [tuple(name for name, flags in missing.items() if flags[i]) for i in range(n)]
        return Lookup(values, cold)
