"""What a trainer returns: the final model bytes and how training went."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class TrainOutcome:
    algorithm: str               # "xgboost" or "lightgbm"
    model: bytes                 # the final model (XGBoost UBJSON, LightGBM text), cut at the best round
    rounds: int                  # rounds kept (best round)
    rounds_trained: int          # rounds boosted in total, across attempts
    rounds_this_attempt: int     # rounds boosted by this attempt (fewer after a resume)
    resumed_from: int            # checkpoint round this attempt started from (0: from scratch)
    best_score: float            # validation metric at the best round
    stopped_early: bool
    history: tuple[float, ...]   # validation metric per evaluation of this attempt
    metric: str
    mode: str                    # "single" or "distributed"
    seconds: float = 0.0

    def with_seconds(self, seconds: float) -> TrainOutcome:
        return dataclasses.replace(self, seconds=round(seconds, 3))

    def summary(self) -> dict[str, Any]:
        """Everything but the model bytes (for logs, XCom and registry tags)."""
        doc = dataclasses.asdict(self)
        doc.pop("model")
        doc["history"] = [round(v, 6) for v in self.history]
        return doc
