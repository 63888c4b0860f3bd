"""The compressed online variant: a prefix of the boosting rounds within the PR-AUC tolerance, faster to
predict one event, loadable as a booster; and the gate's check of its tolerance."""

from __future__ import annotations

import numpy as np
import xgboost as xgb
from mlscale.governance.gate import _compressed_variant
from mlscale.training.compress import compress
from mlscale.training.model import StoredModel


def _data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 12)).astype(np.float32)
    logit = 1.5 * x[:, 0] - x[:, 1] + 0.8 * x[:, 2] * x[:, 3] - 3.0
    return x, (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int8)


def test_a_prefix_of_the_rounds_within_tolerance_predicts_faster() -> None:
    x, y = _data(20_000, 1)
    hx, hy = _data(8_000, 2)
    booster = xgb.train({"max_depth": 4, "eta": 0.1, "objective": "binary:logistic", "nthread": 1},
                        xgb.DMatrix(x, label=y), num_boost_round=300)
    from sklearn.metrics import average_precision_score

    full = float(average_precision_score(hy, booster.inplace_predict(hx)))
    doc, raw = compress(algorithm="xgboost", raw=bytes(booster.save_raw("ubj")), block=hx, labels=hy,
                        full_pr_auc=full, tolerance=0.01, review_budget=0.05)
    assert doc["available"] and raw is not None
    assert doc["rounds"] < doc["of_rounds"] == 300
    assert full - doc["pr_auc"] <= 0.01 and doc["full_pr_auc"] == full
    assert doc["predict_us"] > 0 and doc["full_predict_us"] > 0   # measured (the figure itself: bench_serving)
    assert doc["speedup"] == doc["full_predict_us"] / doc["predict_us"]
    small = xgb.Booster()
    small.load_model(bytearray(raw))
    assert small.num_boosted_rounds() == doc["rounds"]
    np.testing.assert_allclose(small.inplace_predict(hx[:50]), booster[: doc["rounds"]].inplace_predict(hx[:50]))
    assert doc["tried"][-1]["rounds"] == doc["rounds"]


def test_no_variant_for_lightgbm_or_when_nothing_is_within_tolerance() -> None:
    x, y = _data(4_000, 3)
    doc, raw = compress(algorithm="lightgbm", raw=b"", block=x, labels=y, full_pr_auc=0.5, tolerance=0.01,
                        review_budget=0.05)
    assert not doc["available"] and raw is None and "lightgbm" in doc["why"]
    booster = xgb.train({"max_depth": 3, "objective": "binary:logistic"}, xgb.DMatrix(x, label=y), num_boost_round=20)
    doc, raw = compress(algorithm="xgboost", raw=bytes(booster.save_raw("ubj")), block=x, labels=y,
                        full_pr_auc=1.01, tolerance=0.0, review_budget=0.05)   # nothing can reach it
    assert not doc["available"] and raw is None and len(doc["tried"]) == 5


def test_the_gate_refuses_a_variant_beyond_the_tier_tolerance() -> None:
    def model(pr_auc: float) -> StoredModel:
        return StoredModel(name="m", version="3", algorithm="xgboost", features=("a",), raw=b"", doc={"compressed": {
            "available": True, "rounds": 20, "of_rounds": 100, "pr_auc": pr_auc, "full_pr_auc": 0.40, "speedup": 3.0}})

    evidence: dict = {}
    assert _compressed_variant(model(0.395), 0.01, evidence) == []
    assert evidence["compressed"]["drop"] == 0.40 - 0.395
    refused = _compressed_variant(model(0.35), 0.01, {})
    assert len(refused) == 1 and "beyond the tolerance 0.01" in refused[0]
    assert _compressed_variant(StoredModel(name="m", version="1", algorithm="xgboost", features=(), raw=b""), 0.01,
                               {}) == []
