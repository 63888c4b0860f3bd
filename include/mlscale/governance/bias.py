"""Bias audit of a scored holdout: metrics per protected group, bootstrap intervals, disparities, a verdict.

What :func:`audit_bias` guarantees:

* Protected attributes are joined for the audit only: ``model_features`` naming one is an error.
* Every row counts: a missing attribute value forms the group ``(missing)``; a label or decision that is
  not 0/1, or a missing score, is an error naming the column, never a dropped row.
* Selection rate, TPR, FPR and precision are exact over all rows: fairlearn's ``MetricFrame`` on a pandas
  frame of up to ``METRICFRAME_MAX_ROWS`` rows, else per-group confusion counts aggregated per partition
  (the same numbers; the report's ``method`` says which).
* PR-AUC (average precision) uses every row of a group up to ``pr_auc_max_rows``; a larger group is
  represented by a seeded uniform sample of about that many of its rows (``sample_rows`` in its entry), so
  its interval is wider than a full-data interval by about sqrt(n / sample_rows).
* Intervals are percentile bootstrap intervals resampling rows within each group, at ``ci_level`` with
  ``bootstrap_samples`` resamples (PR-AUC: at most ``pr_auc_resamples``). Count metrics are drawn as
  multinomial confusion counts, identical in distribution to resampling the group's rows (the draws:
  :mod:`mlscale.bootstrap`). Same inputs and seed give the same report.
* A group under ``min_group_size`` rows, or a metric whose denominator (rows, positives, negatives,
  selected rows; positives for PR-AUC) is under ``min_class_count``, has status ``insufficient_data``: it
  is reported and listed but left out of the disparity figures and never fails the audit.
* The verdict fails when a disparity of any attribute or intersection is beyond its threshold — with
  ``judged_on: interval`` (the default) only when the whole interval of the extreme pair of groups is,
  Bonferroni-adjusted over the pairs compared; with ``point`` when the estimate is. Every reason names the
  attribute (or intersection, e.g. ``gender×age_band``) and metric.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from mlscale.bootstrap import (
    average_precision_bootstrap,
    average_precision_draws,
    cluster_count_draws,
    count_metrics,
    percentile_interval,
    seeded_rng,
)
from mlscale.governance.bias_thresholds import INSUFFICIENT, JUDGED_ON, BiasAuditError, BiasThresholds

logger = logging.getLogger(__name__)

METRICS = ("selection_rate", "true_positive_rate", "false_positive_rate", "precision", "pr_auc")
SEP = "×"  # joins intersection names ("gender×age_band") and their groups ("F×18-24")
MISSING = "(missing)"
OVERALL = "all"
_CELLS = ["tp", "fp", "fn", "tn"]
_SHORT = {"selection_rate": "expected selections at the overall rate", "true_positive_rate": "positives",
          "false_positive_rate": "negatives"}
_EPS = 1e-12  # thresholds are compared with this slack so that 0.4 - 0.3 does not exceed 0.1
#: pandas inputs up to this many rows get their count metrics from fairlearn's MetricFrame (whose cost
#: grows with the rows); larger and Dask inputs from per-group confusion counts (equal numbers)
METRICFRAME_MAX_ROWS = 250_000


@dataclass(frozen=True)
class BiasAudit:
    """Result of :func:`audit_bias`; ``as_dict()`` is the ``report.json`` document."""

    verdict: str
    reasons: tuple[str, ...]
    insufficient_data: tuple[str, ...]
    not_judged: tuple[str, ...]
    rows: int
    columns: Mapping[str, str]
    thresholds: BiasThresholds
    method: Mapping[str, Any]
    overall: Mapping[str, Any]
    attributes: Mapping[str, Mapping[str, Any]]
    warnings: tuple[str, ...] = ()   # disparities whose estimate crosses a threshold but whose interval does not

    def as_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


def _pr_auc(y_true: Any, y_score: Any) -> float:
    """Average precision; NaN for a group holding one class only (undefined there)."""
    from sklearn.metrics import average_precision_score

    y = np.asarray(y_true)
    if y.size == 0 or y.min() == y.max():
        return float("nan")
    return float(average_precision_score(y, y_score))


def _precision(y_true: Any, y_pred: Any) -> float:
    from sklearn.metrics import precision_score

    return float(precision_score(y_true, y_pred, zero_division=0))


def _num(value: Any) -> float | None:
    return None if value is None or not np.isfinite(value) else float(value)


def _label(key: Any) -> str:
    return SEP.join(map(str, key)) if isinstance(key, tuple) else str(key)


def _is_dask(frame: Any) -> bool:
    return type(frame).__module__.split(".")[0] == "dask"


def _prepare(frame: Any, label: str, score: str, decision: str, cols: list[str], cluster: str | None = None
             ) -> tuple[Any, Any, dict[str, Any]]:
    """Attribute columns as strings (missing -> ``(missing)``), ``_y``/``_d`` as 0/1 integers, the score;
    confusion counts per finest cell (and per cluster within it when ``cluster`` names a column)."""
    attrs = {a: frame[a].astype(object).mask(frame[a].isna(), MISSING).astype(str) for a in cols}
    y, d = (frame[label] == 1).astype("int64"), (frame[decision] == 1).astype("int64")
    out = frame[[score]].assign(**attrs, _y=y, _d=d)
    keys = [*cols, cluster] if cluster else cols
    parts = (out[cols].assign(**{cluster: frame[cluster].astype(str)}) if cluster else out[cols]).assign(
        tp=y * d, fp=(1 - y) * d, fn=y * (1 - d), tn=(1 - y) * (1 - d))
    problems = {f"{label} (label) values other than 0/1": (~frame[label].isin([0, 1])).sum(),
                f"{decision} (decision) values other than 0/1": (~frame[decision].isin([0, 1])).sum(),
                f"{score} (score) missing or infinite values": (frame[score].isna()
                                                                | frame[score].abs().eq(np.inf)).sum()}
    return out, parts.groupby(keys, sort=True)[_CELLS].sum(), problems


def _sample(part: pd.DataFrame, keep: list[tuple[Any, ...]], cols: list[str], score: str, seed: int,
            partition_info: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """Rows kept for PR-AUC: ``_u`` is uniform, a row stays when ``_u`` < its finest cell's keep rate."""
    u = np.random.default_rng([seed, 7, (partition_info or {}).get("number", 0)]).random(len(part))
    rates = part[cols].merge(pd.DataFrame(keep, columns=[*cols, "_rate"]), on=cols, how="left")["_rate"]
    return part[[*cols, "_y", score]].assign(_u=u)[u < rates.to_numpy()]


def _groups(cells: pd.DataFrame, sample: pd.DataFrame, cols: list[str], cap: int, score: str
            ) -> tuple[pd.DataFrame, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """Per-group confusion counts (index: group labels) and each group's PR-AUC rows (label, score)."""
    counts = cells.groupby(level=cols).sum() if cols else cells.sum().to_frame(OVERALL).T
    counts.index = [_label(k) for k in counts.index]
    rate = {g: min(1.0, cap / max(n, 1)) for g, n in counts.sum(axis=1).items()}
    parts = sample.groupby(cols, sort=False) if cols else [((OVERALL,), sample)]
    rows: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for key, part in parts:
        g = _label(key if len(key) > 1 else key[0])
        part = part[part["_u"].to_numpy() < rate[g]]
        rows[g] = (part["_y"].to_numpy(), part[score].to_numpy(dtype=np.float64))
    return counts, rows


def _points(frame: pd.DataFrame | None, cols: list[str], counts: pd.DataFrame,
            rows: Mapping[str, tuple[np.ndarray, np.ndarray]]) -> pd.DataFrame:
    """Point values per group: fairlearn ``MetricFrame`` (count metrics on ``frame``, else from ``counts``).

    Without ``cols`` (all rows as one group) the same functions are applied directly.
    """
    from fairlearn.metrics import MetricFrame, false_positive_rate, selection_rate, true_positive_rate

    if frame is not None:
        metrics = {"selection_rate": selection_rate, "true_positive_rate": true_positive_rate,
                   "false_positive_rate": false_positive_rate, "precision": _precision}
        mf = MetricFrame(metrics=metrics, y_true=frame["_y"], y_pred=frame["_d"], sensitive_features=frame[cols])
        out = mf.by_group.copy()
        out.index = [_label(k) for k in out.index]
        out = out.reindex(counts.index)
    else:
        out = pd.DataFrame(count_metrics(*(counts[c] for c in _CELLS)), index=counts.index)
    labels = [g for g in counts.index if len(rows.get(g, ((), ()))[0])]
    if not cols:
        out["pr_auc"] = [_pr_auc(*rows[OVERALL]) if OVERALL in rows else np.nan]
    elif labels:
        keys = np.repeat(labels, [len(rows[g][0]) for g in labels])
        mf_ap = MetricFrame(metrics={"pr_auc": _pr_auc}, y_true=np.concatenate([rows[g][0] for g in labels]),
                            y_pred=np.concatenate([rows[g][1] for g in labels]), sensitive_features=keys)
        out["pr_auc"] = mf_ap.by_group["pr_auc"].reindex(counts.index)
    else:
        out["pr_auc"] = np.nan
    return out


def _cluster_counts(cells: pd.DataFrame, cols: list[str], cluster: str | None) -> dict[str, np.ndarray] | None:
    """Per group: the ``(k, 4)`` confusion counts of its clusters (None without a cluster column)."""
    if not cluster:
        return None
    if not cols:
        return {OVERALL: cells.groupby(level=cluster).sum()[_CELLS].to_numpy()}
    per = cells.groupby(level=[*cols, cluster]).sum()
    return {_label(k): part[_CELLS].to_numpy() for k, part in per.groupby(level=cols if len(cols) > 1 else cols[0])}


def _evaluate(name: str, counts: pd.DataFrame, points: pd.DataFrame, rows: Mapping[str, Any],
              thr: BiasThresholds, seed: int, resamples: int, clusters: Mapping[str, np.ndarray] | None = None
              ) -> tuple[dict[str, Any], dict[str, dict]]:
    """Group entries of one attribute, and the bootstrap draws of the metrics judged ``ok`` per group."""
    groups: dict[str, Any] = {}
    ok_draws: dict[str, dict[str, np.ndarray]] = {m: {} for m in METRICS}
    totals = counts[_CELLS].sum()
    overall_rate = float((totals["tp"] + totals["fp"]) / max(1, totals.sum()))
    for g, (tp, fp, fn, tn) in counts[_CELLS].iterrows():
        n = int(tp + fp + fn + tn)
        rng = seeded_rng(seed, name, g, "counts")
        sampled = cluster_count_draws(clusters[g], thr.bootstrap_samples, rng) if clusters is not None \
            else rng.multinomial(n, np.array([tp, fp, fn, tn]) / n, size=thr.bootstrap_samples)
        draws = count_metrics(*sampled.T)
        y, s = rows.get(g, (np.empty(0), np.empty(0)))
        draws["pr_auc"] = average_precision_bootstrap(y, s, resamples, seeded_rng(seed, name, g, "pr_auc"))
        # a selection rate is judged once the group would expect min_class_count selections at the overall
        # rate: with a small review budget, a handful of selections per group says nothing about parity
        denominators = {"selection_rate": n * overall_rate, "true_positive_rate": tp + fn,
                        "false_positive_rate": fp + tn, "precision": tp + fp, "pr_auc": tp + fn}
        big = n >= thr.min_group_size
        entry: dict[str, Any] = {"n": n, "positives": int(tp + fn), "selected": int(tp + fp),
                                 "status": "ok" if big else "insufficient_data"}
        for m in METRICS:
            value = _num(points.at[g, m]) if denominators[m] > 0 or m == "precision" else None
            ok = big and value is not None and denominators[m] >= thr.min_class_count
            lo, hi = percentile_interval(draws[m], thr.ci_level)
            entry[m] = {"value": value, "ci_low": lo, "ci_high": hi, "status": "ok" if ok else "insufficient_data"}
            if m == "pr_auc" and len(y) < n:
                entry[m]["sample_rows"] = len(y)
            if ok:
                ok_draws[m][g] = draws[m]
        groups[g] = entry
    return groups, ok_draws


def _disparity(name: str, groups: Mapping[str, Any], draws: Mapping[str, Mapping[str, np.ndarray]],
               thr: BiasThresholds) -> tuple[dict[str, Any], list[str], list[str]]:
    """Disparity figures over the groups judged ``ok``, the verdict reasons they give, and warnings.

    ``judged_on="point"``: an estimate beyond a threshold fails. ``"interval"``: only a disparity the whole
    bootstrap interval confirms fails; an estimate beyond the threshold whose interval still reaches it is a
    warning (shown in the report, the model card and the gate's evidence for the human reviewer). A disparity's
    interval is that of the extreme pair of groups (lowest vs highest), at ``ci_level`` Bonferroni-adjusted over
    the pairs of groups compared (``interval_level``): the spread of many equal groups' noisy estimates is no
    evidence of a disparity.
    """
    sel = {g: groups[g]["selection_rate"]["value"] for g in draws["selection_rate"]}
    doc: dict[str, Any] = {"groups_compared": sorted(sel), "demographic_parity_difference": None,
                           "demographic_parity_ratio": None, "equalized_odds_difference": None,
                           "four_fifths_pass": None, "ci": {}}
    if len(sel) < 2:
        return doc, [], []
    lo_g, hi_g = min(sel, key=sel.__getitem__), max(sel, key=sel.__getitem__)
    dpd = sel[hi_g] - sel[lo_g]
    dpr = sel[lo_g] / sel[hi_g] if sel[hi_g] > 0 else 1.0  # nobody selected anywhere: parity holds
    level = _pair_level(thr.ci_level, len(sel))
    low, high = draws["selection_rate"][lo_g], draws["selection_rate"][hi_g]
    dpr_d = np.where(high > 0, low / np.where(high > 0, high, 1.0), 1.0)
    doc.update(demographic_parity_difference=dpd, demographic_parity_ratio=dpr,
               four_fifths_pass=dpr >= thr.min_demographic_parity_ratio - _EPS,
               lowest_selection_rate_group=lo_g, highest_selection_rate_group=hi_g,
               pairs_compared=len(sel) * (len(sel) - 1) // 2, interval_level=level)
    doc["ci"] = {"demographic_parity_difference": list(percentile_interval(high - low, level)),
                 "demographic_parity_ratio": list(percentile_interval(dpr_d, level))}
    gaps = []  # (metric, the extreme pair's gap per draw, gap, pairs) of TPR and FPR over the groups judged ok
    for m in ("true_positive_rate", "false_positive_rate"):
        values = {g: groups[g][m]["value"] for g in draws[m]}
        if len(values) >= 2:
            lo_m, hi_m = min(values, key=values.__getitem__), max(values, key=values.__getitem__)
            gaps.append((m, draws[m][hi_m] - draws[m][lo_m], values[hi_m] - values[lo_m], len(values)))
    if gaps:
        worst = max(gaps, key=lambda t: t[2])
        doc["equalized_odds_difference"] = worst[2]
        doc["ci"]["equalized_odds_difference"] = list(percentile_interval(worst[1], _pair_level(thr.ci_level,
                                                                                                 worst[3])))
    ci = doc["ci"]
    checks = [  # (estimate violates, whole interval violates, message)
        (dpd > thr.max_demographic_parity_difference + _EPS,
         ci["demographic_parity_difference"][0] > thr.max_demographic_parity_difference + _EPS,
         f"{name}: demographic_parity_difference {dpd:.4f} > {thr.max_demographic_parity_difference}"
         f" (selection rate {hi_g} {sel[hi_g]:.4f} vs {lo_g} {sel[lo_g]:.4f}; interval "
         f"{_fmt_ci(ci['demographic_parity_difference'])})"),
        (not doc["four_fifths_pass"],
         ci["demographic_parity_ratio"][1] < thr.min_demographic_parity_ratio - _EPS,
         f"{name}: demographic_parity_ratio {dpr:.4f} < {thr.min_demographic_parity_ratio} "
         f"(four-fifths rule: {lo_g} vs {hi_g}; interval {_fmt_ci(ci['demographic_parity_ratio'])})"),
    ]
    if gaps:
        eod_ci = ci["equalized_odds_difference"]
        checks.append((doc["equalized_odds_difference"] > thr.max_equalized_odds_difference + _EPS,
                       eod_ci[0] > thr.max_equalized_odds_difference + _EPS,
                       f"{name}: equalized_odds_difference {doc['equalized_odds_difference']:.4f} > "
                       f"{thr.max_equalized_odds_difference} (largest gap in {worst[0]}; interval {_fmt_ci(eod_ci)})"))
    if thr.judged_on == "point":
        return doc, [m for point, _, m in checks if point], []
    reasons = [m for point, whole, m in checks if point and whole]
    warnings = [m + ": not confirmed by the interval" for point, whole, m in checks if point and not whole]
    return doc, reasons, warnings


def _pair_level(level: float, groups: int) -> float:
    """The interval level of the extreme pair among ``groups`` groups: ``level`` Bonferroni-adjusted over the
    pairs that could have been the extreme one, so that picking the most different pair of many equal groups
    does not by itself confirm a disparity."""
    pairs = max(1, groups * (groups - 1) // 2)
    return 1.0 - (1.0 - level) / pairs


def _fmt_ci(bounds: Sequence[float]) -> str:
    return f"[{bounds[0]:.4f}, {bounds[1]:.4f}]"


def _specs(frame: Any, attributes: Sequence[str], intersections: Sequence[Sequence[str]],
           needed: Sequence[str], model_features: Iterable[str]) -> dict[str, list[str]]:
    """Audited column sets by report name (``gender``, ``gender×age_band``), checked against the input."""
    specs = {a: [a] for a in attributes}
    specs.update({SEP.join(cols): list(cols) for cols in intersections})
    cols = {c for spec in specs.values() for c in spec}
    missing = [c for c in (*sorted(cols), *needed) if c not in frame.columns]
    if missing:
        raise BiasAuditError(f"bias audit input lacks column(s) {missing}: join the protected attributes first")
    if not attributes or any(len(set(c)) < 2 for c in intersections):
        raise BiasAuditError("audit_bias needs at least one attribute and 2+ distinct columns per intersection")
    leaked = sorted(cols & set(model_features))
    if leaked:
        raise BiasAuditError(f"protected attribute(s) {leaked} are model features; remove them from the model")
    return specs


def _collect(frame: Any, label: str, score: str, decision: str, specs: Mapping[str, list[str]], cap: int,
             seed: int, cluster: str | None = None) -> tuple[Any, pd.DataFrame, pd.DataFrame]:
    """The prepared frame, confusion counts per finest cell, and the PR-AUC rows (two passes over Dask)."""
    cols = list(dict.fromkeys(c for spec in specs.values() for c in spec))
    prepared, cells, problems = _prepare(frame, label, score, decision, cols, cluster)
    dask = _is_dask(frame)
    if dask:
        import dask as dask_mod

        cells, problems = dask_mod.compute(cells, problems)
    bad = [f"{int(k)} {what}" for what, k in problems.items() if k]
    if bad:
        raise BiasAuditError(f"bias audit input has {'; '.join(bad)}: fix the holdout scoring step")
    sizes = (cells.groupby(level=cols).sum() if cluster else cells).sum(axis=1)
    keep = pd.Series(min(1.0, cap / max(int(sizes.sum()), 1)), index=sizes.index)
    for spec in specs.values():  # a cell keeps the largest rate any group containing it needs
        keep = np.maximum(keep, (cap / sizes.groupby(level=spec).transform("sum")).clip(upper=1.0))
    records = [(*(k if isinstance(k, tuple) else (k,)), r) for k, r in keep.items()]
    if dask:
        sample = prepared.map_partitions(_sample, records, cols, score, seed).compute()
    elif keep.min() >= 1:
        sample = prepared[[*cols, "_y", score]].assign(_u=0.0)
    else:
        sample = _sample(prepared, records, cols, score, seed)
    return (None if dask else prepared), cells, sample


def _method(by_counts: bool, dask: bool, thr: BiasThresholds, seed: int, cap: int, resamples: int,
            cluster: str | None = None) -> dict[str, Any]:
    return {
        "input": "dask" if dask else "pandas", "missing_attribute_value": MISSING,
        "count_metrics": "exact over all rows: " + ("per-group confusion counts, aggregated per partition"
                                                    if by_counts else "fairlearn MetricFrame"),
        "intervals": f"percentile bootstrap within each group, {thr.bootstrap_samples} resamples, level "
                     f"{thr.ci_level}, seed {seed}; count metrics "
                     + (f"from resampled clusters of {cluster!r} (rows of one {cluster} move together)" if cluster
                        else "drawn as multinomial confusion counts (rows independent)"),
        "pr_auc": f"average precision on all rows of a group up to about {cap} (larger groups: a seeded "
                  f"uniform sample, see sample_rows; its interval is wider than a full-data one by about "
                  f"sqrt(n / sample_rows)); {resamples} resamples",
        "disparities": ("the whole interval must cross a threshold to fail (judged_on interval); an estimate "
                        "beyond it alone is a warning" if thr.judged_on == "interval" else
                        "point estimates over groups with status ok decide the verdict")
                       + "; a disparity's interval is the extreme pair's (lowest vs highest group), from the same "
                         "per-group draws, at the level Bonferroni-adjusted over the pairs compared (interval_level)"}


def audit_bias(frame: Any, *, label: str, score: str, decision: str, attributes: Sequence[str],
               intersections: Sequence[Sequence[str]] = (), thresholds: BiasThresholds, seed: int = 0,
               model_features: Iterable[str] = (), pr_auc_max_rows: int = 20_000,
               pr_auc_resamples: int = 200, cluster: str | None = None) -> BiasAudit:
    """Audit a scored holdout (pandas or Dask frame) by protected attribute and intersection.

    ``label`` and ``decision`` are 0/1 columns (the decision is the score at the model's operating point),
    ``score`` the model's score. ``cluster`` names a column whose rows are not independent (a customer's
    transactions): the count metrics' intervals then resample whole clusters. See the module docstring for
    what the result guarantees.
    """
    if pr_auc_max_rows < 1000 or pr_auc_resamples < 1:
        raise BiasAuditError("pr_auc_max_rows must be >= 1000 and pr_auc_resamples >= 1")
    specs = _specs(frame, attributes, intersections, (label, score, decision), model_features)
    if cluster and cluster not in frame.columns:
        raise BiasAuditError(f"cluster column {cluster!r} is not in the audited frame")
    prepared, cells, sample = _collect(frame, label, score, decision, specs, pr_auc_max_rows, seed, cluster)
    total = int(cells.to_numpy().sum())
    by_counts = prepared is None or total > METRICFRAME_MAX_ROWS
    resamples = min(thresholds.bootstrap_samples, pr_auc_resamples)
    thr = thresholds
    reasons: list[str] = []
    warned: list[str] = []
    short: list[str] = []
    not_judged: list[str] = []
    report: dict[str, Any] = {}
    overall: dict[str, Any] = {}
    for name, spec in [(OVERALL, []), *specs.items()]:
        counts, rows = _groups(cells, sample, spec, pr_auc_max_rows, score)
        points = _points(None if by_counts or not spec else prepared, spec, counts, rows)
        groups, draws = _evaluate(name, counts, points, rows, thr, seed, resamples,
                                  _cluster_counts(cells, spec, cluster))
        if name == OVERALL:
            overall = groups[OVERALL]
            continue
        disparity, why, warn = _disparity(name, groups, draws, thr)
        reasons += why
        warned += warn
        short += [f"{name}={g} (n={e['n']} < min_group_size {thr.min_group_size})"
                  for g, e in groups.items() if e["status"] != "ok"]
        short += [f"{name}={g}: {m} ({_SHORT[m]} < min_class_count {thr.min_class_count})"
                  for g, e in groups.items() if e["status"] == "ok"
                  for m in ("selection_rate", "true_positive_rate", "false_positive_rate") if e[m]["status"] != "ok"]
        if disparity["demographic_parity_difference"] is None:
            not_judged.append(f"{name}: fewer than two groups with enough data")
        report[name] = {"columns": spec, "groups": groups, "disparity": disparity, "passed": not why,
                        "reasons": why, "warnings": warn}
    judged = [a for a in report.values() if a["disparity"]["demographic_parity_difference"] is not None
              or a["disparity"]["equalized_odds_difference"] is not None]
    verdict = "fail" if reasons else ("pass" if judged else INSUFFICIENT)
    logger.info("bias audit: %s on %d rows, %d attributes, %d reasons, %d insufficient-data entries",
                verdict, total, len(report), len(reasons), len(short))
    return BiasAudit(verdict=verdict, reasons=tuple(reasons), insufficient_data=tuple(short),
                     not_judged=tuple(not_judged), rows=total, warnings=tuple(warned),
                     columns={"label": label, "score": score, "decision": decision}, thresholds=thr,
                     method=_method(by_counts, _is_dask(frame), thr, seed, pr_auc_max_rows, resamples, cluster),
                     overall=overall, attributes=report)


__all__ = ["INSUFFICIENT", "JUDGED_ON", "METRICFRAME_MAX_ROWS", "METRICS", "MISSING", "OVERALL", "SEP", "BiasAudit",
           "BiasAuditError", "BiasThresholds", "audit_bias", "average_precision_draws", "count_metrics"]
