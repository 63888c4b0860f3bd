"""A compressed variant of a trained model for online scoring: the first k boosting rounds of the booster.

Online latency grows with the trees a prediction walks. The variant keeps the smallest prefix of the rounds
(10, 20, 30, 50 or 70 % of them) whose holdout PR-AUC stays within the model risk tier's
``promotion.metric_tolerance`` of the full model, so it ranks the same events almost the same way; a later
round only corrects what earlier rounds got wrong, so a prefix is a valid, smaller model (no retraining, and
XGBoost's slicing keeps it exact). The comparison — rounds, PR-AUC of both, single-event predict latency of
both, the speedup — goes into the model card data (``model.json`` ``compressed``) and the training report;
the file is ``models/<model>/<version>/model_compressed.bin``. The promotion gate re-checks the tolerance
when the serving policy serves the variant. XGBoost only (a LightGBM model gets no variant; the report says so).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

SHARES = (0.1, 0.2, 0.3, 0.5, 0.7)
LATENCY_CALLS = 300


def compress(*, algorithm: str, raw: bytes, block: np.ndarray, labels: np.ndarray, full_pr_auc: float,
             tolerance: float, review_budget: float) -> tuple[dict[str, Any], bytes | None]:
    """(the comparison, the variant's bytes or None) for a model and its float32 holdout ``block``."""
    if algorithm != "xgboost":
        return {"available": False, "why": f"{algorithm}: no compressed variant (XGBoost boosters only)"}, None
    import xgboost as xgb
    from sklearn.metrics import average_precision_score

    booster = xgb.Booster()
    booster.load_model(bytearray(raw))
    booster.set_param({"nthread": 1})
    rounds = booster.num_boosted_rounds()
    if rounds < 2 or len(np.unique(labels)) < 2:
        return {"available": False, "why": f"{rounds} rounds / one class in the holdout: nothing to compress"}, None
    tried = []
    for share in SHARES:
        k = max(1, int(round(rounds * share)))
        prefix = booster[:k]
        scores = np.asarray(prefix.inplace_predict(block), dtype=np.float64)
        pr_auc = float(average_precision_score(labels, scores))
        tried.append({"rounds": k, "pr_auc": round(pr_auc, 5)})
        if pr_auc >= full_pr_auc - tolerance:
            from mlscale.training.evaluate import holdout_metrics

            at_budget = holdout_metrics(labels, scores, review_budget=review_budget)
            full_us, prefix_us = _latency_us(booster, block), _latency_us(prefix, block)
            doc = {"available": True, "rounds": k, "of_rounds": rounds, "pr_auc": pr_auc, "full_pr_auc": full_pr_auc,
                   "tolerance": tolerance, "within_tolerance": True, "predict_us": prefix_us,
                   "threshold_at_budget": at_budget.threshold_at_budget,
                   "precision_at_budget": at_budget.precision_at_budget,
                   "recall_at_budget": at_budget.recall_at_budget,
                   "full_predict_us": full_us, "speedup": full_us / prefix_us if prefix_us else None, "tried": tried}
            logger.info("compressed variant: %d of %d rounds, holdout PR-AUC %.4f vs %.4f (tolerance %g), single-event "
                        "predict %.0f us vs %.0f us (x%.2f)", k, rounds, pr_auc, full_pr_auc, tolerance, prefix_us,
                        full_us, doc["speedup"] or 0)
            return doc, bytes(prefix.save_raw("ubj"))
    return {"available": False, "why": f"no prefix of the {rounds} rounds within PR-AUC tolerance {tolerance}",
            "tried": tried, "full_pr_auc": full_pr_auc}, None


def _latency_us(booster: Any, block: np.ndarray) -> float:
    """Median microseconds of a one-row ``inplace_predict`` (what one online request costs the model)."""
    rows = block[: min(len(block), LATENCY_CALLS)]
    times = []
    for i in range(len(rows)):
        started = time.perf_counter()
        booster.inplace_predict(rows[i:i + 1])
        times.append(time.perf_counter() - started)
    return float(np.median(times) * 1e6)


def store_compressed_variant(lake: Any, stored: Any, holdout: Any, *, full_pr_auc: float, tolerance: float,
                             review_budget: float) -> dict[str, Any]:
    """Compress ``stored`` (a :class:`~mlscale.training.model.StoredModel`) on its holdout frame (model inputs and
    ``label``), store the variant beside it and its comparison in its ``model.json`` (``compressed``)."""
    from mlscale.training.dataset import LABEL
    from mlscale.training.model import COMPRESSED_FILE, model_prefix

    block = np.ascontiguousarray(holdout[list(stored.features)].to_numpy(dtype=np.float32))
    doc, raw = compress(algorithm=stored.algorithm, raw=stored.raw, block=block,
                        labels=holdout[LABEL].to_numpy(), full_pr_auc=full_pr_auc, tolerance=tolerance,
                        review_budget=review_budget)
    if raw is not None:
        lake.write_bytes(f"{model_prefix(stored.name, stored.version)}/{COMPRESSED_FILE}", raw)
    stored.doc["compressed"] = doc
    stored.save(lake)
    return doc
