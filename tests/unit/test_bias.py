"""Bias audit: exact group metrics on a hand-built fixture, fairlearn agreement, interval coverage,
insufficient-data handling, the verdict, intersections, large-group sampling, Dask input and the HTML page."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import (
    MetricFrame,
    demographic_parity_difference,
    demographic_parity_ratio,
    equalized_odds_difference,
    false_positive_rate,
    selection_rate,
    true_positive_rate,
)
from mlscale.governance import bias as bias_mod
from mlscale.governance import render_bias_html
from mlscale.governance.bias import (
    BiasAuditError,
    BiasThresholds,
    audit_bias,
    average_precision_draws,
)
from sklearn.metrics import average_precision_score


def _group(gender: str, tp: int, fp: int, fn: int, tn: int) -> pd.DataFrame:
    """Rows of one group with the given confusion counts; scores rank TP > FP > FN > TN, no ties."""
    y = [1] * tp + [0] * fp + [1] * fn + [0] * tn
    d = [1] * (tp + fp) + [0] * (fn + tn)
    n = len(y)
    return pd.DataFrame({"gender": gender, "y": y, "d": d, "s": np.linspace(0.95, 0.05, n),
                         "age_band": ["18-24" if i % 2 == 0 else "25-34" for i in range(n)]})


@pytest.fixture
def fixture_frame() -> pd.DataFrame:
    # F: 10 rows, 4 selected (3 TP, 1 FP), 5 positives; M: 20 rows, 10 selected (6 TP, 4 FP), 8 positives;
    # X: 5 rows (below min_group_size 8), 1 selected (1 TP), 2 positives
    return pd.concat([_group("F", 3, 1, 2, 4), _group("M", 6, 4, 2, 8), _group("X", 1, 0, 1, 3)],
                     ignore_index=True)


THR = BiasThresholds(max_demographic_parity_difference=0.1, min_demographic_parity_ratio=0.8,
                     max_equalized_odds_difference=0.2, min_group_size=8, ci_level=0.95, bootstrap_samples=500)
KW: dict[str, Any] = {"label": "y", "score": "s", "decision": "d"}


def test_group_metrics_are_exact_and_match_fairlearn(fixture_frame: pd.DataFrame) -> None:
    doc = audit_bias(fixture_frame, **KW, attributes=["gender"], thresholds=THR).as_dict()
    groups = doc["attributes"]["gender"]["groups"]
    expected = {"F": (10, 0.4, 0.6, 0.2, 0.75), "M": (20, 0.5, 0.75, 4 / 12, 0.6), "X": (5, 0.2, 0.5, 0.0, 1.0)}
    for g, (n, sel, tpr, fpr, prec) in expected.items():
        e = groups[g]
        assert e["n"] == n
        assert e["selection_rate"]["value"] == pytest.approx(sel, abs=1e-12)
        assert e["true_positive_rate"]["value"] == pytest.approx(tpr, abs=1e-12)
        assert e["false_positive_rate"]["value"] == pytest.approx(fpr, abs=1e-12)
        assert e["precision"]["value"] == pytest.approx(prec, abs=1e-12)
        for m in bias_mod.METRICS:
            if e[m]["ci_low"] is not None:
                assert e[m]["ci_low"] - 1e-12 <= e[m]["value"] <= e[m]["ci_high"] + 1e-12
    # F ranks P P P N P P N N N N: AP = (1 + 1 + 1 + 4/5 + 5/6) / 5
    assert groups["F"]["pr_auc"]["value"] == pytest.approx(139 / 150, abs=1e-12)
    frame = fixture_frame
    mf = MetricFrame(metrics={"sel": selection_rate, "tpr": true_positive_rate, "fpr": false_positive_rate},
                     y_true=frame.y, y_pred=frame.d, sensitive_features=frame.gender)
    for g in "FMX":
        assert groups[g]["selection_rate"]["value"] == pytest.approx(mf.by_group.loc[g, "sel"], abs=1e-12)
        assert groups[g]["true_positive_rate"]["value"] == pytest.approx(mf.by_group.loc[g, "tpr"], abs=1e-12)
        part = frame[frame.gender == g]
        assert groups[g]["pr_auc"]["value"] == pytest.approx(average_precision_score(part.y, part.s), abs=1e-12)
    # disparities over the groups with enough data (F, M) equal fairlearn's on those rows
    judged = frame[frame.gender != "X"]
    disparity = doc["attributes"]["gender"]["disparity"]
    assert disparity["groups_compared"] == ["F", "M"]
    assert disparity["demographic_parity_difference"] == pytest.approx(0.1, abs=1e-12)
    assert disparity["demographic_parity_difference"] == pytest.approx(
        demographic_parity_difference(judged.y, judged.d, sensitive_features=judged.gender), abs=1e-12)
    assert disparity["demographic_parity_ratio"] == pytest.approx(0.8, abs=1e-12)
    assert disparity["demographic_parity_ratio"] == pytest.approx(
        demographic_parity_ratio(judged.y, judged.d, sensitive_features=judged.gender), abs=1e-12)
    assert disparity["equalized_odds_difference"] == pytest.approx(0.15, abs=1e-12)
    assert disparity["equalized_odds_difference"] == pytest.approx(
        equalized_odds_difference(judged.y, judged.d, sensitive_features=judged.gender), abs=1e-12)
    assert disparity["four_fifths_pass"] is True
    assert doc["overall"]["n"] == 35 and doc["overall"]["selection_rate"]["value"] == pytest.approx(15 / 35)


def test_small_groups_are_reported_not_judged(fixture_frame: pd.DataFrame) -> None:
    audit = audit_bias(fixture_frame, **KW, attributes=["gender"], thresholds=THR)
    x = audit.as_dict()["attributes"]["gender"]["groups"]["X"]
    assert x["status"] == "insufficient_data"
    assert {x[m]["status"] for m in bias_mod.METRICS} == {"insufficient_data"}
    # X's selection rate 0.2 would make the ratio 0.4 (< 0.8): it is excluded, so the audit passes
    assert audit.verdict == "pass" and audit.reasons == ()
    assert audit.insufficient_data == ("gender=X (n=5 < min_group_size 8)",)
    # with one judged group left nothing can be compared: reported, not failed, and not a pass either
    strict = BiasThresholds(min_group_size=15, bootstrap_samples=100)
    alone = audit_bias(fixture_frame, **KW, attributes=["gender"], thresholds=strict)
    assert alone.verdict == "insufficient_data" and alone.reasons == ()
    assert alone.not_judged == ("gender: fewer than two groups with enough data",)
    assert alone.as_dict()["attributes"]["gender"]["disparity"]["demographic_parity_difference"] is None


def test_disparity_beyond_threshold_fails_with_named_reasons(fixture_frame: pd.DataFrame) -> None:
    thr = BiasThresholds(max_demographic_parity_difference=0.05, min_demographic_parity_ratio=0.9,
                         max_equalized_odds_difference=0.1, min_group_size=8, bootstrap_samples=200,
                         judged_on="point")
    audit = audit_bias(fixture_frame, **KW, attributes=["gender"], thresholds=thr)
    assert audit.verdict == "fail"
    assert [r.split(" (")[0] for r in audit.reasons] == [
        "gender: demographic_parity_difference 0.1000 > 0.05",
        "gender: demographic_parity_ratio 0.8000 < 0.9",
        "gender: equalized_odds_difference 0.1500 > 0.1",
    ]
    assert audit.reasons[0].startswith("gender: demographic_parity_difference 0.1000 > 0.05 (selection rate M 0.5000 vs "
                                       "F 0.4000; interval [")
    assert "largest gap in true_positive_rate" in audit.reasons[2]
    doc = audit.as_dict()
    assert doc["verdict"] == "fail" and doc["attributes"]["gender"]["passed"] is False
    assert doc["attributes"]["gender"]["disparity"]["four_fifths_pass"] is False


def test_judged_on_interval_warns_on_noise_and_fails_on_confirmed_disparity(fixture_frame: pd.DataFrame) -> None:
    thr = BiasThresholds(max_demographic_parity_difference=0.05, min_demographic_parity_ratio=0.9,
                         max_equalized_odds_difference=0.1, min_group_size=8, bootstrap_samples=200)
    small = audit_bias(fixture_frame, **KW, attributes=["gender"], thresholds=thr)
    # 10 and 20 rows: the estimates cross the thresholds but the intervals reach back over them
    assert small.verdict == "pass" and small.reasons == ()
    assert len(small.warnings) == 3 and all(w.endswith("not confirmed by the interval") for w in small.warnings)
    rng = np.random.default_rng(3)
    n = 20_000
    gender = np.where(rng.random(n) < 0.5, "F", "M")
    y = (rng.random(n) < 0.1).astype(int)
    d = (rng.random(n) < np.where(gender == "F", 0.10, 0.20)).astype(int)  # a real, large disparity
    big = pd.DataFrame({"y": y, "s": rng.random(n), "d": d, "gender": gender})
    confirmed = audit_bias(big, **KW, attributes=["gender"], thresholds=thr)
    assert confirmed.verdict == "fail"
    assert any(r.startswith("gender: demographic_parity_ratio") for r in confirmed.reasons)


def test_intersections_name_groups_and_every_row_counts(fixture_frame: pd.DataFrame) -> None:
    frame = fixture_frame.copy()
    frame.loc[0, "gender"] = None  # a missing attribute value is its own group, never a dropped row
    doc = audit_bias(frame, **KW, attributes=["gender", "age_band"], intersections=[["gender", "age_band"]],
                     thresholds=THR).as_dict()
    inter = doc["attributes"]["gender×age_band"]
    assert inter["columns"] == ["gender", "age_band"]
    assert set(inter["groups"]) == {"(missing)×18-24", "F×18-24", "F×25-34", "M×18-24", "M×25-34",
                                    "X×18-24", "X×25-34"}
    assert inter["groups"]["M×18-24"]["n"] == 10 and inter["groups"]["F×18-24"]["n"] == 4
    assert sum(g["n"] for g in inter["groups"].values()) == len(frame) == doc["rows"]
    assert sum(g["n"] for g in doc["attributes"]["gender"]["groups"].values()) == len(frame)
    assert inter["disparity"]["groups_compared"] == ["M×18-24", "M×25-34"]
    json.dumps(doc)  # the report is JSON as is


def test_undefined_metrics_and_bad_input() -> None:
    frame = pd.concat([_group("F", 0, 2, 0, 18), _group("M", 3, 2, 3, 12)], ignore_index=True)
    audit = audit_bias(frame, **KW, attributes=["gender"], thresholds=BiasThresholds(min_group_size=5,
                                                                                     bootstrap_samples=100))
    f = audit.as_dict()["attributes"]["gender"]["groups"]["F"]
    assert f["true_positive_rate"] == {"value": None, "ci_low": None, "ci_high": None,
                                       "status": "insufficient_data"}
    assert f["pr_auc"]["value"] is None and f["false_positive_rate"]["status"] == "ok"
    assert audit.insufficient_data == ("gender=F: true_positive_rate (positives < min_class_count 1)",)
    bad = frame.assign(y=frame.y.where(frame.index != 3, 2))
    with pytest.raises(BiasAuditError, match=r"1 y \(label\) values other than 0/1"):
        audit_bias(bad, **KW, attributes=["gender"], thresholds=THR)
    with pytest.raises(BiasAuditError, match=r"1 s \(score\) missing"):
        audit_bias(frame.assign(s=frame.s.where(frame.index != 0)), **KW, attributes=["gender"], thresholds=THR)
    with pytest.raises(BiasAuditError, match=r"lacks column\(s\) \['region'\]"):
        audit_bias(frame, **KW, attributes=["gender", "region"], thresholds=THR)
    with pytest.raises(BiasAuditError, match=r"\['gender'\] are model features"):
        audit_bias(frame, **KW, attributes=["gender"], thresholds=THR, model_features=["amount", "gender"])


def test_intervals_cover_the_true_rates(monkeypatch: pytest.MonkeyPatch) -> None:
    """200 audits of two groups drawn from known rates: 95% intervals cover them 92-98% of the time."""
    monkeypatch.setattr(bias_mod, "METRICFRAME_MAX_ROWS", 0)  # the same numbers, without MetricFrame's cost
    rng = np.random.default_rng(2024)
    truth = {"A": (0.3, 0.7, 0.1), "B": (0.2, 0.5, 0.05)}  # P(y=1), TPR, FPR
    hits = {m: 0 for m in ("selection_rate", "true_positive_rate", "false_positive_rate")}
    thr = BiasThresholds(min_group_size=10, ci_level=0.95, bootstrap_samples=1000)
    reps, n = 200, 300
    for _ in range(reps):
        parts = []
        for g, (p, tpr, fpr) in truth.items():
            y = (rng.random(n) < p).astype(int)
            d = (rng.random(n) < np.where(y == 1, tpr, fpr)).astype(int)
            parts.append(pd.DataFrame({"g": g, "y": y, "d": d, "s": rng.random(n)}))
        groups = audit_bias(pd.concat(parts), **KW, attributes=["g"], thresholds=thr,
                            pr_auc_resamples=10).as_dict()["attributes"]["g"]["groups"]
        for g, (p, tpr, fpr) in truth.items():
            true = {"selection_rate": p * tpr + (1 - p) * fpr, "true_positive_rate": tpr,
                    "false_positive_rate": fpr}
            for m, value in true.items():
                hits[m] += groups[g][m]["ci_low"] <= value <= groups[g][m]["ci_high"]
    coverage = {m: h / (2 * reps) for m, h in hits.items()}
    assert all(0.92 <= c <= 0.98 for c in coverage.values()), coverage


def test_vectorised_average_precision_equals_sklearn_on_resamples() -> None:
    rng = np.random.default_rng(5)
    y = (rng.random(400) < 0.2).astype(int)
    score = np.round(rng.random(400) * 0.5 + y * 0.3, 2)  # many ties
    idx = rng.integers(0, 400, size=(30, 400))
    weights = np.stack([np.bincount(row, minlength=400) for row in idx])
    got = average_precision_draws(y, score, weights)
    want = [average_precision_score(y[row], score[row]) for row in idx]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
    assert np.isnan(average_precision_draws(np.zeros(5), np.arange(5.0), np.ones((1, 5))))[0]


def test_large_groups_sample_pr_auc_deterministically() -> None:
    rng = np.random.default_rng(3)
    n = 6000
    y = (rng.random(n) < 0.2).astype(int)
    frame = pd.DataFrame({"g": np.where(np.arange(n) < 5000, "big", "small"), "y": y,
                          "s": rng.random(n) * 0.6 + y * 0.3})
    frame["d"] = (frame.s > 0.6).astype(int)
    thr = BiasThresholds(min_group_size=10, bootstrap_samples=200)
    one = audit_bias(frame, **KW, attributes=["g"], thresholds=thr, pr_auc_max_rows=1000).as_dict()
    again = audit_bias(frame, **KW, attributes=["g"], thresholds=thr, pr_auc_max_rows=1000).as_dict()
    assert one == again
    big = one["attributes"]["g"]["groups"]["big"]
    assert 850 <= big["pr_auc"]["sample_rows"] <= 1150
    part = frame[frame.g == "big"]
    assert big["pr_auc"]["value"] == pytest.approx(average_precision_score(part.y, part.s), abs=0.05)
    assert "sample_rows" not in one["attributes"]["g"]["groups"]["small"]["pr_auc"]
    assert big["selection_rate"]["value"] == pytest.approx(part.d.mean(), abs=1e-12)  # exact, not sampled
    other = audit_bias(frame, **KW, attributes=["g"], thresholds=thr, pr_auc_max_rows=1000, seed=1).as_dict()
    assert other["attributes"]["g"]["groups"]["big"]["selection_rate"]["ci_low"] != big["selection_rate"]["ci_low"]


def test_dask_input_gives_the_same_report(fixture_frame: pd.DataFrame) -> None:
    dask = pytest.importorskip("dask")
    import dask.dataframe as dd

    kwargs: dict[str, Any] = {**KW, "attributes": ["gender", "age_band"], "intersections": [["gender", "age_band"]],
              "thresholds": THR}
    expected = audit_bias(fixture_frame, **kwargs).as_dict()
    with dask.config.set(scheduler="sync"):
        got = audit_bias(dd.from_pandas(fixture_frame, npartitions=3), **kwargs).as_dict()
    assert got.pop("method")["input"] == "dask"
    expected.pop("method")
    assert got == expected


def test_html_report_is_self_contained_and_escaped(fixture_frame: pd.DataFrame) -> None:
    frame = fixture_frame.replace({"gender": {"X": "<script>alert(1)</script>"}})
    doc = audit_bias(frame, **KW, attributes=["gender"], thresholds=THR).as_dict()
    page = render_bias_html(doc)
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "Verdict: <b>PASS</b>" in page and page.count("<svg") == 2
    assert "0.8000" in page  # the demographic parity ratio
    assert "insufficient_data" in page and "min_group_size" in page
    fail = render_bias_html({**doc, "verdict": "fail", "reasons": ["gender: demographic_parity_ratio 0.4 < 0.8"]})
    assert 'class="banner fail"' in fail and "gender: demographic_parity_ratio 0.4 &lt; 0.8" in fail


def test_thresholds_refuse_impossible_settings() -> None:
    with pytest.raises(BiasAuditError, match="ratios in"):
        BiasThresholds(min_demographic_parity_ratio=1.2)
    with pytest.raises(BiasAuditError, match="ci_level"):
        BiasThresholds(ci_level=1.0)
    with pytest.raises(BiasAuditError, match="sizes >= 1"):
        BiasThresholds(min_group_size=0)


def test_cluster_bootstrap_covers_clustered_rates_where_a_row_bootstrap_does_not() -> None:
    """A customer's transactions share its behaviour: intervals must resample customers, not rows."""
    rng = np.random.default_rng(11)
    true, reps, k, m = 0.2, 40, 60, 25
    thr = BiasThresholds(min_group_size=10, bootstrap_samples=300)
    hits = {"rows": 0, "clusters": 0}
    for rep in range(reps):
        p = rng.beta(true * 2, (1 - true) * 2, size=k)  # mean 0.2, large differences between customers
        d = (rng.random((k, m)) < p[:, None]).astype(int).ravel()
        frame = pd.DataFrame({"y": rng.integers(0, 2, k * m), "s": rng.random(k * m), "d": d, "g": "A",
                              "c": np.repeat(np.arange(k), m)})
        for key, cluster in (("rows", None), ("clusters", "c")):
            doc = audit_bias(frame, **KW, attributes=["g"], thresholds=thr, cluster=cluster, seed=rep,
                             pr_auc_resamples=1).as_dict()
            rate = doc["attributes"]["g"]["groups"]["A"]["selection_rate"]
            hits[key] += rate["ci_low"] <= true <= rate["ci_high"]
    assert hits["clusters"] / reps >= 0.85
    assert hits["rows"] / reps < hits["clusters"] / reps - 0.2
    assert "resampled clusters of 'c'" in doc["method"]["intervals"]


def test_selection_rates_with_few_expected_selections_are_reported_not_judged() -> None:
    rng = np.random.default_rng(5)
    n = 4000
    frame = pd.DataFrame({"y": (rng.random(n) < 0.05).astype(int), "s": rng.random(n),
                          "d": (rng.random(n) < 0.005).astype(int), "g": np.where(np.arange(n) % 2, "A", "B")})
    few = audit_bias(frame, **KW, attributes=["g"], pr_auc_resamples=1,
                     thresholds=BiasThresholds(min_group_size=100, min_class_count=30, bootstrap_samples=200))
    # ~10 selections expected per group at a 0.5% budget: parity cannot be judged from that
    assert few.verdict == "insufficient_data" and few.not_judged == ("g: fewer than two groups with enough data",)
    assert any("selection_rate (expected selections at the overall rate < min_class_count 30)" in s
               for s in few.insufficient_data)
    enough = audit_bias(frame, **KW, attributes=["g"], pr_auc_resamples=1,
                        thresholds=BiasThresholds(min_group_size=100, min_class_count=5, bootstrap_samples=200))
    assert enough.as_dict()["attributes"]["g"]["disparity"]["demographic_parity_ratio"] is not None
    assert enough.verdict in ("pass", "fail")
