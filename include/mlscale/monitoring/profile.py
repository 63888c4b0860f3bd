"""Mergeable, JSON-serialisable summaries of a feature table, the unit that drift monitoring stores.

A :class:`FeatureProfile` summarises every monitored column of a table with a fixed-size state:

* numeric columns: row and null counts, exact counts on fixed bin edges, a KLL quantile sketch
  (Apache DataSketches ``kll_doubles_sketch``) and the first two moments;
* categorical columns (strings, booleans, dictionaries): exact counts of the ``max_categories`` most
  frequent values, the rest pooled in ``other``.

Guarantees:

* Merging is associative and commutative for every count (histogram, nulls, categories while no cap is
  hit). Merged sketches keep KLL's rank error bound (:func:`kll_rank_error`); moments merge with Chan's
  formula (exact up to float rounding).
* Profiles merge only when they agree on columns, kinds and bin edges; otherwise
  :class:`ProfileMismatchError` says which column differs.
* ``FeatureProfile.from_json(p.to_json()) == p`` (sketches travel base64-encoded).

Bins are left-closed: with inner edges ``e_0 < ... < e_m`` the ``m + 1`` bins are ``(-inf, e_0)``,
``[e_0, e_1)``, ..., ``[e_m, +inf)``. NaN counts as null; ``±inf`` fall in the outer bins and in the
sketch but not in the moments.
"""

from __future__ import annotations

import base64
import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
from datasketches import kll_doubles_sketch

logger = logging.getLogger(__name__)

FORMAT = "mlscale.feature_profile/1"
DEFAULT_KLL_K = 200
DEFAULT_BINS = 20
DEFAULT_MAX_CATEGORIES = 200
OTHER = "__other__"


class ProfileMismatchError(ValueError):
    """Two profiles cannot be merged or compared (different columns, kinds or bin edges)."""


def kll_rank_error(k: int = DEFAULT_KLL_K) -> float:
    """Normalised rank error of CDF/PMF queries on a KLL sketch of parameter ``k`` (99 % confidence)."""
    return float(kll_doubles_sketch.get_normalized_rank_error(k, True))


def merge_sketches(blobs: Sequence[bytes], k: int = DEFAULT_KLL_K) -> bytes:
    """One serialised KLL sketch summarising every input sketch (the KLL error bound is kept)."""
    merged = kll_doubles_sketch(k)
    for blob in blobs:
        merged.merge(kll_doubles_sketch.deserialize(bytes(blob)))
    return bytes(merged.serialize())


def edges_from_sketch(blob: bytes, bins: int = DEFAULT_BINS) -> tuple[float, ...]:
    """Finite inner edges at the ``0, 1/bins, ..., 1`` quantiles of a sketch (rank 0 and 1: the exact
    minimum and maximum), deduplicated and sorted.

    An empty sketch gives no edges (a single ``(-inf, +inf)`` bin); a constant column gives one edge.
    """
    sketch = kll_doubles_sketch.deserialize(bytes(blob))
    if sketch.is_empty():
        return ()
    points = np.asarray(sketch.get_quantiles(list(np.linspace(0.0, 1.0, bins + 1))), dtype=np.float64)
    points[0], points[-1] = sketch.get_min_value(), sketch.get_max_value()  # exact, unlike rank 0 / 1
    return tuple(float(e) for e in np.unique(points[np.isfinite(points)]))


@dataclass(frozen=True)
class NumericSummary:
    """Fixed-size summary of one numeric column; see the module docstring for the bin convention."""

    count: int  #: non-null values (NaN counts as null)
    nulls: int
    edges: tuple[float, ...]  #: finite inner edges, strictly increasing
    hist: tuple[int, ...]  #: ``len(edges) + 1`` exact counts
    kll: bytes = field(repr=False)  #: serialised ``kll_doubles_sketch`` of the non-null values
    finite: int = 0  #: values the moments cover
    mean: float | None = None
    m2: float | None = None  #: sum of squared deviations from the mean
    min: float | None = None
    max: float | None = None
    kind: Literal["numeric"] = "numeric"

    @property
    def std(self) -> float | None:
        """Population standard deviation of the finite values (None when there are none)."""
        return None if self.m2 is None or self.finite == 0 else math.sqrt(self.m2 / self.finite)

    def sketch(self) -> kll_doubles_sketch:
        return kll_doubles_sketch.deserialize(self.kll)

    def merge(self, other: NumericSummary, k: int, name: str = "?") -> NumericSummary:
        if self.edges != other.edges:
            raise ProfileMismatchError(
                f"column {name!r}: bin edges differ ({len(self.edges)} vs {len(other.edges)} edges); build "
                "both profiles with the same edges, e.g. edges=reference_edges(reference_profile)")
        n = self.finite + other.finite
        mean, m2 = self.mean, self.m2
        if other.finite and self.finite and mean is not None and other.mean is not None:
            delta = other.mean - mean
            mean = mean + delta * other.finite / n
            m2 = (m2 or 0.0) + (other.m2 or 0.0) + delta * delta * self.finite * other.finite / n
        elif other.finite:
            mean, m2 = other.mean, other.m2
        return NumericSummary(
            count=self.count + other.count, nulls=self.nulls + other.nulls, edges=self.edges,
            hist=tuple(a + b for a, b in zip(self.hist, other.hist, strict=True)),
            kll=merge_sketches([self.kll, other.kll], k), finite=n, mean=mean, m2=m2,
            min=_pick(min, self.min, other.min), max=_pick(max, self.max, other.max))

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "count": self.count, "nulls": self.nulls, "edges": list(self.edges),
                "hist": list(self.hist), "kll": base64.b64encode(self.kll).decode("ascii"),
                "finite": self.finite, "mean": self.mean, "m2": self.m2, "min": self.min, "max": self.max}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> NumericSummary:
        return cls(count=int(d["count"]), nulls=int(d["nulls"]), edges=tuple(float(e) for e in d["edges"]),
                   hist=tuple(int(c) for c in d["hist"]), kll=base64.b64decode(d["kll"]),
                   finite=int(d["finite"]), mean=d["mean"], m2=d["m2"], min=d["min"], max=d["max"])


@dataclass(frozen=True)
class CategoricalSummary:
    """Counts of the most frequent values of one categorical column (keys are strings)."""

    count: int  #: non-null values
    nulls: int
    values: tuple[tuple[str, int], ...]  #: (value, count), most frequent first, ties by value
    other: int = 0  #: values beyond the ``max_categories`` kept ones
    kind: Literal["categorical"] = "categorical"

    def counts(self) -> dict[str, int]:
        return dict(self.values)

    def merge(self, other: CategoricalSummary, max_categories: int) -> CategoricalSummary:
        counts = self.counts()
        for value, n in other.values:
            counts[value] = counts.get(value, 0) + n
        kept, dropped = cap_categories(counts.items(), max_categories)
        return CategoricalSummary(count=self.count + other.count, nulls=self.nulls + other.nulls,
                                  values=kept, other=self.other + other.other + dropped)

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "count": self.count, "nulls": self.nulls,
                "values": {v: n for v, n in self.values}, "other": self.other}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CategoricalSummary:
        kept, _ = cap_categories(((str(v), int(n)) for v, n in d["values"].items()), len(d["values"]))
        return cls(count=int(d["count"]), nulls=int(d["nulls"]), values=kept, other=int(d["other"]))


ColumnSummary = NumericSummary | CategoricalSummary


def cap_categories(items: Any, max_categories: int) -> tuple[tuple[tuple[str, int], ...], int]:
    """``(kept, dropped_count)``: the ``max_categories`` largest counts (ties by value), the rest summed."""
    ordered = sorted(items, key=lambda vn: (-vn[1], vn[0]))
    kept = tuple((str(v), int(n)) for v, n in ordered[:max_categories])
    return kept, int(sum(n for _, n in ordered[max_categories:]))


def _pick(fn: Any, a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    return a if b is None else float(fn(a, b))


@dataclass(frozen=True)
class FeatureProfile:
    """Summary of a table's monitored columns; mergeable across partitions and days."""

    rows: int
    columns: Mapping[str, ColumnSummary]
    kll_k: int = DEFAULT_KLL_K
    max_categories: int = DEFAULT_MAX_CATEGORIES

    def __post_init__(self) -> None:
        object.__setattr__(self, "columns", dict(self.columns))

    def numeric(self, name: str) -> NumericSummary:
        """The summary of numeric column ``name`` (TypeError if it is categorical)."""
        summary = self.columns[name]
        if not isinstance(summary, NumericSummary):
            raise TypeError(f"column {name!r} is {summary.kind}, not numeric")
        return summary

    def categorical(self, name: str) -> CategoricalSummary:
        """The summary of categorical column ``name`` (TypeError if it is numeric)."""
        summary = self.columns[name]
        if not isinstance(summary, CategoricalSummary):
            raise TypeError(f"column {name!r} is {summary.kind}, not categorical")
        return summary

    def merge(self, other: FeatureProfile) -> FeatureProfile:
        """Profile of the union of both tables' rows (see the module docstring for what is exact)."""
        if list(self.columns) != list(other.columns):
            raise ProfileMismatchError(
                f"profiles cover different columns: {sorted(set(self.columns) ^ set(other.columns))} "
                "appear in only one; profile partitions with the same columns=")
        merged: dict[str, ColumnSummary] = {}
        for name, a in self.columns.items():
            b = other.columns[name]
            if isinstance(a, NumericSummary) and isinstance(b, NumericSummary):
                merged[name] = a.merge(b, self.kll_k, name)
            elif isinstance(a, CategoricalSummary) and isinstance(b, CategoricalSummary):
                merged[name] = a.merge(b, self.max_categories)
            else:
                raise ProfileMismatchError(f"column {name!r} is {a.kind} in one profile and {b.kind} in the "
                                           "other; pass categorical=[...] consistently")
        return replace(self, rows=self.rows + other.rows, columns=merged)

    def as_dict(self) -> dict[str, Any]:
        """JSON-serialisable form: ``{"format", "rows", "kll_k", "max_categories", "columns": {...}}``."""
        return {"format": FORMAT, "rows": self.rows, "kll_k": self.kll_k, "max_categories": self.max_categories,
                "columns": {name: s.as_dict() for name, s in self.columns.items()}}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FeatureProfile:
        if d.get("format") != FORMAT:
            raise ValueError(f"not a feature profile of format {FORMAT!r}: format={d.get('format')!r}")
        columns: dict[str, ColumnSummary] = {}
        for name, s in d["columns"].items():
            columns[name] = NumericSummary.from_dict(s) if s["kind"] == "numeric" else CategoricalSummary.from_dict(s)
        return cls(rows=int(d["rows"]), columns=columns, kll_k=int(d["kll_k"]),
                   max_categories=int(d["max_categories"]))

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), allow_nan=False)

    @classmethod
    def from_json(cls, text: str | bytes) -> FeatureProfile:
        return cls.from_dict(json.loads(text))


def merge_profiles(*profiles: FeatureProfile) -> FeatureProfile:
    """Merge one or more profiles (e.g. of partitions or days) into the profile of all their rows."""
    if not profiles:
        raise ValueError("merge_profiles needs at least one profile")
    out = profiles[0]
    for p in profiles[1:]:
        out = out.merge(p)
    return out


def reference_edges(profile: FeatureProfile) -> dict[str, tuple[float, ...]]:
    """The bin edges of every numeric column of ``profile``: pass them as ``edges=`` to profile current data."""
    return {name: s.edges for name, s in profile.columns.items() if isinstance(s, NumericSummary)}
