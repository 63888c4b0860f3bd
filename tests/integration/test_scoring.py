"""Batch scoring on a real Dask cluster (2 worker processes) over a generated world with two trained versions:
idempotence per partition, shadow isolation, sampled feature logging, one model load per worker, repeated
inputs scored once, the shadow report, a missing champion, and a copy of the lake that works on its own."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from distributed import Client, LocalCluster
from mlscale.audit.access_report import read_access_log
from mlscale.lake import Lake, PartitionRef
from mlscale.lifecycle.run import apply_lifecycle, plan_lifecycle
from mlscale.scoring import (
    NoChampionError,
    compare_shadow,
    distinct_inputs,
    features_ref,
    predictions_ref,
    report_prefix,
    sample_mask,
    score_batch,
)
from mlscale.scoring.layout import champion_filter
from mlscale.scoring.workers import split_rows
from mlscale.training import StoredModel, registry, train_model

from tests.integration.world import build_world

START = dt.date(2026, 11, 1)
DAYS = 5
ROWS = 3000
MODEL = "fraud_detector"


@dataclass
class World:
    lake: Lake
    days: list[str]
    registry: Any
    client: Client


@pytest.fixture(scope="module")
def client():
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        yield client


@pytest.fixture(scope="module")
def world(tmp_path_factory, client) -> World:
    lake = Lake(f"file://{tmp_path_factory.mktemp('scoring')}/lake")
    days = build_world(lake, start=START, days=DAYS, rows_per_day=ROWS, client=client)
    first = train_model(model="fraud_detector", client=client, lake=lake, dt=days[-1], run_id="train_1", max_rounds=20)
    second = train_model(model="fraud_detector", client=client, lake=lake, dt=days[-1], run_id="train_2", max_rounds=20,
                         class_weight="scale_pos_weight")
    reg = registry.client_for(registry.RegistryConfig.for_lake(lake))
    registry.set_alias(reg, MODEL, registry.CHAMPION, first.version)
    registry.set_alias(reg, MODEL, registry.CHALLENGER, second.version)
    assert (first.version, second.version) == ("1", "2")
    return World(lake=lake, days=days, registry=reg, client=client)


def raw_events(lake: Lake, day: str) -> pd.DataFrame:
    return lake.read_table(PartitionRef.of("raw", "transactions", day)).to_pandas()


def predictions(lake: Lake, day: str) -> pd.DataFrame:
    frame = lake.read_table(predictions_ref(MODEL, day)).to_pandas()
    frame["role"] = frame["role"].astype(str)
    return frame


def without(doc: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k not in keys}


# -- pure pieces ---------------------------------------------------------------------------------------------
def test_distinct_inputs_groups_equal_rows_nan_included() -> None:
    frame = pd.DataFrame({"a": [1.0, 1.0, 2.0, np.nan, np.nan], "b": [np.nan, np.nan, 3.0, 4.0, 4.0]})
    groups = distinct_inputs(frame, ["a", "b"])
    assert (groups.rows, groups.distinct, groups.repeats) == (5, 3, 2)
    assert groups.inverse[0] == groups.inverse[1] and groups.inverse[3] == groups.inverse[4]
    assert len({groups.inverse[0], groups.inverse[2], groups.inverse[3]}) == 3
    values = np.arange(groups.distinct, dtype=float)
    assert groups.expand(values)[1] == values[groups.inverse[0]]


def test_distinct_inputs_compare_values_as_the_model_sees_them(monkeypatch) -> None:
    frame = pd.DataFrame({"a": [0.0, -0.0, 1.0, 1.0 + 1e-12, 2.0], "b": [1.0, 1.0, 5.0, 5.0, 5.0]})
    groups = distinct_inputs(frame, ["a", "b"])      # -0.0 is 0.0; float64 noise below float32 is the same input
    assert groups.distinct == 3 and list(groups.inverse) == [0, 0, 1, 1, 2]
    assert groups.hashes[0] == groups.hashes[1] and groups.hashes[0] != groups.hashes[4]
    # a hash collision never merges different vectors: the rows are compared value by value
    monkeypatch.setattr("mlscale.scoring.dedupe.row_hashes", lambda m: np.zeros(len(m), dtype=np.uint64))
    collided = distinct_inputs(frame, ["a", "b"])
    assert collided.distinct == 3 and list(collided.inverse) == [0, 0, 1, 1, 2]
    np.testing.assert_array_equal(collided.unique, np.array([[0, 1], [1, 5], [2, 5]], dtype=np.float32))


def test_split_rows_covers_every_row_without_empty_partitions() -> None:
    assert split_rows(10, 3) == [(0, 3), (3, 7), (7, 10)]
    assert split_rows(2, 5) == [(0, 1), (1, 2)]
    assert sum(b - a for a, b in split_rows(1001, 16)) == 1001


def test_sample_mask_is_deterministic_and_nested() -> None:
    keys = pa.array([f"T{i:08d}" for i in range(20_000)])
    low, high = sample_mask(keys, 0.01), sample_mask(keys, 0.05)
    assert np.array_equal(low, sample_mask(keys, 0.01))
    assert not (low & ~high).any()          # a higher rate keeps every event a lower rate sampled
    assert abs(low.mean() - 0.01) < 0.003 and abs(high.mean() - 0.05) < 0.006
    assert not sample_mask(keys, 0.0).any() and sample_mask(keys, 1.0).all()


# -- score_batch on the cluster ------------------------------------------------------------------------------
def test_scoring_is_idempotent_per_partition(world: World) -> None:
    lake, day = world.lake, world.days[3]
    first = score_batch(model="fraud_detector", client=world.client, lake=lake, dt=day, run_id="score_1", sample_rate=0.05)
    events = raw_events(lake, day)
    rows = predictions(lake, day)
    champion = rows[rows["role"] == "champion"]
    assert first.status == "scored" and first.rows_read == first.written == len(events) == ROWS
    assert sorted(champion["event_id"]) == sorted(events["event_id"])
    assert first.shadow_written == len(rows[rows["role"] == "shadow"]) == ROWS
    manifest = lake.manifest(predictions_ref(MODEL, day))
    assert manifest is not None and manifest.extra["signature"] == first.signature
    assert lake.uri(f"models/{MODEL}/1/") in manifest.inputs and lake.uri(f"models/{MODEL}/2/") in manifest.inputs
    assert lake.uri(f"raw/transactions/dt={day}") in manifest.inputs
    assert any("/features/" in uri for uri in manifest.inputs)

    again = score_batch(model="fraud_detector", client=world.client, lake=lake, dt=day, run_id="score_2", sample_rate=0.05)
    assert again.status == "unchanged"
    assert without(again.as_dict(), "status", "seconds") == without(first.as_dict(), "status", "seconds")
    assert lake.manifest(predictions_ref(MODEL, day)).attempt == manifest.attempt   # nothing rewritten
    pd.testing.assert_frame_equal(predictions(lake, day), rows)

    changed = score_batch(model="fraud_detector", client=world.client, lake=lake, dt=day, run_id="score_3", sample_rate=0.08)
    assert changed.status == "scored" and changed.signature != first.signature
    rewritten = predictions(lake, day)
    assert lake.manifest(predictions_ref(MODEL, day)).attempt != manifest.attempt
    pd.testing.assert_frame_equal(rewritten.drop(columns=["sampled"]), rows.drop(columns=["sampled"]))
    assert rewritten["sampled"].sum() > rows["sampled"].sum()
    assert lake.orphans(f"predictions/{MODEL}/dt={day}") == []   # the replaced attempt's files are accounted for:
    assert set(manifest.file_keys()) <= set(lake.superseded(f"predictions/{MODEL}/dt={day}"))  # kept for the grace


def test_shadow_never_affects_decisions(world: World) -> None:
    lake, day = world.lake, world.days[2]
    with_shadow = score_batch(model="fraud_detector", client=world.client, lake=lake, dt=day, run_id="shadow_on")
    rows = predictions(lake, day)
    champion = rows[rows["role"] == "champion"].set_index("event_id").sort_index()
    shadow = rows[rows["role"] == "shadow"].set_index("event_id").sort_index()
    assert with_shadow.challenger_version == "2" and len(shadow) == len(champion)
    assert shadow["decision"].isna().all() and shadow["shadow_decision"].notna().all()
    assert champion["shadow_decision"].isna().all() and champion["decision"].notna().all()
    assert not np.allclose(shadow["score"], champion["score"])          # the challenger is another model
    decided = lake.read_table(predictions_ref(MODEL, day), filter=champion_filter()).to_pandas()
    assert len(decided) == len(champion) and set(decided["role"].astype(str)) == {"champion"}

    world.registry.delete_registered_model_alias(MODEL, registry.CHALLENGER)
    try:
        alone = score_batch(model="fraud_detector", client=world.client, lake=lake, dt=day, run_id="shadow_off")
        report = compare_shadow(model="fraud_detector", lake=lake, dt=day, run_id="shadow_off")
    finally:
        registry.set_alias(world.registry, MODEL, registry.CHALLENGER, "2")
    assert alone.status == "scored" and alone.challenger_version is None and alone.shadow_written == 0
    assert alone.model_loads == {"champion": 2}
    after = predictions(lake, day)
    assert set(after["role"]) == {"champion"}
    solo = after.set_index("event_id").sort_index()
    pd.testing.assert_series_equal(solo["decision"].astype(bool), champion["decision"].astype(bool))
    pd.testing.assert_series_equal(solo["score"], champion["score"])
    assert alone.flagged == with_shadow.flagged and alone.threshold == with_shadow.threshold
    assert report.status == "no_challenger" and report.challenger is None


def test_sampled_feature_logging_rate(world: World) -> None:
    lake, day, rate = world.lake, world.days[4], 0.1
    result = score_batch(model="fraud_detector", client=world.client, lake=lake, dt=day, run_id="sample", sample_rate=rate)
    rows = predictions(lake, day)
    champion = rows[rows["role"] == "champion"].set_index("event_id")
    logged = lake.read_table(features_ref(MODEL, day)).to_pandas()
    expected = ROWS * rate
    assert abs(result.sampled - expected) <= 4 * math.sqrt(ROWS * rate * (1 - rate))
    assert len(logged) == result.sampled == int(champion["sampled"].sum())
    keys = pa.array(sorted(raw_events(lake, day)["event_id"]))
    chosen = set(np.asarray(keys)[sample_mask(keys, rate)])
    assert set(logged["event_id"]) == chosen == set(champion.index[champion["sampled"]])
    model = StoredModel.load(lake, MODEL, result.champion_version)
    assert set(model.features) <= set(logged.columns)
    np.testing.assert_allclose(model.predict(logged), logged["score"], rtol=0, atol=1e-7)
    np.testing.assert_allclose(champion.loc[logged["event_id"], "score"], logged["score"], rtol=0, atol=0)


def test_model_loaded_once_per_worker_not_per_partition(world: World) -> None:
    lake, day = world.lake, world.days[1]
    result = score_batch(model="fraud_detector", client=world.client, lake=lake, dt=day, run_id="loads", rows_per_partition=100,
                         force=True)
    assert result.workers == 2 and result.partitions >= 25
    assert result.model_loads == {"champion": 2, "shadow": 2}
    cached = world.client.run(lambda: len(__import__("mlscale.scoring.workers", fromlist=["_MODELS"])._MODELS))
    assert set(cached.values()) == {0}   # released after the run


def test_repeated_identical_inputs_are_scored_once(world: World) -> None:
    lake, last = world.lake, world.days[-1]
    day = (dt.date.fromisoformat(last) + dt.timedelta(days=1)).isoformat()
    base = raw_events(lake, last).sort_values("event_id").head(200).reset_index(drop=True)
    base["event_ts"] = base["event_ts"] + pd.Timedelta(days=1)
    copies = []
    for copy in range(3):
        part = base.copy()
        part["event_id"] = [f"T{day.replace('-', '')}-dup{copy}-{i:05d}" for i in range(len(part))]
        copies.append(part)
    frame = pd.concat(copies, ignore_index=True)
    frame["region"] = frame["region"].astype(str)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    with lake.writer(PartitionRef.of("raw", "transactions", day), run_id="test_dups", schema=table.schema) as writer:
        writer.write(table)

    result = score_batch(model="fraud_detector", client=world.client, lake=lake, dt=day, run_id="dups")
    assert (result.rows_read, result.distinct_inputs, result.repeated_inputs, result.scored) == (600, 200, 400, 200)
    assert result.written == 600
    rows = predictions(lake, day)
    champion = rows[rows["role"] == "champion"].copy()
    champion["base"] = champion["event_id"].str[-5:]
    per_base = champion.groupby("base").agg(hashes=("input_hash", "nunique"), scores=("score", "nunique"),
                                            n=("score", "size"))
    assert (per_base["n"] == 3).all() and (per_base["hashes"] == 1).all() and (per_base["scores"] == 1).all()
    assert champion["input_hash"].nunique() == 200


def test_shadow_report(world: World) -> None:
    lake, day = world.lake, world.days[1]
    score_batch(model="fraud_detector", client=world.client, lake=lake, dt=day, run_id="report")
    report = compare_shadow(model="fraud_detector", lake=lake, dt=day, run_id="report <script>alert(1)</script>")
    rows = predictions(lake, day)
    champion = rows[rows["role"] == "champion"].set_index("event_id").sort_index()
    shadow = rows[rows["role"] == "shadow"].set_index("event_id").sort_index()
    a, b = champion["decision"].astype(bool), shadow["shadow_decision"].astype(bool)
    assert report.status == "compared" and report.events == ROWS
    assert (report.champion_version, report.challenger_version) == ("1", "2")
    assert report.agreement_rate == pytest.approx((a == b).mean())
    assert report.decisions_changed == int((a != b).sum()) == report.newly_flagged + report.no_longer_flagged
    assert report.newly_flagged == int((~a & b).sum())
    assert report.score_pearson == pytest.approx(np.corrcoef(champion["score"], shadow["score"])[0, 1])
    assert report.score_spearman == pytest.approx(champion["score"].rank().corr(shadow["score"].rank()))
    # labels arrive later: the days after D that exist are read, and only labelled events count
    assert report.labelled > 0 and set(report.label_days_read) <= set(world.days[1:])
    assert report.champion.flagged == int(a.sum()) and report.challenger is not None
    for outcome in (report.champion, report.challenger):
        assert outcome.true_positives + outcome.false_negatives == report.labelled_positives
        assert outcome.labelled_flagged == outcome.true_positives + outcome.false_positives
        if outcome.labelled_flagged:
            assert outcome.precision == pytest.approx(outcome.true_positives / outcome.labelled_flagged)

    prefix = report_prefix(MODEL, day)
    doc = json.loads(lake.read_bytes(f"{prefix}/report.json"))
    assert doc["agreement_rate"] == pytest.approx(report.agreement_rate)
    assert doc["champion"]["version"] == "1" and doc["labelled"] == report.labelled
    page = lake.read_bytes(f"{prefix}/report.html").decode()
    assert "<table>" in page and "agreement rate" in page and "would newly flag" in page
    assert "<script>" not in page and "&lt;script&gt;" in page
    today = dt.datetime.now(dt.UTC).date()
    records = read_access_log(lake, today - dt.timedelta(days=1), today + dt.timedelta(days=1))
    reads = [r for r in records if r.key == predictions_ref(MODEL, day).key and r.purpose == "shadow_comparison"]
    assert reads and reads[-1].actor["run_id"].startswith("report")


def test_missing_champion_is_a_clear_error(world: World) -> None:
    lake, day = world.lake, world.days[0]
    world.registry.delete_registered_model_alias(MODEL, registry.CHAMPION)
    try:
        with pytest.raises(NoChampionError, match=r"no 'champion' version.*set_alias"):
            score_batch(model="fraud_detector", client=world.client, lake=lake, dt=day, run_id="no_champion")
    finally:
        registry.set_alias(world.registry, MODEL, registry.CHAMPION, "1")
    assert lake.manifest(predictions_ref(MODEL, day)) is None


def _digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_a_copied_lake_trains_and_scores_on_its_own(world: World, tmp_path) -> None:
    """The README's replay against another lake root: the copy's registry and feature store name the copy's own
    folders, so training and scoring there leave the original byte for byte as it was, and work with the
    original out of the way."""
    original = Path(world.lake.path(""))
    copy = Lake(str(tmp_path / "copy"))
    shutil.copytree(original, copy.path(""))
    before = _digest(original)
    away = original.with_name(original.name + "-away")
    original.rename(away)  # nothing of the copy's work may touch (or read) the original
    try:
        trained = train_model(model="fraud_detector", client=world.client, lake=copy, dt=world.days[-1],
                              run_id="train_copy", max_rounds=5)
        scored = score_batch(model="fraud_detector", client=world.client, lake=copy, dt=world.days[2],
                             run_id="score_copy", force=True)
        assert scored.status == "scored" and scored.written == ROWS
        reg = registry.client_for(registry.RegistryConfig.for_lake(copy))
        for version in ("1", trained.version):  # copied with the lake, and trained in the copy
            stored = reg.get_model_version_download_uri(MODEL, version)
            assert stored.removeprefix("file://").startswith(copy.path("_mlflow/artifacts")), stored
        for experiment in reg.search_experiments():
            if experiment.name.startswith(registry.EXPERIMENT_PREFIX):
                assert experiment.artifact_location.startswith(copy.path("_mlflow/artifacts"))
        assert not original.exists()

        # deleting a version: its model files and the registry's artifacts go at the next lifecycle run
        record = copy.read_json(f"_meta/lineage_refs/{MODEL}-{trained.version}.json")
        mlflow_dirs = [a for a in record["artifacts"] if a.startswith("_mlflow/artifacts/")]
        assert len(mlflow_dirs) == 2 and all(copy.list_files(d) for d in mlflow_dirs)  # the run's, the model's
        with pytest.raises(ValueError, match="is the challenger"):
            registry.delete_version(copy, reg, model=MODEL, version=trained.version, by="test", reason="not needed")
        registry.set_alias(reg, MODEL, registry.CHALLENGER, "2")
        registry.delete_version(copy, reg, model=MODEL, version=trained.version, by="test", reason="not needed")
        kept = {d: len(copy.list_files(d)) for d in
                copy.read_json(f"_meta/lineage_refs/{MODEL}-1.json")["artifacts"]}
        when = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
        summary = plan_lifecycle(copy, run_id="lifecycle_copy", day=when.date(), logical_time=when, dry_run=False,
                                 zones=("models",), grace_hours=0)
        apply_lifecycle(copy, summary)
        assert not copy.list_files(f"models/{MODEL}/{trained.version}")
        assert not any(copy.list_files(d) for d in mlflow_dirs)
        assert {d: len(copy.list_files(d)) for d in kept} == kept  # version 1 is registered: all of it stays
    finally:
        away.rename(original)
    assert _digest(original) == before
