"""Bootstrap draws for the bias audit and the training ceiling: count metrics, average precision, percentile
intervals.

What these functions guarantee:

* Count metrics (selection rate, TPR, FPR, precision) come from confusion counts, elementwise, so one
  call gives the point value or every resample at once; NaN where a metric is undefined (precision: 0).
* Average precision of a resample equals sklearn's ``average_precision_score`` on the rows repeated as
  often as the resample holds them (tied scores form one threshold); NaN where one class only remains.
* Resampling is seeded by a seed and names (attribute, group, metric), so the same inputs and seed give
  the same draws whatever order the groups are evaluated in.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from typing import Any

import numpy as np

#: A resampling batch holds about this many row multiplicities (rows x resamples), bounding its memory.
_BATCH_CELLS = 2_000_000


def count_metrics(tp: Any, fp: Any, fn: Any, tn: Any) -> dict[str, np.ndarray]:
    """Selection rate, TPR, FPR, precision from confusion counts (NaN where undefined; precision 0 then)."""
    tp, fp, fn, tn = (np.asarray(x, dtype=np.float64) for x in (tp, fp, fn, tn))
    with np.errstate(invalid="ignore", divide="ignore"):
        return {"selection_rate": (tp + fp) / (tp + fp + fn + tn), "true_positive_rate": tp / (tp + fn),
                "false_positive_rate": fp / (fp + tn), "precision": np.where(tp + fp > 0, tp / (tp + fp), 0.0)}


def average_precision_draws(y: np.ndarray, score: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Average precision of each resample given as whole-number row multiplicities (an ``(r, m)`` matrix).

    Row ``i`` equals sklearn's ``average_precision_score`` on the rows repeated ``weights[i]`` times
    (tied scores form one threshold, as there); NaN where a resample holds one class only.
    """
    order = np.argsort(-np.asarray(score, dtype=np.float64), kind="stable")
    s, yy = np.asarray(score)[order], np.asarray(y, dtype=np.float64)[order]
    ends = np.flatnonzero(np.r_[s[1:] != s[:-1], True])
    w = np.asarray(weights, dtype=np.float64)[:, order]
    tp = np.cumsum(w * yy, axis=1)[:, ends]
    fp = np.cumsum(w * (1.0 - yy), axis=1)[:, ends]
    precision = tp / np.maximum(tp + fp, 1.0)  # where tp + fp == 0 no positive is added either
    with np.errstate(invalid="ignore", divide="ignore"):
        ap = (np.diff(tp, axis=1, prepend=0.0) * precision).sum(axis=1) / tp[:, -1]
    ap[(tp[:, -1] == 0) | (fp[:, -1] == 0)] = np.nan
    return ap


def average_precision_bootstrap(y: np.ndarray, score: np.ndarray, resamples: int,
                                rng: np.random.Generator) -> np.ndarray:
    """``resamples`` average precisions of row resamples (with replacement) of one group; NaN for no rows."""
    return paired_average_precision_bootstrap(y, {"score": score}, resamples, rng)["score"]


def paired_average_precision_bootstrap(y: np.ndarray, scores: Mapping[str, np.ndarray], resamples: int,
                                       rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Average precision of each of ``scores`` on the same ``resamples`` row resamples (paired draws: a ratio
    of two scores' draws is a draw of the ratio); NaN for no rows."""
    m = len(y)
    if m == 0:
        return {name: np.full(resamples, np.nan) for name in scores}
    step = max(1, _BATCH_CELLS // m)
    out: dict[str, list[np.ndarray]] = {name: [] for name in scores}
    for start in range(0, resamples, step):
        r = min(step, resamples - start)
        idx = rng.integers(0, m, size=(r, m)) + (np.arange(r) * m)[:, None]
        weights = np.bincount(idx.ravel(), minlength=r * m).reshape(r, m)
        for name, score in scores.items():
            out[name].append(average_precision_draws(y, score, weights))
    return {name: np.concatenate(parts) for name, parts in out.items()}


def cluster_count_draws(clusters: np.ndarray, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """Confusion counts ``(resamples, 4)`` of cluster resamples: ``clusters`` is ``(k, 4)``, one row of counts
    per cluster (e.g. per customer); each resample draws ``k`` clusters with replacement and sums their rows.

    Rows of one cluster move together, so the draws keep the within-cluster correlation that a row bootstrap
    ignores (a customer's many transactions are not independent evidence)."""
    k = len(clusters)
    if k == 0:
        return np.zeros((resamples, 4))
    step, out = max(1, _BATCH_CELLS // k), []
    for start in range(0, resamples, step):
        r = min(step, resamples - start)
        weights = rng.multinomial(k, np.full(k, 1.0 / k), size=r)
        out.append(weights @ np.asarray(clusters, dtype=np.float64))
    return np.vstack(out)


def seeded_rng(seed: int, *names: str) -> np.random.Generator:
    """A generator determined by ``seed`` and ``names`` alone (CRC32 of each name)."""
    return np.random.default_rng([seed, *(zlib.crc32(n.encode()) for n in names)])


def percentile_interval(draws: np.ndarray, level: float) -> tuple[float | None, float | None]:
    """The central ``level`` percentile interval of the finite draws; ``(None, None)`` when there are none."""
    d = draws[np.isfinite(draws)]
    if d.size == 0:
        return None, None
    lo, hi = np.percentile(d, [50 * (1 - level), 50 * (1 + level)])
    return float(lo), float(hi)


__all__ = ["average_precision_bootstrap", "average_precision_draws", "cluster_count_draws", "count_metrics",
           "paired_average_precision_bootstrap", "percentile_interval", "seeded_rng"]
