"""Drift verdicts from two feature profiles: the training reference and one day's data.

``compare_profiles`` reads only the profiles (histograms, category counts, KLL sketches), so its cost is
independent of how many rows either side summarises. Per feature:

* numeric: PSI over the reference's bins plus a null bin, and the KS statistic. ``ks`` is the sketch KS
  (:func:`~mlscale.monitoring.statistics.ks_from_sketches`, within twice the KLL rank error of the exact
  statistic) floored at ``ks_binned``, the exact ECDF difference at the bin edges, which never exceeds the
  exact KS; drifted when ``psi >= thresholds.psi`` or ``ks >= thresholds.ks``;
* categorical: PSI, Jensen-Shannon distance (natural log) and total variation over the aligned categories
  plus ``__other__`` and ``__null__``; drifted when ``psi >= thresholds.psi`` or ``js >= thresholds.js``.

A prediction column (e.g. ``score``) is one more numeric feature; list it in ``critical`` to make any
shift of the predictions decide the verdict on its own.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from mlscale.monitoring.profile import (
    CategoricalSummary,
    ColumnSummary,
    FeatureProfile,
    NumericSummary,
    ProfileMismatchError,
)
from mlscale.monitoring.statistics import (
    DEFAULT_EPSILON,
    align_categories,
    js_distance,
    ks_from_histograms,
    ks_from_sketches,
    psi,
    total_variation,
)

logger = logging.getLogger(__name__)

Verdict = Literal["drift_detected", "no_drift", "insufficient_data"]


@dataclass(frozen=True)
class DriftThresholds:
    """When a feature counts as drifted and when the day as a whole does.

    A feature drifts when one of its statistics reaches its threshold (``>=``). The day drifts when the
    share of drifted features reaches ``share`` or any feature named in ``critical`` drifts. Either side
    with fewer than ``min_rows`` rows gives the verdict ``insufficient_data``. ``epsilon`` floors bin
    proportions in PSI.
    """

    psi: float = 0.2
    ks: float = 0.1
    js: float = 0.1
    share: float = 0.3
    min_rows: int = 1000
    critical: tuple[str, ...] = ()
    epsilon: float = DEFAULT_EPSILON

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["critical"] = list(self.critical)
        return d


@dataclass(frozen=True)
class FeatureDrift:
    """Statistics and decision for one feature; statistics that do not apply are None."""

    name: str
    kind: Literal["numeric", "categorical", "missing"]
    drifted: bool
    reasons: tuple[str, ...]  #: which statistic reached which threshold (or why nothing was decided)
    critical: bool = False
    psi: float | None = None
    ks: float | None = None
    ks_sketch: float | None = None
    ks_binned: float | None = None
    js: float | None = None
    total_variation: float | None = None
    reference_count: int = 0  #: non-null values
    current_count: int = 0
    reference_null_share: float | None = None
    current_null_share: float | None = None
    mean_shift_sd: float | None = None  #: (current mean - reference mean) / reference std
    new_categories: tuple[str, ...] = field(default=())  #: up to 20 values absent from a complete reference

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["reasons"], d["new_categories"] = list(self.reasons), list(self.new_categories)
        return d


@dataclass(frozen=True)
class DriftResult:
    """The day's verdict plus one :class:`FeatureDrift` per reference feature (reference order)."""

    verdict: Verdict
    drift_detected: bool
    share_drifted: float
    n_features: int
    drifted_features: tuple[str, ...]
    critical_drifted: tuple[str, ...]
    reference_rows: int
    current_rows: int
    thresholds: DriftThresholds
    features: tuple[FeatureDrift, ...]

    def feature(self, name: str) -> FeatureDrift:
        for f in self.features:
            if f.name == name:
                return f
        raise KeyError(f"no feature {name!r} in this drift result")

    def as_dict(self) -> dict[str, Any]:
        """JSON-serialisable (plain ints, floats, strings, lists, None)."""
        return {"verdict": self.verdict, "drift_detected": self.drift_detected,
                "share_drifted": self.share_drifted, "n_features": self.n_features,
                "drifted_features": list(self.drifted_features), "critical_drifted": list(self.critical_drifted),
                "reference_rows": self.reference_rows, "current_rows": self.current_rows,
                "thresholds": self.thresholds.as_dict(), "features": [f.as_dict() for f in self.features]}


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _share(n: int, total: int) -> float | None:
    return None if total == 0 else n / total


def _reasons(stats: dict[str, float | None], limits: dict[str, float]) -> tuple[str, ...]:
    return tuple(f"{name} {value:.4f} >= {limits[name]}" for name, value in stats.items()
                 if value is not None and value >= limits[name])


def _numeric(name: str, ref: NumericSummary, cur: NumericSummary, th: DriftThresholds) -> dict[str, Any]:
    if ref.edges != cur.edges:
        raise ProfileMismatchError(
            f"feature {name!r}: the current profile was binned on other edges than the reference; build it "
            "with profile_table(..., edges=reference_edges(reference))")
    out: dict[str, Any] = {}
    if ref.count + ref.nulls and cur.count + cur.nulls:
        out["psi"] = psi(list(ref.hist) + [ref.nulls], list(cur.hist) + [cur.nulls], th.epsilon)
    if ref.count and cur.count:
        out["ks_sketch"] = ks_from_sketches(ref.kll, cur.kll)
        out["ks_binned"] = ks_from_histograms(ref.hist, cur.hist)
        out["ks"] = max(out["ks_sketch"], out["ks_binned"])
    std = ref.std
    if std and ref.mean is not None and cur.mean is not None:
        out["mean_shift_sd"] = (cur.mean - ref.mean) / std
    out["reasons"] = _reasons({"psi": out.get("psi"), "ks": out.get("ks")}, {"psi": th.psi, "ks": th.ks})
    return out


def _categorical(ref: CategoricalSummary, cur: CategoricalSummary, th: DriftThresholds) -> dict[str, Any]:
    labels, ref_counts, cur_counts = align_categories(ref, cur)
    out: dict[str, Any] = {}
    if ref_counts.sum() and cur_counts.sum():
        out["psi"] = psi(ref_counts, cur_counts, th.epsilon)
        out["js"] = js_distance(ref_counts, cur_counts)
        out["total_variation"] = total_variation(ref_counts, cur_counts)
    if ref.other == 0:
        known = ref.counts()
        out["new_categories"] = tuple(v for v, n in cur.values if v not in known and n > 0)[:20]
    out["reasons"] = _reasons({"psi": out.get("psi"), "js": out.get("js")}, {"psi": th.psi, "js": th.js})
    return out


def _feature(name: str, ref: ColumnSummary, cur: ColumnSummary | None, th: DriftThresholds,
             enough: bool) -> FeatureDrift:
    critical = name in th.critical
    if cur is None:
        return FeatureDrift(name, "missing", enough, ("absent from the current profile",), critical,
                            reference_count=ref.count)
    if ref.kind != cur.kind:
        return FeatureDrift(name, ref.kind, enough, (f"kind changed from {ref.kind} to {cur.kind}",), critical,
                            reference_count=ref.count, current_count=cur.count)
    if isinstance(ref, NumericSummary) and isinstance(cur, NumericSummary):
        stats = _numeric(name, ref, cur, th)
    elif isinstance(ref, CategoricalSummary) and isinstance(cur, CategoricalSummary):
        stats = _categorical(ref, cur, th)
    else:  # pragma: no cover - kinds are equal above
        raise ProfileMismatchError(f"feature {name!r}: unknown summary types")
    reasons = stats.pop("reasons")
    if not enough:
        reasons = ("insufficient data: not decided",)
    return FeatureDrift(name=name, kind=ref.kind, drifted=enough and bool(reasons), reasons=reasons,
                        critical=critical, reference_count=ref.count, current_count=cur.count,
                        reference_null_share=_share(ref.nulls, ref.count + ref.nulls),
                        current_null_share=_share(cur.nulls, cur.count + cur.nulls),
                        psi=_float(stats.get("psi")), ks=_float(stats.get("ks")),
                        ks_sketch=_float(stats.get("ks_sketch")), ks_binned=_float(stats.get("ks_binned")),
                        js=_float(stats.get("js")), total_variation=_float(stats.get("total_variation")),
                        mean_shift_sd=_float(stats.get("mean_shift_sd")),
                        new_categories=tuple(stats.get("new_categories", ())))


def compare_profiles(reference: FeatureProfile, current: FeatureProfile,
                     thresholds: DriftThresholds | None = None, families: Mapping[str, str] | None = None,
                     ) -> DriftResult:
    """Compare ``current`` with ``reference`` feature by feature and decide the verdict.

    ``families`` maps columns that encode one input together (a one-hot's columns) to that input: the drifted
    share counts inputs, so a one-hot of ten categories weighs as one input, not ten.

    Every reference feature is reported; one absent from ``current`` counts as drifted. Features only in
    ``current`` are not monitored. Raises :class:`ProfileMismatchError` when a numeric feature was binned
    on other edges than the reference's.
    """
    th = thresholds or DriftThresholds()
    enough = reference.rows >= th.min_rows and current.rows >= th.min_rows
    features = tuple(_feature(name, ref, current.columns.get(name), th, enough)
                     for name, ref in reference.columns.items())
    drifted = tuple(f.name for f in features if f.drifted)
    critical = tuple(f.name for f in features if f.drifted and f.critical)
    family = dict(families or {})
    inputs = {family.get(f.name, f.name) for f in features}
    share = len({family.get(name, name) for name in drifted}) / len(inputs) if inputs else 0.0
    verdict: Verdict
    if not enough:
        verdict = "insufficient_data"
    else:
        verdict = "drift_detected" if (features and share >= th.share) or critical else "no_drift"
    extra = sorted(set(current.columns) - set(reference.columns))
    if extra:
        logger.info("compare_profiles: columns not in the reference, not monitored: %s", extra)
    logger.info("drift verdict %s: %d/%d features drifted (%s), reference %d rows, current %d rows",
                verdict, len(drifted), len(features), ", ".join(drifted) or "none", reference.rows, current.rows)
    return DriftResult(verdict=verdict, drift_detected=verdict == "drift_detected", share_drifted=float(share),
                       n_features=len(features), drifted_features=drifted, critical_drifted=critical,
                       reference_rows=reference.rows, current_rows=current.rows, thresholds=th, features=features)
