"""Incremental features on generated data: equal to a full recompute, late events, validation, reruns."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pytest
from distributed import Client, LocalCluster
from mlscale.features import build_features, load_feature_set
from mlscale.features.partials import daily_partials, event_day_rows
from mlscale.features.validate import FeatureValidationError
from mlscale.features.windows import as_of_table, update_first_seen
from mlscale.ingest import ingest_partition
from mlscale.lake import Lake, PartitionRef
from mlscale.layout import config_dir
from mlscale.sketches import kll_rank_error
from mlscale.synthetic import generate_world

START = dt.date(2026, 11, 1)
DAYS = 6


@pytest.fixture(scope="module")
def client():
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster, \
            Client(cluster) as c:
        yield c


@pytest.fixture(scope="module")
def ingested(tmp_path_factory, client):
    lake = Lake(str(tmp_path_factory.mktemp("features") / "lake"))
    generate_world(lake.write_bytes, start=START, days=DAYS, rows_per_day=1500, seed=21)
    for i in range(DAYS):
        ingest_partition(client=client, lake=lake, dt=str(START + dt.timedelta(days=i)), run_id="ingest",
                         contract="transactions", pii_key=b"k")
    return lake


def window_values(lake: Lake, fs, day: dt.date, window: int, entity: str, column: str) -> np.ndarray:
    values = []
    for back in range(window):
        rows, _ = event_day_rows(lake, fs, day - dt.timedelta(days=back), last_drop_day=day, lateness_days=30)
        if rows.num_rows == 0:
            continue
        rows = rows.filter(pa.compute.equal(rows.column(fs.entity), entity))
        values += rows.column(column).to_pylist()
    return np.sort(np.asarray(values, dtype=float))


def full_recompute(lake: Lake, fs, day: dt.date) -> pa.Table:
    """From raw alone, every event day up to ``day`` with unbounded lateness: the reference."""
    partials, first_seen = {}, None
    d = START - dt.timedelta(days=5)
    while d <= day:
        rows, _ = event_day_rows(lake, fs, d, last_drop_day=day, lateness_days=30)
        partials[d] = daily_partials(rows, fs)
        first_seen = update_first_seen(first_seen, partials[d], fs)
        d += dt.timedelta(days=1)
    return as_of_table(partials, fs, day, first_seen)


@pytest.mark.parametrize("feature_set", ["customer_activity", "merchant_risk"])
def test_incremental_equals_full_recompute_with_late_events(ingested, client, feature_set) -> None:
    lake = ingested
    fs = load_feature_set(feature_set)
    results = [build_features(lake=lake, dt=str(START + dt.timedelta(days=i)), run_id="r", feature_set=feature_set,
                              client=client) for i in range(DAYS)]
    assert any(r.changed_partial_days[:-1] for r in results[1:])  # late events corrected earlier days
    last = START + dt.timedelta(days=DAYS - 1)
    incremental = lake.read_table(PartitionRef.of("features", fs.table, last)).sort_by(fs.entity)
    reference = full_recompute(lake, fs, last).sort_by(fs.entity)
    assert incremental.column(fs.entity).to_pylist() == reference.column(fs.entity).to_pylist()
    quantiles = {f"{f.name}_{w}d": (f, w) for f in fs.features if f.kind == "quantile" for w in fs.windows}
    for name in fs.feature_columns():
        a = incremental.column(name).to_numpy(zero_copy_only=False).astype(float)
        b = reference.column(name).to_numpy(zero_copy_only=False).astype(float)
        if name not in quantiles:
            np.testing.assert_allclose(a, b, rtol=1e-9, equal_nan=True, err_msg=name)
            continue
        # KLL is exact below k items and randomised above: check the rank error bound instead
        feature, window = quantiles[name]
        for i in np.flatnonzero(~np.isclose(a, b, rtol=1e-9, equal_nan=True)):
            values = window_values(lake, fs, last, window, incremental.column(fs.entity)[int(i)].as_py(), feature.column)
            rank = np.searchsorted(values, a[i], side="right") / len(values)
            assert abs(rank - feature.q) <= 2 * kll_rank_error(), (name, i, rank)
    # a rerun of the last day changes nothing
    before = lake.require_manifest(PartitionRef.of("features", fs.table, last))
    again = build_features(lake=lake, dt=str(last), run_id="rerun", feature_set=feature_set, client=client)
    assert again.changed_partial_days == []
    after = lake.require_manifest(PartitionRef.of("features", fs.table, last))
    assert (before.attempt, before.extra["inputs_signature"]) == (after.attempt, after.extra["inputs_signature"])
    rerun = lake.read_table(PartitionRef.of("features", fs.table, last)).sort_by(fs.entity)
    assert rerun.to_pandas().equals(incremental.to_pandas())  # NaN-aware


def test_windows_and_sketches_are_plausible(ingested) -> None:
    lake = ingested
    fs = load_feature_set("customer_activity")
    last = START + dt.timedelta(days=DAYS - 1)
    build_features(lake=lake, dt=str(last), run_id="r", feature_set="customer_activity")
    table = lake.read_table(PartitionRef.of("features", fs.table, last)).to_pandas()
    assert (table["spend_count_7d"] >= table["spend_count_1d"]).all()
    assert (table["spend_sum_30d"] >= table["spend_sum_7d"] - 1e-9).all()
    assert table["night_share_30d"].between(0, 1).all()
    assert (table["distinct_merchants_30d"] <= table["spend_count_30d"] * 1.1 + 1).all()
    assert (table["amount_p95_30d"] >= table["amount_p50_30d"] - 1e-9).all()
    assert (table["days_since_first_seen"] >= 0).all()
    assert table["event_timestamp"].iloc[0] == dt.datetime(2026, 11, 7, tzinfo=dt.UTC)


def test_validation_failure_quarantines_and_names_the_rule(ingested, tmp_path) -> None:
    strict = tmp_path / "strict_activity.yaml"
    text = (config_dir("feature_repo") / "customer_activity.yaml").read_text().replace(
        "spend_mean_30d:  {min: 0, max: 1000000, max_null_rate: 0.2}", "spend_mean_30d:  {min: 0, max: 1}")
    strict.write_text(text.replace("feature_set: customer_activity", "feature_set: strict_activity"))
    with pytest.raises(FeatureValidationError, match=r"spend_mean_30d max: observed .* limit 1"):
        build_features(lake=ingested, dt=str(START), run_id="r", feature_set=str(strict))
    fs = load_feature_set(strict)
    assert ingested.manifest(PartitionRef.of("quarantine", fs.table, START)) is not None
    assert ingested.manifest(PartitionRef.of("features", fs.table, START)) is None
