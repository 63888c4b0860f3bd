"""Event features computed from the event rows, and the ceiling a model is measured against."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from mlscale.bootstrap import average_precision_bootstrap, paired_average_precision_bootstrap, seeded_rng
from mlscale.training.ceiling import ceiling_of
from mlscale.training.inputs import bucket_distinct, recent_count
from sklearn.metrics import average_precision_score


def test_recent_count_counts_the_same_keys_rows_in_the_trailing_window() -> None:
    times = pd.to_datetime(["2026-01-01 10:00", "2026-01-01 10:30", "2026-01-01 10:59", "2026-01-01 11:01",
                            "2026-01-01 10:15", "2026-01-01 10:59", None, "2026-01-01 10:00"], utc=True)
    keys = ["a", "a", "a", "a", "b", "b", "a", None]
    counts = recent_count(keys, pd.Series(times), 60)
    # a: 10:00 → 1; 10:30 → 2; 10:59 → 3; 11:01 → 10:01..11:01 holds 10:30, 10:59, 11:01 → 3
    assert counts[:6].tolist() == [1, 2, 3, 3, 1, 2]
    assert np.isnan(counts[6]) and np.isnan(counts[7])  # no time, no key


def test_recent_count_is_order_free_and_counts_ties() -> None:
    rng = np.random.default_rng(3)
    n = 2_000
    frame = pd.DataFrame({"key": rng.integers(0, 40, n).astype(str),
                          "ts": pd.to_datetime(rng.integers(0, 86_400 * 3, n), unit="s", utc=True)})
    counts = recent_count(frame["key"], frame["ts"], 90)
    shuffled = frame.sample(frac=1.0, random_state=1)
    again = recent_count(shuffled["key"], shuffled["ts"], 90)
    assert np.array_equal(pd.Series(again, index=shuffled.index).sort_index().to_numpy(), counts)
    for i in rng.integers(0, n, 25):  # against the definition, row by row
        same = frame[(frame.key == frame.key[i]) & (frame.ts <= frame.ts[i])
                     & (frame.ts >= frame.ts[i] - pd.Timedelta(minutes=90))]
        assert counts[i] == len(same)


def test_bucket_distinct_counts_distinct_values_of_the_key_in_its_clock_bucket() -> None:
    times = pd.Series(pd.to_datetime(["2026-01-01 10:05", "2026-01-01 10:55", "2026-01-01 10:59", "2026-01-01 11:01",
                                      "2026-01-01 10:30", None], utc=True))
    keys = ["a", "a", "a", "a", "b", "a"]
    merchants = ["m1", "m2", "m1", "m3", "m1", "m9"]
    counts = bucket_distinct(keys, merchants, times, 60)
    # a's 10:00 hour: m1, m2, m1 -> 2 distinct for each of its rows (earlier and later alike); 11:00: 1; b: 1
    assert counts[:5].tolist() == [2, 2, 2, 1, 1] and np.isnan(counts[5])


def test_paired_bootstrap_matches_the_single_score_draws() -> None:
    rng = np.random.default_rng(0)
    y = (rng.random(500) < 0.1).astype(np.int8)
    score = rng.random(500) + y * 0.3
    single = average_precision_bootstrap(y, score, 50, seeded_rng(4, "x"))
    paired = paired_average_precision_bootstrap(y, {"a": score, "b": -score}, 50, seeded_rng(4, "x"))
    assert np.allclose(single, paired["a"], equal_nan=True)
    assert (paired["b"] < paired["a"]).all()


def test_the_ceiling_of_the_truth_itself_is_one_and_a_noisy_model_sits_below() -> None:
    rng = np.random.default_rng(5)
    p = 1 / (1 + np.exp(-(rng.normal(-4.0, 1.5, 20_000))))
    y = (rng.random(len(p)) < p).astype(np.int8)
    exact = ceiling_of(y, p, p)
    assert exact.ratio == pytest.approx(1.0) and exact.ratio_interval[0] == pytest.approx(1.0)
    noisy = p * np.exp(rng.normal(0, 1.0, len(p)))
    result = ceiling_of(y, noisy, p, resamples=100)
    assert result.ceiling == pytest.approx(average_precision_score(y, p), abs=1e-6)
    assert result.pr_auc == pytest.approx(average_precision_score(y, noisy), abs=1e-6)
    lo, hi = result.ratio_interval
    assert lo is not None and hi is not None and lo < result.ratio < hi < 1.0
    assert result.as_dict()["available"] is True and "ratio" in result.describe()


def test_serving_skew_counts_training_rows_whose_inputs_differ_from_what_scoring_logged(tmp_path) -> None:
    import datetime as dt

    import pyarrow as pa
    from mlscale.lake import Lake, PartitionRef
    from mlscale.layout import feature_log_dataset
    from mlscale.training import load_model_spec
    from mlscale.training.skew import serving_skew

    lake, spec = Lake(str(tmp_path / "lake")), load_model_spec("fraud_detector")
    training = pa.table({"event_id": ["e1", "e2", "e3", "e4"], "a": [1.0, 2.0, 3.0, None], "b": [1.0, 1.0, 1.0, 1.0]})
    logged = pa.table({"event_id": ["e1", "e2", "e4", "x9"], "a": [1.0, 2.5, None, 7.0], "b": [1.0, 1.0, 2.0, 1.0]})
    for ref, table in ((PartitionRef.of("training", spec.name, "2026-03-05"), training),
                       (PartitionRef.of("predictions", feature_log_dataset(spec.name), "2026-03-04"), logged)):
        with lake.writer(ref, run_id="t", schema=table.schema) as writer:
            writer.write(table)
    skew = serving_skew(lake, spec, PartitionRef.of("training", spec.name, "2026-03-05"), ["a", "b"],
                        dt.date(2026, 3, 1), dt.date(2026, 3, 4))
    # e1 equal, e2 differs in a, e4 differs in b (a null on both sides is equal); e3 was never logged
    assert (skew["compared_rows"], skew["rows_differing"]) == (3, 2)
    assert skew["columns_differing"] == {"a": pytest.approx(1 / 3, abs=1e-6), "b": pytest.approx(1 / 3, abs=1e-6)}
