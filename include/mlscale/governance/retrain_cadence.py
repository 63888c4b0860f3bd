"""How often to retrain a model: the decay of its labelled PR-AUC since training against the cost of a retrain.

Points: every drift report's labelled performance (``reports/drift/<model>/<day>/report.json``: the version
scored and its PR-AUC on a labelled day) at its *age*, the days between that labelled day and the last event
day of the version's training set. Fit: ``pr_auc = α_version + β·age``, one intercept per version and a
common slope, weighted by the day's positives (a PR-AUC over few frauds is noisy), with the slope's standard
error. The decay per day is ``-β`` when the slope is at least ``min_significance`` standard errors below zero,
else none is measured. For each candidate interval T the mean PR-AUC lost over a cycle (ages 1..T) is
``decay·(T+1)/2``; a retrain costs what the model's ``train_model`` runs cost on average (usage records, priced),
and the data pipelines' daily cost is shown beside it (paid whatever the interval). Recommended: the interval
with the lowest total of retrain cost and lost value when ``value_per_pr_auc_point_day`` is set; else the
longest interval whose mean loss stays within ``max_mean_pr_auc_drop``. The policy is
``include/policies/retrain_cadence.yaml``; a model adopts the result with ``training.retrain_every_days``.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field

from mlscale.config_schema import StrictModel, load_yaml_document
from mlscale.errors import NotRetryable
from mlscale.lake import Lake
from mlscale.layout import config_dir, report_prefix
from mlscale.rendering import render
from mlscale.training.report import svg_line

logger = logging.getLogger(__name__)

TRAINING_DAG = "train_model"
MODEL_DAGS = (TRAINING_DAG, "score_batch", "deploy_model")


class CadencePolicyError(ValueError, NotRetryable):
    """The retrain cadence policy is invalid; the message names the file and the key."""


class CadencePolicy(StrictModel):
    max_mean_pr_auc_drop: float = Field(default=0.01, gt=0, le=1)
    value_per_pr_auc_point_day: float = Field(default=0.0, ge=0)
    candidate_days: list[int] = Field(default_factory=lambda: [1, 2, 3, 5, 7, 14, 21, 30, 45, 60, 90], min_length=1)
    min_significance: float = Field(default=2.0, ge=0)


def load_cadence_policy(path: str | Path | None = None) -> CadencePolicy:
    path = Path(path) if path is not None else config_dir("policies") / "retrain_cadence.yaml"
    policy = load_yaml_document(path, CadencePolicy, CadencePolicyError, "retrain cadence policy")
    if any(d < 1 for d in policy.candidate_days):
        raise CadencePolicyError(f"{path}: candidate_days must be whole days >= 1")
    return policy


@dataclass(frozen=True)
class PerformancePoint:
    version: str
    day: str               #: the labelled day
    age_days: int          #: days since the last event day of the version's training set
    pr_auc: float
    positives: int
    labelled: int
    ceiling_pr_auc: float | None = None   #: the truth's PR-AUC on the same rows (synthetic worlds only)


def _trained_through(lake: Lake, model: str, version: str) -> str | None:
    key = f"models/{model}/{version}/model.json"
    try:
        doc = lake.read_json(key) if lake.exists(key) else lake.read_json(
            f"{report_prefix('training')}/{model}/{version}/report.json")
    except (FileNotFoundError, ValueError):
        return None
    training_set = doc.get("training_set") or {}
    return training_set.get("last_event_day") or doc.get("registered_day")


def performance_points(lake: Lake, model: str, until: str | None = None) -> list[PerformancePoint]:
    """Every labelled (version, day, PR-AUC) the drift reports hold up to ``until`` (a report of day D is never
    shaped by labels of later days), at its age since the version's training data."""
    through: dict[str, str | None] = {}
    points: dict[tuple[str, str], PerformancePoint] = {}
    for stored in lake.list_files(f"{report_prefix('drift')}/{model}"):
        if not stored.key.endswith("/report.json"):
            continue
        try:
            doc = lake.read_json(stored.key)
        except ValueError:
            continue
        perf, version = doc.get("performance") or {}, str(doc.get("version") or "")
        if not version or perf.get("pr_auc") is None or not perf.get("day") or not perf.get("positives"):
            continue
        if until is not None and (str(doc.get("dt") or perf["day"]) > until or str(perf["day"]) > until):
            continue
        if version not in through:
            through[version] = _trained_through(lake, model, version)
        if through[version] is None:
            continue
        age = (dt.date.fromisoformat(perf["day"]) - dt.date.fromisoformat(str(through[version]))).days
        if age >= 1:
            ceiling = perf.get("ceiling_pr_auc")
            points[(version, perf["day"])] = PerformancePoint(
                version, perf["day"], age, float(perf["pr_auc"]), int(perf["positives"]),
                int(perf.get("labelled") or perf["positives"]), float(ceiling) if ceiling else None)
    return sorted(points.values(), key=lambda p: (p.day, p.version))


@dataclass(frozen=True)
class DecayFit:
    slope_per_day: float | None       #: β in PR-AUC per day of age; None when the points cannot fit it
    standard_error: float | None
    fresh_pr_auc: float | None        #: PR-AUC level: the versions' fresh level (truth ratio x ceiling), else the
                                      #: positives-weighted mean of the points
    points: int
    versions: int
    metric: str = "pr_auc"            #: what was regressed (see :func:`fit_decay`)

    @property
    def t_value(self) -> float | None:
        if self.slope_per_day is None or not self.standard_error:
            return None
        return self.slope_per_day / self.standard_error


def fit_decay(points: list[PerformancePoint]) -> DecayFit:
    """Weighted least squares of PR-AUC on age with one intercept per version (see the module docstring).

    A day's PR-AUC moves with the day as much as with the model: its prevalence (PR-AUC's baseline) and how
    separable its events are. Where every point has the truth's ceiling (a synthetic world), the ratio
    PR-AUC / ceiling is regressed and the slope converted back to PR-AUC at the mean ceiling; otherwise the
    day's log prevalence is a covariate beside age."""
    versions = sorted({p.version for p in points})
    informative = {v for v in versions if len({p.age_days for p in points if p.version == v}) >= 2}
    if len(points) < 3 or not informative:
        return DecayFit(None, None, None, len(points), len(versions))
    with_truth = all(p.ceiling_pr_auc for p in points)
    index = {v: i for i, v in enumerate(versions)}
    x = np.zeros((len(points), len(versions) + (1 if with_truth else 2)))
    age = len(versions)
    for row, p in enumerate(points):
        x[row, index[p.version]] = 1.0
        x[row, age] = p.age_days
        if not with_truth:
            x[row, age + 1] = math.log(max(p.positives, 1) / max(p.labelled, 1))
    y = np.array([p.pr_auc / p.ceiling_pr_auc if with_truth and p.ceiling_pr_auc else p.pr_auc for p in points])
    w = np.sqrt(np.array([max(1, p.positives) for p in points], dtype=float))
    if not with_truth and np.linalg.matrix_rank(x) < x.shape[1]:   # prevalence constant within versions: drop it
        x = x[:, :age + 1]
    coef, *_ = np.linalg.lstsq(x * w[:, None], y * w, rcond=None)
    dof = len(points) - x.shape[1]
    if dof < 2 or np.linalg.matrix_rank(x) < x.shape[1]:   # an exact (or underdetermined) fit measures nothing
        return DecayFit(None, None, None, len(points), len(versions))
    residual = (y - x @ coef) * w
    sigma2 = float(residual @ residual) / dof
    try:
        covariance = sigma2 * np.linalg.inv((x * w[:, None]).T @ (x * w[:, None]))
        se: float | None = float(math.sqrt(max(0.0, covariance[age, age])))
    except np.linalg.LinAlgError:
        se = None
    scale = float(np.mean([p.ceiling_pr_auc for p in points])) if with_truth else 1.0
    fresh = float(np.average([p.pr_auc for p in points], weights=w ** 2)) if not with_truth else \
        float(np.average(coef[:age], weights=[sum(p.positives for p in points if p.version == v) for v in versions])) * scale
    return DecayFit(float(coef[age]) * scale, se * scale if se is not None else None, fresh, len(points),
                    len(versions), "pr_auc / truth ceiling" if with_truth else "pr_auc (log prevalence as covariate)")


@dataclass(frozen=True)
class CadenceOption:
    interval_days: int
    mean_pr_auc_drop: float
    retrains_per_30_days: float
    retrain_cost_per_30_days: float
    lost_value_per_30_days: float
    total_per_30_days: float


def _options(decay: float, retrain_cost: float, policy: CadencePolicy) -> list[CadenceOption]:
    out = []
    for days in sorted(set(policy.candidate_days)):
        drop = decay * (days + 1) / 2
        retrains = 30 / days
        lost = policy.value_per_pr_auc_point_day * drop / 0.01 * 30
        out.append(CadenceOption(days, round(drop, 6), round(retrains, 3), round(retrains * retrain_cost, 6),
                                 round(lost, 6), round(retrains * retrain_cost + lost, 6)))
    return out


def recommend(fit: DecayFit, retrain_cost: float, policy: CadencePolicy) -> dict[str, Any]:
    """The options per candidate interval and the one recommended, with why."""
    significant = fit.t_value is not None and fit.t_value <= -policy.min_significance
    decay = -float(fit.slope_per_day) if significant and fit.slope_per_day is not None else 0.0
    options = _options(decay, retrain_cost, policy)
    if not significant:
        chosen = options[-1]
        why = ("no decay measured: " + ("too few labelled days at two ages of a version" if fit.t_value is None else
               f"slope {fit.slope_per_day:+.5f}/day is {fit.t_value:+.1f} standard errors, not below "
               f"-{policy.min_significance}") + f"; the longest candidate, {chosen.interval_days} days (the drift "
               "monitor still retrains when the data moves)")
    elif policy.value_per_pr_auc_point_day > 0 and retrain_cost > 0:
        chosen = min(options, key=lambda o: (o.total_per_30_days, -o.interval_days))
        why = (f"PR-AUC decays {decay:.5f}/day; at {policy.value_per_pr_auc_point_day} per 0.01 PR-AUC-day and "
               f"{retrain_cost:.5f} per retrain, {chosen.interval_days} days costs least "
               f"({chosen.total_per_30_days:.4f} per 30 days)")
    else:
        within = [o for o in options if o.mean_pr_auc_drop <= policy.max_mean_pr_auc_drop]
        chosen = within[-1] if within else options[0]
        why = (f"PR-AUC decays {decay:.5f}/day: retraining every {chosen.interval_days} days loses "
               f"{chosen.mean_pr_auc_drop:.4f} on average over a cycle "
               + (f"(limit {policy.max_mean_pr_auc_drop})" if within else
                  f"— even the shortest candidate exceeds the limit {policy.max_mean_pr_auc_drop}"))
    return {"interval_days": chosen.interval_days, "why": why, "decay_per_day": round(decay, 6),
            "significant": significant, "options": [asdict(o) for o in options]}


def _costs(records: list[Any], model: str) -> dict[str, Any]:
    trains = [r for r in records if r.dag_id == TRAINING_DAG and r.model == model]
    retrain = sum(float((r.cost or {}).get("total", 0.0)) for r in trains) / len(trains) if trains else 0.0
    data = [r for r in records if r.dag_id not in MODEL_DAGS]
    days = {r.day for r in data}
    daily = sum(float((r.cost or {}).get("total", 0.0)) for r in data) / len(days) if days else 0.0
    return {"retrain_runs": len(trains), "retrain_cost": round(retrain, 8), "data_pipeline_days": len(days),
            "data_pipelines_per_day": round(daily, 8)}


def cadence_document(lake: Lake, model: str, day: str, records: list[Any],
                     policy: CadencePolicy | None = None) -> dict[str, Any]:
    policy = policy or load_cadence_policy()
    points = performance_points(lake, model, until=day)
    fit = fit_decay(points)
    costs = _costs(records, model)
    result = recommend(fit, costs["retrain_cost"], policy)
    return {"model": model, "day": day, "policy": policy.model_dump(), "costs": costs,
            "fit": {**asdict(fit), "t_value": fit.t_value}, "recommendation": result,
            "points": [asdict(p) for p in points]}


def _charts(doc: dict[str, Any]) -> dict[str, Any]:
    points = doc["points"]
    by_version: dict[str, list[tuple[float, float]]] = {}
    for p in points:
        by_version.setdefault(p["version"], []).append((p["age_days"], p["pr_auc"]))
    shown = dict(sorted(by_version.items(), key=lambda kv: -len(kv[1]))[:3])
    options = doc["recommendation"]["options"]
    return {"decay": svg_line({f"v{v}": sorted(s) for v, s in shown.items()}, xlabel="days since training data",
                              ylabel="labelled PR-AUC") if shown else None,
            "cost": svg_line({"mean PR-AUC drop": [(o["interval_days"], o["mean_pr_auc_drop"]) for o in options]},
                             xlabel="retrain every N days", ylabel="PR-AUC lost",
                             marker_x=doc["recommendation"]["interval_days"])}


def write_cadence_report(lake: Lake, model: str, day: str, records: list[Any],
                         policy: CadencePolicy | None = None) -> dict[str, Any]:
    """``reports/retrain_cadence/<model>/<day>/report.json`` and ``report.html``; returns the document."""
    doc = cadence_document(lake, model, day, records, policy)
    folder = f"{report_prefix('retrain_cadence')}/{model}/{day}"
    lake.write_json(f"{folder}/report.json", doc)
    lake.write_bytes(f"{folder}/report.html", render("retrain_cadence.html.j2", doc=doc, charts=_charts(doc)).encode())
    rec = doc["recommendation"]
    logger.info("retrain cadence of %s: every %d days (%s); %d labelled points of %d versions, retrain cost %.5f",
                model, rec["interval_days"], rec["why"], doc["fit"]["points"], doc["fit"]["versions"],
                doc["costs"]["retrain_cost"])
    return {**doc, "report": lake.uri(f"{folder}/report.html")}
