"""Training building blocks without a cluster: model specs, the sizing decision, checkpoints, metrics."""

from __future__ import annotations

import numpy as np
import pytest
from mlscale.lake import Lake
from mlscale.sizing import MB, training_plan
from mlscale.training.checkpoint import CheckpointStore, run_key
from mlscale.training.data import class_weight_params, downsample, kept_rows, negative_weights
from mlscale.training.evaluate import compare, holdout_metrics, reliability_curve
from mlscale.training.spec import ModelSpecError, load_model_spec

SPEC = """
model: m
events: {dataset: transactions, key: event_id, event_time: event_ts}
label: {dataset: labels, key: event_id, column: is_fraud, reported_at: reported_at}
feature_sets: [customer_activity]
event_features:
  amount: {kind: numeric, column: amount}
protected_attributes: {dataset: customers, key: customer_id, columns: [gender]}
training: {split: {train: 0.6, validation: 0.2, holdout: 0.2}}
"""


def spec_file(tmp_path, text: str):
    path = tmp_path / "m.yaml"
    path.write_text(text)
    return path


def test_the_demo_model_spec_loads_and_names_its_inputs() -> None:
    spec = load_model_spec("fraud_detector")
    assert spec.name == "fraud_detector" and len(spec.version) == 8
    assert {"event_id", "event_ts", "customer_id", "merchant_id", "merchant_category", "amount", "channel"} \
        <= set(spec.event_columns())
    assert not set(spec.protected_columns) & set(spec.event_columns()) - {"customer_id"}


@pytest.mark.parametrize(("change", "message"), [
    ("training: {split: {train: 0.6, validation: 0.2, holdout: 0.3}}", "summing to 1"),
    ("event_features:\n  gender: {kind: numeric, column: gender}", "must never be model features"),
    ("event_features:\n  x: {kind: cube, column: amount}", "kind 'cube'"),
    ("event_features:\n  r: {kind: ratio, column: amount, over: merchant_risk.amount_p95_30d}", "does not use"),
    ("event_features:\n  v: {kind: recent_count, column: customer_id}", "recent_count needs minutes"),
    ("event_features:\n  v: {kind: recent_count, column: customer_id, minutes: 0.5}", "recent_count needs minutes"),
    ("event_features:\n  v: {kind: bucket_distinct, column: customer_id, minutes: 60}", "bucket_distinct needs of"),
])
def test_invalid_specs_name_the_file_and_key(tmp_path, change: str, message: str) -> None:
    head = change.split(":", 1)[0]
    kept = [line for line in SPEC.strip().splitlines()
            if not (line.startswith(head) or (head == "event_features" and line.startswith("  amount")))]
    with pytest.raises(ModelSpecError, match=message) as err:
        load_model_spec(spec_file(tmp_path, "\n".join(kept) + "\n" + change + "\n"))
    assert "m.yaml" in str(err.value)


def test_sizing_goes_distributed_only_when_data_is_large() -> None:
    small = training_plan(100_000, 80, workers=2, memory_per_worker_bytes=4096 * MB)
    assert small.mode == "single" and small.partitions == 1
    big = training_plan(5_000_000, 80, workers=4, memory_per_worker_bytes=4096 * MB)
    assert big.mode == "distributed" and big.partitions % 4 == 0 and big.partitions >= 4
    one = training_plan(5_000_000, 80, workers=1, memory_per_worker_bytes=64 * 1024 * MB)
    assert one.mode == "single"
    forced = training_plan(1000, 10, workers=2, memory_per_worker_bytes=1024 * MB, force="distributed")
    assert forced.mode == "distributed" and any("forced" in r for r in forced.reasons)


def test_checkpoints_keep_the_latest_and_stop_after_finish(tmp_path) -> None:
    lake = Lake(str(tmp_path))
    store = CheckpointStore(lake, "m", run_key("manual__1", "fp", {"a": 1}))
    assert store.latest() is None
    for rounds in (10, 20, 30, 40):
        store.save(rounds, f"model-{rounds}".encode(), {"best": rounds})
    latest = store.latest()
    assert latest is not None and latest.rounds == 40 and latest.model == b"model-40" and latest.state == {"best": 40}
    files = sorted(f.key.rsplit("/", 1)[1] for f in lake.list_files(store.prefix))
    assert files == ["latest.json", "round-000020.bin", "round-000030.bin", "round-000040.bin"]
    store.finish("succeeded")
    assert store.latest() is None  # a finished run is never resumed
    assert run_key("manual__1", "fp", {"a": 1}) != run_key("manual__1", "fp2", {"a": 1})


def test_holdout_metrics_on_known_scores() -> None:
    y = np.array([1, 0, 1, 0, 0, 0, 0, 0, 0, 0])
    score = np.array([0.9, 0.8, 0.7, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.05])
    m = holdout_metrics(y, score, review_budget=0.2)  # the top 2 are reviewed: one fraud among them
    assert (m.rows, m.positives) == (10, 2)
    assert m.precision_at_budget == 0.5 and m.recall_at_budget == 0.5 and m.threshold_at_budget == 0.8
    assert m.roc_auc == pytest.approx(15 / 16) and m.pr_auc == pytest.approx((1 + 2 / 3) / 2)
    assert m.brier == pytest.approx(np.mean((score - y) ** 2))
    curve = reliability_curve(y, score, bins=2)
    assert sum(b["count"] for b in curve) == 10
    assert compare(m.scalars(), None) == {"champion": None}
    assert compare(m.scalars(), {**m.scalars(), "pr_auc": 0.5})["pr_auc"] == pytest.approx(m.pr_auc - 0.5)


def test_class_weights_and_downsampling() -> None:
    import pandas as pd

    assert class_weight_params("scale_pos_weight", 900, 100) == {"scale_pos_weight": 9.0}
    assert class_weight_params("sqrt_scale_pos_weight", 900, 100) == {"scale_pos_weight": 3.0}
    assert class_weight_params("none", 900, 100) == {}
    with pytest.raises(ValueError, match="not one of"):
        class_weight_params("oversample", 1, 1)
    frame = pd.DataFrame({"event_id": [f"e{i}" for i in range(10_000)], "label": [1] * 100 + [0] * 9_900})
    kept = downsample(frame, "downsample_negatives", "event_id")
    assert kept["label"].sum() == 100 and 0.15 < (kept["label"] == 0).sum() / 9_900 < 0.25
    assert kept.equals(downsample(frame, "downsample_negatives", "event_id"))  # deterministic


def test_downsampled_negatives_are_weighted_back_to_the_full_data() -> None:
    import numpy as np

    labels = np.array([1] * 50 + [0] * 20_000)
    keys = np.array([f"e{i}" for i in range(len(labels))])
    keep = kept_rows(keys, labels, "downsample_negatives", 0.25)
    weights = negative_weights(labels[keep], 0.25)
    assert keep[:50].all() and abs(weights[labels[keep] == 0].sum() - 20_000) < 0.05 * 20_000
    assert set(weights[labels[keep] == 1]) == {1.0}
    assert kept_rows(keys, labels, "none") is None


def test_last_label_per_key_and_split_bounds() -> None:
    import datetime as dt

    import pyarrow as pa
    from mlscale.training import load_model_spec
    from mlscale.training.dataset import last_per_key, split_bounds

    t = [dt.datetime(2026, 1, d, tzinfo=dt.UTC) for d in (1, 3, 2, 3)]
    labels = pa.table({"event_id": ["a", "a", "b", "b"], "reported_at": t, "is_fraud": [0, 1, 1, 0]})
    latest = last_per_key(labels, "event_id", "reported_at")
    assert latest.column("event_id").to_pylist() == ["a", "b"]      # by time; the later report wins
    assert latest.column("is_fraud").to_pylist() == [1, 0]
    spec = load_model_spec("fraud_detector")
    assert split_bounds(100, spec) == [("train", 0, 70), ("validation", 70, 85), ("holdout", 85, 100)]
    assert split_bounds(7, spec) == [("train", 0, 5), ("validation", 5, 6), ("holdout", 6, 7)]
