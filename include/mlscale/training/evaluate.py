"""Holdout metrics of a scored model: ranking quality, the review-budget view, and calibration."""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

RELIABILITY_BINS = 10


@dataclass(frozen=True)
class HoldoutMetrics:
    rows: int
    positives: int
    pr_auc: float
    roc_auc: float
    review_budget: float
    threshold_at_budget: float   # score of the last reviewed event at the budget
    precision_at_budget: float
    recall_at_budget: float
    brier: float
    reliability: tuple[dict[str, float], ...]  # per score bin: mean predicted, observed rate, count

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def scalars(self) -> dict[str, float]:
        """The single-number metrics (for the registry and comparisons)."""
        return {k: v for k, v in self.as_dict().items() if isinstance(v, (int, float)) and k != "reliability"}


def holdout_metrics(y: Any, score: Any, *, review_budget: float) -> HoldoutMetrics:
    """Metrics of ``score`` (probabilities) against ``y`` (0/1); precision/recall when the top ``review_budget``
    share of events by score is reviewed (ties broken by order, so exactly ``ceil(budget × n)`` are reviewed)."""
    from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

    y = np.asarray(y, dtype=np.int8)
    score = np.asarray(score, dtype=np.float64)
    both = 0 < y.sum() < len(y)
    reviewed = max(1, math.ceil(review_budget * len(y)))
    order = np.argsort(-score, kind="stable")[:reviewed]
    hits = int(y[order].sum())
    return HoldoutMetrics(
        rows=len(y), positives=int(y.sum()),
        pr_auc=float(average_precision_score(y, score)) if both else float("nan"),
        roc_auc=float(roc_auc_score(y, score)) if both else float("nan"),
        review_budget=review_budget, threshold_at_budget=float(score[order[-1]]) if len(order) else float("nan"),
        precision_at_budget=hits / reviewed, recall_at_budget=hits / max(1, int(y.sum())),
        brier=float(brier_score_loss(y, score)) if len(y) else float("nan"),
        reliability=reliability_curve(y, score))


def reliability_curve(y: Any, score: Any, bins: int = RELIABILITY_BINS) -> tuple[dict[str, float], ...]:
    """Events grouped by score quantile: mean predicted probability vs observed positive rate per group."""
    if len(y) == 0:
        return ()
    edges = np.unique(np.quantile(score, np.linspace(0, 1, bins + 1)))
    group = np.clip(np.searchsorted(edges, score, side="right") - 1, 0, max(0, len(edges) - 2))
    counts = np.bincount(group, minlength=len(edges) - 1 or 1)
    predicted = np.bincount(group, weights=score, minlength=len(counts))
    observed = np.bincount(group, weights=y, minlength=len(counts))
    return tuple({"mean_predicted": round(float(p / c), 6), "observed_rate": round(float(o / c), 6), "count": int(c)}
                 for p, o, c in zip(predicted, observed, counts, strict=True) if c)


def metrics_of_version(lake: Any, model: str, version: str | None, holdout: Any, budget: float
                       ) -> dict[str, float] | None:
    """A registered version's metrics on ``holdout`` (the same rows another version is judged on), or None:
    no version, no model files in the lake, or it needs features these rows lack (each logged)."""
    from mlscale.training.dataset import LABEL
    from mlscale.training.model import StoredModel

    if version is None:
        return None
    try:
        stored = StoredModel.load(lake, model, version)
    except FileNotFoundError:
        logger.warning("version %s of %s has no model files in the lake: not compared", version, model)
        return None
    missing = [f for f in stored.features if f not in holdout.columns]
    if missing:
        logger.warning("version %s of %s needs %d features these rows lack (e.g. %s): not compared",
                       version, model, len(missing), missing[0])
        return None
    return holdout_metrics(holdout[LABEL], stored.predict(holdout), review_budget=budget).scalars()


def compare(challenger: dict[str, float], champion: dict[str, float] | None) -> dict[str, Any]:
    """Metric differences challenger − champion on the same holdout (None when there is no champion)."""
    if not champion:
        return {"champion": None}
    keys = ("pr_auc", "roc_auc", "precision_at_budget", "recall_at_budget", "brier")
    return {k: round(challenger[k] - champion[k], 6) for k in keys if k in challenger and k in champion}
