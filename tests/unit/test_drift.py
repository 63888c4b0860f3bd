"""Drift monitoring: profile statistics against exact computations on the raw rows, merging, JSON, verdicts.

Tolerances: counts, PSI, binned KS, Jensen-Shannon and total variation are exact (to 1e-12), since they
come from exact histograms and category counts. KS from KLL sketches (k=200) is within twice the
sketch's CDF rank error (``2 * kll_rank_error() ≈ 0.033``) of ``scipy.stats.ks_2samp``; sketch quantiles
are within one rank error of the exact rank.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from mlscale.monitoring import (
    DriftThresholds,
    FeatureProfile,
    ProfileMismatchError,
    UnsupportedColumnError,
    compare_profiles,
    kll_rank_error,
    merge_profiles,
    profile_dask,
    profile_table,
    reference_edges,
)
from mlscale.monitoring.statistics import align_categories
from scipy.spatial.distance import jensenshannon
from scipy.stats import ks_2samp

N = 200_000
CATS = np.array(list("abcdefgh"))
NUMERIC = [f"x{i}" for i in range(10)]
SHIFTED = ["x1", "x4", "x7"]
EPS = kll_rank_error()


def make_day(seed: int, n: int = N, *, shift: bool = False, score_shift: float = 0.0) -> pd.DataFrame:
    """10 standard-normal columns, 2 categorical, a score; ``shift``: +0.5 sd on 3 columns, new category 5 %."""
    rng = np.random.default_rng(seed)
    data: dict[str, np.ndarray] = {name: rng.normal(size=n) for name in NUMERIC}
    c0 = CATS[rng.integers(0, 8, n)].astype(object)
    if shift:
        for name in SHIFTED:
            data[name] = data[name] + 0.5
        c0[rng.random(n) < 0.05] = "new"
    data["c0"], data["c1"] = c0, CATS[rng.integers(0, 4, n)].astype(object)
    data["score"] = 1.0 / (1.0 + np.exp(-(rng.normal(size=n) - 1.0 + score_shift)))
    return pd.DataFrame(data)


@pytest.fixture(scope="module")
def reference() -> FeatureProfile:
    return profile_table(make_day(0))


def exact_psi(p_counts: np.ndarray, q_counts: np.ndarray, eps: float = 1e-4) -> float:
    p = np.maximum(p_counts / p_counts.sum(), eps)
    q = np.maximum(q_counts / q_counts.sum(), eps)
    return float(np.sum((q - p) * np.log(q / p)))


def binned(values: np.ndarray, edges: tuple[float, ...]) -> np.ndarray:
    """Exact counts on the profile's bins plus a trailing null bin, straight from the raw values."""
    bounds = np.concatenate([[-np.inf], edges, [np.inf]])
    valid = values[~np.isnan(values)]
    return np.append(np.histogram(valid, bounds)[0], np.isnan(values).sum())


def test_psi_and_ks_agree_with_exact_computation() -> None:
    rng = np.random.default_rng(7)
    ref = rng.normal(size=N)
    cur = rng.normal(0.3, 1.2, size=N)
    ref[rng.random(N) < 0.01] = np.nan
    cur[rng.random(N) < 0.03] = np.nan
    ref_p = profile_table(pa.table({"v": ref}))
    cur_p = profile_table(pa.table({"v": cur}), edges=reference_edges(ref_p))
    edges = ref_p.numeric("v").edges
    assert 15 <= len(edges) <= 21
    result = compare_profiles(ref_p, cur_p).feature("v")

    assert result.psi == pytest.approx(exact_psi(binned(ref, edges), binned(cur, edges)), abs=1e-12)
    exact_ks = ks_2samp(ref[~np.isnan(ref)], cur[~np.isnan(cur)]).statistic
    assert result.ks_sketch == pytest.approx(exact_ks, abs=2 * EPS)
    assert result.ks == pytest.approx(exact_ks, abs=2 * EPS)
    ref_cdf = np.cumsum(binned(ref, edges)[:-1]) / np.sum(~np.isnan(ref))
    cur_cdf = np.cumsum(binned(cur, edges)[:-1]) / np.sum(~np.isnan(cur))
    assert result.ks_binned == pytest.approx(np.max(np.abs(ref_cdf - cur_cdf)[:-1]), abs=1e-12)
    assert result.ks_binned <= exact_ks + 1e-12
    assert result.reference_null_share == pytest.approx(np.isnan(ref).mean(), abs=1e-12)
    assert result.current_null_share == pytest.approx(np.isnan(cur).mean(), abs=1e-12)


def test_small_sketches_give_the_exact_ks() -> None:
    rng = np.random.default_rng(3)
    ref, cur = rng.normal(size=150), rng.normal(0.4, size=180)  # below k=200: the sketches hold every value
    ref_p = profile_table(pa.table({"v": ref}))
    cur_p = profile_table(pa.table({"v": cur}), edges=reference_edges(ref_p))
    feature = compare_profiles(ref_p, cur_p, DriftThresholds(min_rows=100)).feature("v")
    assert feature.ks_sketch == pytest.approx(ks_2samp(ref, cur).statistic, abs=1e-12)


def test_categorical_statistics_agree_with_exact_computation() -> None:
    ref, cur = make_day(0, 50_000), make_day(1, 50_000, shift=True)
    ref_counts = ref["c0"].value_counts()
    cur_counts = cur["c0"].value_counts()
    labels = sorted(set(ref_counts.index) | set(cur_counts.index))
    p = np.array([ref_counts.get(v, 0) for v in labels], dtype=float)
    q = np.array([cur_counts.get(v, 0) for v in labels], dtype=float)
    feature = compare_profiles(profile_table(ref, ["c0"]), profile_table(cur, ["c0"])).feature("c0")
    assert feature.psi == pytest.approx(exact_psi(p, q), abs=1e-12)
    assert feature.js == pytest.approx(jensenshannon(p / p.sum(), q / q.sum()), abs=1e-12)
    assert feature.total_variation == pytest.approx(0.5 * np.abs(p / p.sum() - q / q.sum()).sum(), abs=1e-12)
    assert feature.new_categories == ("new",)


def test_merged_partition_profiles_equal_the_whole(reference: FeatureProfile) -> None:
    day = make_day(0)
    day.loc[day.index % 97 == 0, "x3"] = np.nan
    day.loc[day.index % 89 == 0, "c1"] = None
    edges = reference_edges(reference)
    whole = profile_table(day, edges=edges)
    cuts = [0, 1_000, 60_000, 61_234, 150_000, N]
    parts = [profile_table(day.iloc[a:b], edges=edges) for a, b in zip(cuts, cuts[1:], strict=False)]
    merged = merge_profiles(*parts)
    assert merged.rows == whole.rows == N
    for name, summary in whole.columns.items():
        assert (merged.columns[name].count, merged.columns[name].nulls) == (summary.count, summary.nulls)
        if summary.kind == "categorical":
            assert merged.categorical(name) == whole.categorical(name)
            continue
        m, w = merged.numeric(name), whole.numeric(name)
        assert (m.hist, m.edges, m.min, m.max, m.finite) == (w.hist, w.edges, w.min, w.max, w.finite)
        assert m.mean == pytest.approx(w.mean, rel=1e-9, abs=1e-12)
        assert m.std == pytest.approx(w.std, rel=1e-9)
        sketch = m.sketch()
        assert sketch.n == w.count
        values = np.sort(day[name].dropna().to_numpy())
        ranks = np.linspace(0.01, 0.99, 99)
        quantiles = np.asarray(sketch.get_quantiles(list(ranks)))
        true_ranks = np.searchsorted(values, quantiles, side="right") / len(values)
        assert np.max(np.abs(true_ranks - ranks)) <= EPS
    assert whole.numeric("x3").nulls == len(range(0, N, 97))
    assert whole.categorical("c1").nulls == len(set(range(0, N, 89)))


def test_json_round_trip(reference: FeatureProfile) -> None:
    text = reference.to_json()
    back = FeatureProfile.from_json(text)
    assert back == reference
    d = json.loads(text)
    assert d["format"] == "mlscale.feature_profile/1" and d["rows"] == N
    assert set(d["columns"]["x0"]) >= {"kind", "count", "nulls", "edges", "hist", "kll", "mean", "m2"}
    assert d["columns"]["c0"]["values"] == {v: int(n) for v, n in make_day(0)["c0"].value_counts().items()}
    assert compare_profiles(back, reference).drifted_features == ()


def test_injected_shift_is_detected_on_exactly_those_columns(reference: FeatureProfile) -> None:
    edges = reference_edges(reference)
    drifted = compare_profiles(reference, profile_table(make_day(1, shift=True), edges=edges))
    assert set(drifted.drifted_features) == {*SHIFTED, "c0"}
    assert drifted.verdict == "drift_detected" and drifted.drift_detected
    assert drifted.share_drifted == pytest.approx(4 / 13)
    for name in SHIFTED:
        f = drifted.feature(name)
        assert f.ks == pytest.approx(0.197, abs=0.02)  # 2 * Phi(0.25) - 1 for a 0.5 sd shift
        assert f.mean_shift_sd == pytest.approx(0.5, abs=0.02)
        assert any(r.startswith("ks ") for r in f.reasons)
    assert drifted.feature("c0").new_categories == ("new",)

    clean = compare_profiles(reference, profile_table(make_day(2), edges=edges))
    assert clean.drifted_features == () and clean.verdict == "no_drift" and not clean.drift_detected
    assert max(f.psi or 0.0 for f in clean.features) < 0.01
    assert max(f.ks or 0.0 for f in clean.features) < 0.04
    json.dumps(drifted.as_dict(), allow_nan=False)  # plain JSON, no numpy scalars


def test_critical_prediction_shift_decides_alone(reference: FeatureProfile) -> None:
    current = profile_table(make_day(3, score_shift=0.6), edges=reference_edges(reference))
    plain = compare_profiles(reference, current)
    assert plain.drifted_features == ("score",) and plain.verdict == "no_drift"
    critical = compare_profiles(reference, current, DriftThresholds(critical=("score",)))
    assert critical.verdict == "drift_detected" and critical.critical_drifted == ("score",)


def test_too_few_rows_give_insufficient_data(reference: FeatureProfile) -> None:
    small = profile_table(make_day(4, 500, shift=True), edges=reference_edges(reference))
    result = compare_profiles(reference, small, DriftThresholds(min_rows=1_000))
    assert result.verdict == "insufficient_data" and not result.drift_detected
    assert result.drifted_features == () and result.current_rows == 500


def test_mismatched_edges_and_missing_columns(reference: FeatureProfile) -> None:
    own_edges = profile_table(make_day(5, 5_000))
    with pytest.raises(ProfileMismatchError, match="edges"):
        compare_profiles(reference, own_edges)
    with pytest.raises(ProfileMismatchError, match="edges"):
        merge_profiles(reference, own_edges)
    partial = profile_table(make_day(5, 5_000).drop(columns=["x0"]), edges=reference_edges(reference))
    result = compare_profiles(reference, partial)
    assert result.feature("x0").kind == "missing" and "x0" in result.drifted_features


def test_category_cap_pools_the_rest_and_aligns() -> None:
    values = np.repeat(np.array([f"v{i}" for i in range(10)], dtype=object), np.arange(10, 0, -1) * 100)
    capped = profile_table(pd.DataFrame({"c": values}), max_categories=4).categorical("c")
    assert capped.values == (("v0", 1000), ("v1", 900), ("v2", 800), ("v3", 700))
    assert capped.other == 600 + 500 + 400 + 300 + 200 + 100 and capped.count == len(values)
    halves = merge_profiles(profile_table(pd.DataFrame({"c": values[::2]}), max_categories=4),
                            profile_table(pd.DataFrame({"c": values[1::2]}), max_categories=4)).categorical("c")
    assert halves == capped
    full = profile_table(pd.DataFrame({"c": values})).categorical("c")
    labels, ref_counts, cur_counts = align_categories(full, capped)
    assert labels == ["v0", "v1", "v2", "v3", "__other__", "__null__"]
    assert ref_counts.tolist() == cur_counts.tolist() == [1000, 900, 800, 700, 2100, 0]


def test_column_selection() -> None:
    frame = pd.DataFrame({"n": [1, 2, 3], "b": [True, False, None], "s": ["x", "y", "x"],
                          "t": pd.to_datetime(["2026-01-01"] * 3)})
    profile = profile_table(frame, categorical=["n"])
    assert list(profile.columns) == ["n", "b", "s"] and profile.columns["n"].kind == "categorical"
    assert profile.categorical("b").values == (("false", 1), ("true", 1)) and profile.categorical("b").nulls == 1
    with pytest.raises(UnsupportedColumnError, match="'t'"):
        profile_table(frame, columns=["t"])


def test_profile_dask_equals_profile_table(reference: FeatureProfile) -> None:
    import dask.dataframe as dd
    from distributed import Client, LocalCluster

    day = make_day(6, 40_000, shift=True)
    day.loc[day.index % 7 == 0, "x2"] = np.nan
    edges = reference_edges(reference)
    local = profile_table(day, edges=edges)
    ddf = dd.from_pandas(day, npartitions=5)
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0") as cluster, \
            Client(cluster) as client:
        distributed = profile_dask(ddf, edges=edges, client=client)
        own_edges = profile_dask(ddf, columns=["x0", "c0"], client=client, split_every=2)
    assert distributed.rows == local.rows and list(distributed.columns) == list(local.columns)
    for name, summary in local.columns.items():
        if summary.kind == "categorical":
            assert distributed.categorical(name) == local.categorical(name)
        else:
            d, w = distributed.numeric(name), local.numeric(name)
            assert (d.count, d.nulls, d.hist, d.min, d.max) == (w.count, w.nulls, w.hist, w.min, w.max)
            assert d.mean == pytest.approx(w.mean, rel=1e-9, abs=1e-12)
    assert compare_profiles(reference, distributed).drifted_features == \
        compare_profiles(reference, local).drifted_features
    # edges derived on the cluster from the merged sketch: every inner bin holds 1/20 of the rows +- 2 eps
    x0 = own_edges.numeric("x0")
    assert len(x0.edges) == 21 and x0.hist[0] == 0 and sum(x0.hist) == 40_000
    shares = np.asarray(x0.hist[1:-1]) / 40_000
    assert np.max(np.abs(shares - 0.05)) <= 2 * EPS


def test_evidently_report_finds_the_injected_columns(tmp_path) -> None:
    pytest.importorskip("evidently")
    from mlscale.monitoring import evidently_drift_report

    columns = ["x0", "x1", "x2", "x4", "c0", "c1"]
    out = evidently_drift_report(make_day(0, 20_000), make_day(1, 20_000, shift=True), tmp_path / "drift.html",
                                 sample_rows=2_000, columns=columns)
    assert out["drifted_columns"] == ["c0", "x1", "x4"]
    assert out["n_columns"] == 6 and out["share_drifted"] == pytest.approx(0.5)
    assert out["reference_rows"] == out["current_rows"] == 2_000
    assert out["columns"]["x1"]["method"].startswith("Wasserstein")
    assert (tmp_path / "drift.html").read_text()[:500].lower().count("<html") == 1
    json.dumps(out)


def test_a_one_hot_counts_as_one_input_in_the_drifted_share() -> None:
    rng = np.random.default_rng(4)
    n = 5_000
    reference = pd.DataFrame({"amount": rng.lognormal(3, 0.5, n), **{f"cat_{i}": (rng.integers(0, 10, n) == i)
                                                                       .astype(float) for i in range(10)}})
    current = reference.assign(amount=reference["amount"] * 1.6)
    ref_profile = profile_table(reference, list(reference.columns))
    cur_profile = profile_table(current, list(current.columns), edges=reference_edges(ref_profile))
    families = {f"cat_{i}": "cat" for i in range(10)}
    plain = compare_profiles(ref_profile, cur_profile, DriftThresholds(share=0.3))
    grouped = compare_profiles(ref_profile, cur_profile, DriftThresholds(share=0.3), families)
    assert plain.drifted_features == grouped.drifted_features == ("amount",)
    assert plain.share_drifted == pytest.approx(1 / 11) and plain.verdict == "no_drift"
    assert grouped.share_drifted == pytest.approx(1 / 2) and grouped.verdict == "drift_detected"
