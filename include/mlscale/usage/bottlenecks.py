"""Bottleneck analysis: what each pipeline's time is made of, fitted from the tasks' usage records.

Every Dask and Spark task records its wall time and the workload its result reports (rows, features per row;
:mod:`mlscale.usage.workload`). For each stage (a DAG's task) a cost model is fitted by non-negative least
squares over its runs::

    wall ≈ a + b·rows + c·rows·features

``a`` is the fixed cost (cluster start, model load, listing, commits), ``b`` the per-row latency and ``c``
the per-row-and-feature cost. Terms the runs cannot separate are left out and the basis says so: without a
row count only ``a`` (the mean); when the feature count never varies, ``c`` is folded into ``b``; a term
needs runs at two different workloads at least. At a stage's median workload the fit attributes its time to
the three terms and predicts what doubling the volume would take. A pipeline's time is the sum of its
stages'; the stage with the largest share dominates. The report (``reports/bottlenecks/<day>/``) gives each
fit with its R² (``None`` for a fixed cost alone: it explains nothing) and, over the runs of every stage with a
volume term, the R² within stages (the variance around each stage's mean that the workload explains) beside the
pooled R² (which the stages' different sizes alone inflate), so a weak model is visible, not hidden.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import nnls

TERMS = ("fixed", "volume", "features")
MIN_RUNS = 3


@dataclass(frozen=True)
class StageFit:
    """The fitted cost model of one stage (a DAG's task) and what it says at the median workload."""

    dag_id: str
    task_id: str
    runs: int
    basis: str                                   #: which terms the runs could fit, in words
    fixed_s: float                               #: a
    per_row_us: float                            #: b, microseconds per row
    per_row_feature_ns: float                    #: c, nanoseconds per row and feature
    r2: float | None                             #: None when the runs' times do not vary (nothing to explain)
    median_rows: int | None
    median_features: int | None
    median_wall_s: float
    total_wall_s: float
    shares: dict[str, float] = field(default_factory=dict)   #: at the median workload: fixed / volume / features
    doubled_volume_s: float = 0.0                # predicted wall time at twice the median rows

    def predict(self, rows: float | None, features: float | None) -> float:
        r, f = float(rows or 0), float(features or 0)
        return self.fixed_s + self.per_row_us * 1e-6 * r + self.per_row_feature_ns * 1e-9 * r * f

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _r2(actual: np.ndarray, predicted: np.ndarray) -> float | None:
    total = float(((actual - actual.mean()) ** 2).sum())
    if total <= 1e-12:
        return None
    return round(1.0 - float(((actual - predicted) ** 2).sum()) / total, 4)


def _design(rows: np.ndarray, features: np.ndarray) -> tuple[np.ndarray, list[str], str]:
    """The columns the runs can fit: intercept, rows, rows × features (each needs two distinct values)."""
    columns, names = [np.ones_like(rows)], ["fixed"]
    if len(set(rows.tolist())) >= 2:
        columns.append(rows)
        names.append("volume")
        varied = len(set(features.tolist())) >= 2 and np.all(features > 0)
        if varied:
            columns.append(rows * features)
            names.append("features")
            basis = "a + b·rows + c·rows·features"
        elif np.all(features > 0):
            basis = f"a + b·rows (features constant at {int(features[0])}: their cost is in b)"
        else:
            basis = "a + b·rows (no feature count reported)"
    else:
        basis = "a only (every run had the same rows)" if np.any(rows > 0) else "a only (no row count reported)"
    return np.column_stack(columns), names, basis


def fit_stage(dag_id: str, task_id: str, records: Sequence[Any]) -> StageFit:
    """Fit one stage's cost model from its usage records (see the module docstring)."""
    with_rows = [r for r in records if r.rows is not None]
    used = with_rows if len(with_rows) >= MIN_RUNS else list(records)   # runs that report rows, when enough do
    wall = np.array([float(r.wall_seconds) for r in used])
    rows = np.array([float(r.rows or 0) for r in used])
    with_features = all(r.features for r in used)      # a feature term only when every run reports the count
    features = np.array([float(r.features or 0) if with_features else 0.0 for r in used])
    if len(used) < MIN_RUNS:
        x, names, basis = np.ones((len(used), 1)), ["fixed"], f"a only (fewer than {MIN_RUNS} runs)"
    elif len(with_rows) < MIN_RUNS:
        x, names, basis = np.ones((len(used), 1)), ["fixed"], \
            f"a only (fewer than {MIN_RUNS} runs report their rows)" if with_rows else "a only (no row count reported)"
    else:
        x, names, basis = _design(rows, features)
    scale = np.abs(x).max(axis=0)
    scale[scale == 0] = 1.0
    coef, _ = nnls(x / scale, wall)
    coef = dict(zip(names, coef / scale, strict=True))
    a, b, c = coef.get("fixed", 0.0), coef.get("volume", 0.0), coef.get("features", 0.0)
    fitted_rows = [r.rows for r in records if r.rows is not None]
    fitted_features = [r.features for r in records if r.features]
    median_rows = int(statistics.median(fitted_rows)) if fitted_rows else None
    median_features = int(statistics.median(fitted_features)) if fitted_features else None
    fit = StageFit(dag_id=dag_id, task_id=task_id, runs=len(records), basis=basis, fixed_s=round(a, 6),
                   per_row_us=round(b * 1e6, 6), per_row_feature_ns=round(c * 1e9, 6),
                   r2=_r2(wall, x @ np.array([coef[n] for n in names])) if len(names) > 1 else None,
                   median_rows=median_rows, median_features=median_features,
                   median_wall_s=round(float(np.median(wall)), 4), total_wall_s=round(float(wall.sum()), 4))
    at_median = fit.predict(median_rows, median_features)
    parts = {"fixed": a, "volume": b * (median_rows or 0), "features": c * (median_rows or 0) * (median_features or 0)}
    shares = {k: round(v / at_median, 4) if at_median > 0 else 0.0 for k, v in parts.items()}
    doubled = fit.predict(2 * (median_rows or 0), median_features)
    return StageFit(**{**asdict(fit), "shares": shares, "doubled_volume_s": round(doubled, 4)})


def _dominant(shares: dict[str, float]) -> str:
    return max(TERMS, key=lambda t: shares.get(t, 0.0))


@dataclass(frozen=True)
class PipelineBottleneck:
    dag_id: str
    stages: list[StageFit]
    median_wall_s: float                          #: the sum of the stages' median wall times
    dominant_stage: str                           #: the stage with the largest share of it
    dominant_term: str                            #: ... and what that stage's time is mostly made of
    shares: dict[str, float]                      #: the pipeline's time by term, at the stages' median workloads
    doubled_volume_s: float
    doubling_factor: float                        #: doubled_volume_s / the predicted time now

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "stages": [s.as_dict() for s in self.stages]}


def pipeline_bottleneck(dag_id: str, stages: list[StageFit]) -> PipelineBottleneck:
    stages = sorted(stages, key=lambda s: -s.median_wall_s)
    now = sum(s.predict(s.median_rows, s.median_features) for s in stages)
    doubled = sum(s.doubled_volume_s for s in stages)
    by_term = {t: sum(s.shares.get(t, 0.0) * s.predict(s.median_rows, s.median_features) for s in stages)
               for t in TERMS}
    shares = {t: round(v / now, 4) if now > 0 else 0.0 for t, v in by_term.items()}
    top = stages[0]
    return PipelineBottleneck(dag_id=dag_id, stages=stages, median_wall_s=round(sum(s.median_wall_s for s in stages), 4),
                              dominant_stage=top.task_id, dominant_term=_dominant(top.shares), shares=shares,
                              doubled_volume_s=round(doubled, 4), doubling_factor=round(doubled / now, 3) if now else 1.0)


def pooled_r2(records: Iterable[Any], fits: dict[tuple[str, str], StageFit]) -> dict[str, float | None]:
    """How much of the runs' time the fits explain, over every run of a stage with a volume term:
    ``pooled`` — of all the variance (which the stages' different sizes alone mostly explain), and
    ``within_stages`` — of the variance around each stage's mean (what the workload terms explain)."""
    rows = [(r.dag_id, r.task_id, float(r.wall_seconds), fit.predict(r.rows, r.features)) for r in records
            if r.rows is not None and (fit := fits.get((r.dag_id, r.task_id))) is not None and fit.r2 is not None]
    if len(rows) < 2:
        return {"pooled": None, "within_stages": None}
    actual = np.array([a for _, _, a, _ in rows])
    predicted = np.array([p for _, _, _, p in rows])
    by_stage: dict[tuple[str, str], list[float]] = defaultdict(list)
    for dag, task, a, _ in rows:
        by_stage[(dag, task)].append(a)
    means = {k: float(np.mean(v)) for k, v in by_stage.items()}
    around = float(sum((a - means[(d, t)]) ** 2 for d, t, a, _ in rows))
    residual = float(((actual - predicted) ** 2).sum())
    return {"pooled": _r2(actual, predicted),
            "within_stages": round(1.0 - residual / around, 4) if around > 1e-12 else None}


def analyse(records: Sequence[Any]) -> dict[str, Any]:
    """The bottleneck document of a set of usage records: each pipeline, its stages' fits, the pooled R²."""
    records = [r for r in records if getattr(r, "succeeded", True)]   # failed tries: cost, not a workload's time
    by_stage: dict[tuple[str, str], list[Any]] = defaultdict(list)
    for r in records:
        by_stage[(r.dag_id, r.task_id)].append(r)
    fits = {key: fit_stage(*key, runs) for key, runs in sorted(by_stage.items())}
    by_dag: dict[str, list[StageFit]] = defaultdict(list)
    for (dag_id, _), fit in fits.items():
        by_dag[dag_id].append(fit)
    pipelines = sorted((pipeline_bottleneck(d, s) for d, s in by_dag.items()), key=lambda p: -p.median_wall_s)
    days = sorted({r.day for r in records})
    r2 = pooled_r2(records, fits)
    return {"records": len(records), "days": days, "pooled_r2": r2["pooled"], "within_stage_r2": r2["within_stages"],
            "pipelines": [p.as_dict() for p in pipelines]}


def describe(doc: dict[str, Any]) -> list[str]:
    """One line per pipeline for logs and the command line."""
    lines = [f"{doc['records']} task runs over {len(doc['days'])} day(s); R² {doc['within_stage_r2']} within stages "
             f"(the workload terms), {doc['pooled_r2']} pooled over every fitted run"]
    for p in doc["pipelines"]:
        top = p["stages"][0]
        lines.append(f"{p['dag_id']}: {p['median_wall_s']:.1f} s per run (median), {100 * p['shares']['fixed']:.0f}% "
                     f"fixed, {100 * p['shares']['volume']:.0f}% volume, {100 * p['shares']['features']:.0f}% "
                     f"features; dominated by {p['dominant_stage']} ({p['dominant_term']}, {top['basis']}, "
                     f"R² {top['r2']}); doubling the volume: x{p['doubling_factor']}")
    return lines
