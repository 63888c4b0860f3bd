"""Drift of one day against a rolling reference of recent days, with thresholds learnt from those days.

A fixed PSI cut-off says nothing about how much a column moves on an ordinary day: a column summarising a
hundred merchants moves more from day to day than one summarising twenty thousand payments. So, per
column (the NannyML way):

* the **reference** is the pooled distribution of the reference days (recent days of the same regime);
* the day's **statistics** are the PSI (on ``bins`` quantile bins of the reference, plus a null bin) and the
  two-sample KS statistic, both from KLL sketches, so nothing re-reads rows;
* the **thresholds** come from the reference days themselves: each reference day is compared with the pool
  of the others (leave one out), and a statistic drifts when it exceeds the upper prediction bound of those
  comparisons' logarithms (the statistics are right-skewed, their logarithms close to normal):
  ``exp(mean + t(1 - alpha, n - 1) * max(std, min_log_std) * sqrt(1 + 1/n))`` — the Student quantile widens
  the bound when few reference days estimate the mean and std — and a floor (``min_psi``, ``min_ks``) below which no shift matters
  in practice. A day tests every column, so ``alpha`` is small: 1e-4 per column and statistic keeps false alarms
  near one in fifty days even over ~80 columns (columns move together, so fewer in practice). Statistics below a
  quarter of their floor count as that (differences under the noise floor are all alike).

Columns the caller marks (``warming_up``, ``excluded``) are reported with their reason and never judged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
from datasketches import kll_doubles_sketch

from mlscale.monitoring.profile import FeatureProfile, NumericSummary, merge_sketches
from mlscale.monitoring.statistics import DEFAULT_EPSILON, ks_from_sketches, psi

Status = Literal["ok", "drifted", "warming_up", "excluded", "insufficient_data"]


@dataclass(frozen=True)
class RollingSettings:
    """How the rolling reference is drawn and when a column counts as drifted."""

    reference_days: int = 14        #: days pooled as the reference (two whole weeks: weekdays weigh equally)
    min_reference_days: int = 4     #: fewer usable days: nothing is judged (insufficient_data)
    lookback_days: int = 42         #: how far back reference days are looked for (days that drifted are skipped)
    alpha: float = 1e-4             #: per column and statistic: the chance an unchanged day exceeds its threshold
    min_log_std: float = 0.25       #: the spread of log(statistic) is taken as at least this (a few reference
                                    #: days can agree by chance; sampling noise alone spreads PSI and KS this much)
    min_psi: float = 0.02           #: ... and beyond these floors
    min_ks: float = 0.03
    bins: int = 10
    min_values: int = 30            #: fewer non-null values on either side: the column is not judged

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Pooled:
    """Values of one column pooled over days: a KLL sketch plus exact counts."""

    kll: bytes
    count: int
    nulls: int

    @classmethod
    def of(cls, summaries: Sequence[NumericSummary]) -> Pooled:
        return cls(kll=merge_sketches([s.kll for s in summaries]) if len(summaries) > 1 else summaries[0].kll,
                   count=sum(s.count for s in summaries), nulls=sum(s.nulls for s in summaries))


def sketch_psi(reference: Pooled, current: Pooled, bins: int = 10, epsilon: float = DEFAULT_EPSILON) -> float:
    """PSI over the reference's quantile bins (from its sketch) plus a null bin; both sides' shares from sketches."""
    ref = kll_doubles_sketch.deserialize(bytes(reference.kll))
    cur = kll_doubles_sketch.deserialize(bytes(current.kll))
    if ref.is_empty() or cur.is_empty():
        edges: list[float] = []
    else:
        quantiles = np.asarray(ref.get_quantiles(list(np.linspace(0, 1, bins + 1)[1:-1])), dtype=np.float64)
        edges = np.unique(quantiles[np.isfinite(quantiles)]).tolist()

    def shares(sketch: Any, side: Pooled) -> np.ndarray:
        total = side.count + side.nulls
        if side.count == 0 or not edges:
            body = np.array([side.count], dtype=np.float64)
        else:
            cdf = np.asarray(sketch.get_cdf(edges, inclusive=True), dtype=np.float64)  # len(edges) + 1, ends at 1
            body = np.diff(np.concatenate([[0.0], cdf])) * side.count
        return np.append(body, side.nulls) / max(total, 1)

    return psi(shares(ref, reference), shares(cur, current), epsilon)


def _statistics(reference: Pooled, current: Pooled, bins: int) -> tuple[float, float | None]:
    value_psi = sketch_psi(reference, current, bins)
    value_ks = ks_from_sketches(reference.kll, current.kll) if reference.count and current.count else None
    return value_psi, value_ks


@dataclass(frozen=True)
class ColumnDrift:
    """One column's comparison with the rolling reference (statistics are None where not computed)."""

    name: str
    status: Status
    reason: str = ""
    psi: float | None = None
    ks: float | None = None
    psi_threshold: float | None = None
    ks_threshold: float | None = None
    reference_psi_mean: float | None = None   #: mean and std of log(statistic) of the reference days, each
    reference_psi_std: float | None = None    #: against the others (leave one out)
    reference_ks_mean: float | None = None
    reference_ks_std: float | None = None

    @property
    def drifted(self) -> bool:
        return self.status == "drifted"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _threshold(values: Sequence[float], alpha: float, floor: float, min_log_std: float,
               ) -> tuple[float, float, float]:
    """The upper prediction bound at ``1 - alpha`` of one more value, from the values' logarithms (at least
    ``floor``), and the logarithms' mean and std (see the module docstring)."""
    from scipy.stats import t

    logs = np.log(np.maximum(np.asarray(values, dtype=np.float64), floor / 4))
    n = len(logs)
    mean, std = float(logs.mean()), float(logs.std(ddof=1))
    bound = mean + float(t.ppf(1 - alpha, n - 1)) * max(std, min_log_std) * float(np.sqrt(1 + 1 / n))
    return max(float(np.exp(bound)), floor), mean, std


def compare_column(name: str, reference_days: Sequence[NumericSummary], current: NumericSummary,
                   settings: RollingSettings) -> ColumnDrift:
    """Compare one column of the day with its reference days (see the module docstring)."""
    pooled = Pooled.of(reference_days)
    if pooled.count < settings.min_values or current.count < settings.min_values:
        return ColumnDrift(name, "insufficient_data",
                           f"fewer than {settings.min_values} values (reference {pooled.count}, day {current.count})")
    loo_psi, loo_ks = [], []
    for i, day in enumerate(reference_days):
        others = [d for j, d in enumerate(reference_days) if j != i]
        if not day.count or not sum(o.count for o in others):
            continue
        p, k = _statistics(Pooled.of(others), Pooled.of([day]), settings.bins)
        loo_psi.append(p)
        if k is not None:
            loo_ks.append(k)
    if len(loo_psi) < 2:
        return ColumnDrift(name, "insufficient_data", "too few reference days with values to learn a threshold")
    value_psi, value_ks = _statistics(pooled, Pooled.of([current]), settings.bins)
    psi_limit, psi_mean, psi_std = _threshold(loo_psi, settings.alpha, settings.min_psi, settings.min_log_std)
    ks_limit, ks_mean, ks_std = _threshold(loo_ks if len(loo_ks) > 1 else [0.0, 0.0], settings.alpha,
                                           settings.min_ks, settings.min_log_std)
    reasons = []
    if value_psi > psi_limit:
        reasons.append(f"psi {value_psi:.4f} > {psi_limit:.4f}")
    if value_ks is not None and value_ks > ks_limit:
        reasons.append(f"ks {value_ks:.4f} > {ks_limit:.4f}")
    return ColumnDrift(name, "drifted" if reasons else "ok", "; ".join(reasons), psi=value_psi, ks=value_ks,
                       psi_threshold=psi_limit, ks_threshold=ks_limit, reference_psi_mean=psi_mean,
                       reference_psi_std=psi_std, reference_ks_mean=ks_mean, reference_ks_std=ks_std)


def compare_rolling(reference_days: Sequence[FeatureProfile], current: FeatureProfile, settings: RollingSettings,
                    names: Sequence[str], not_judged: Mapping[str, tuple[Status, str]] | None = None,
                    ) -> list[ColumnDrift]:
    """Each of ``names``: judged against ``reference_days``, or reported as ``not_judged`` says."""
    skip = dict(not_judged or {})
    out = []
    for name in names:
        if name in skip:
            out.append(ColumnDrift(name, skip[name][0], skip[name][1]))
            continue
        summary = current.columns.get(name)
        days = [s for s in (p.columns.get(name) for p in reference_days) if isinstance(s, NumericSummary)]
        if not isinstance(summary, NumericSummary):
            out.append(ColumnDrift(name, "insufficient_data", "not in the day's profile"))
        elif len(days) < settings.min_reference_days:
            out.append(ColumnDrift(name, "insufficient_data",
                                   f"{len(days)} reference days (at least {settings.min_reference_days} needed)"))
        else:
            out.append(compare_column(name, days, summary, settings))
    return out
