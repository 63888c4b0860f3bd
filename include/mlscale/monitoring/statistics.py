"""Distribution-shift statistics computed from profile summaries (histograms, category counts, sketches).

All functions take counts, never rows: their cost depends on the number of bins/categories and on the
sketch size, not on how many rows were profiled.

* :func:`psi`: Population Stability Index, ``sum((q - p) * ln(q / p))`` over bins, with each proportion
  floored at ``epsilon`` (default 1e-4) so that an empty bin stays finite: a category absent from the
  reference that takes 5 % of the current rows contributes ``0.05 * ln(0.05 / 1e-4) ≈ 0.31``.
* :func:`js_distance`: Jensen-Shannon distance with natural logarithms (``sqrt`` of the divergence, in
  ``[0, sqrt(ln 2)]``), as ``scipy.spatial.distance.jensenshannon`` and Evidently compute it.
* :func:`total_variation`: ``0.5 * sum |p - q|``, in ``[0, 1]``.
* :func:`ks_from_sketches`: the two-sample Kolmogorov-Smirnov statistic ``max |F_ref - F_cur|`` of two
  KLL sketches, evaluated at every item either sketch retains (where their CDFs step). Exact when both
  sketches are exact (at most ``k`` values each); otherwise each CDF is within the sketch's rank error
  :func:`~mlscale.monitoring.profile.kll_rank_error`, so the statistic is within twice that of the exact one.
* :func:`ks_from_histograms`: the exact ECDF difference at the bin edges, a lower bound of the exact KS.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
from datasketches import kll_doubles_sketch

from mlscale.monitoring.profile import OTHER, CategoricalSummary

logger = logging.getLogger(__name__)

DEFAULT_EPSILON = 1e-4
NULL = "__null__"


def _proportions(counts: Sequence[int] | np.ndarray) -> np.ndarray:
    arr = np.asarray(counts, dtype=np.float64)
    total = arr.sum()
    if total <= 0:
        raise ValueError("cannot compare an empty distribution (all counts are zero)")
    return arr / total


def psi(reference: Sequence[int] | np.ndarray, current: Sequence[int] | np.ndarray,
        epsilon: float = DEFAULT_EPSILON) -> float:
    """Population Stability Index of two count vectors over the same bins (0 for identical shapes)."""
    p = np.maximum(_proportions(reference), epsilon)
    q = np.maximum(_proportions(current), epsilon)
    return float(np.sum((q - p) * np.log(q / p)))


def js_distance(reference: Sequence[int] | np.ndarray, current: Sequence[int] | np.ndarray) -> float:
    """Jensen-Shannon distance (natural log) of two count vectors over the same bins."""
    p, q = _proportions(reference), _proportions(current)
    m = 0.5 * (p + q)
    with np.errstate(divide="ignore", invalid="ignore"):
        kl_p = np.where(p > 0, p * np.log(p / m), 0.0).sum()
        kl_q = np.where(q > 0, q * np.log(q / m), 0.0).sum()
    return float(np.sqrt(max(0.5 * (kl_p + kl_q), 0.0)))


def total_variation(reference: Sequence[int] | np.ndarray, current: Sequence[int] | np.ndarray) -> float:
    """Total variation distance ``0.5 * sum |p - q|`` of two count vectors over the same bins."""
    return float(0.5 * np.abs(_proportions(reference) - _proportions(current)).sum())


def ks_from_histograms(reference: Sequence[int] | np.ndarray, current: Sequence[int] | np.ndarray) -> float:
    """``max_j |F_ref(e_j) - F_cur(e_j)|`` over the inner edges of two histograms (nulls excluded)."""
    p, q = _proportions(reference), _proportions(current)
    if len(p) < 2:
        return 0.0
    return float(np.max(np.abs(np.cumsum(p)[:-1] - np.cumsum(q)[:-1])))


def ks_from_sketches(reference: bytes, current: bytes) -> float:
    """Two-sample KS statistic of two serialised KLL sketches (see the module docstring for its error)."""
    a = kll_doubles_sketch.deserialize(bytes(reference))
    b = kll_doubles_sketch.deserialize(bytes(current))
    if a.is_empty() or b.is_empty():
        raise ValueError("cannot compare an empty sketch")
    items = np.fromiter((item for sketch in (a, b) for item, _ in sketch), dtype=np.float64)
    points = np.unique(items[~np.isnan(items)]).tolist()
    fa = np.asarray(a.get_cdf(points, inclusive=True), dtype=np.float64)[:-1]
    fb = np.asarray(b.get_cdf(points, inclusive=True), dtype=np.float64)[:-1]
    return float(np.max(np.abs(fa - fb)))


def align_categories(reference: CategoricalSummary, current: CategoricalSummary,
                     ) -> tuple[list[str], np.ndarray, np.ndarray]:
    """``(labels, ref_counts, cur_counts)`` over the same bins: shared categories, ``__other__``, ``__null__``.

    A category gets its own bin only where both sides know its exact count: it is kept on each side, or
    that side kept every value (``other == 0``). Counts that cannot be told apart on both sides (a value
    kept on one side but pooled in the other's ``__other__``) go to ``__other__`` on both sides.
    """
    ref, cur = reference.counts(), current.counts()
    labels = sorted(v for v in ref.keys() | cur.keys()
                    if (v in ref or reference.other == 0) and (v in cur or current.other == 0))
    known = set(labels)
    ref_other = reference.other + sum(n for v, n in ref.items() if v not in known)
    cur_other = current.other + sum(n for v, n in cur.items() if v not in known)
    ref_counts = np.array([ref.get(v, 0) for v in labels] + [ref_other, reference.nulls], dtype=np.int64)
    cur_counts = np.array([cur.get(v, 0) for v in labels] + [cur_other, current.nulls], dtype=np.int64)
    return labels + [OTHER, NULL], ref_counts, cur_counts
