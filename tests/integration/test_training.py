"""Training on real Dask clusters over a generated world: training sets, early stopping, checkpoints and
resume after a killed attempt, a lost worker, the MLflow registry with lineage, and the DAG through Airflow."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from distributed import Client, LocalCluster
from mlscale.compute import visible_gpus
from mlscale.feature_store import feature_store_for
from mlscale.features import load_feature_set
from mlscale.lake import Lake, PartitionRef
from mlscale.training import (
    build_training_set,
    load_model_spec,
    read_split,
    registry,
    train_model,
    training_ref,
)
from mlscale.training.checkpoint import CheckpointStore
from mlscale.training.data import TrainingInputs
from mlscale.training.dataset import LABEL, label_cutoff
from mlscale.training.evaluate import holdout_metrics
from mlscale.training.inputs import feature_columns
from mlscale.training.lgbm_trainer import train_lightgbm
from mlscale.training.model import StoredModel
from mlscale.training.xgb_trainer import train_xgboost

from tests.integration.test_dask_hook_operator import external_cluster  # noqa: F401 - fixture
from tests.integration.world import build_world

START = dt.date(2026, 11, 1)
DAYS = 6
LAST = (START + dt.timedelta(days=DAYS - 1)).isoformat()
ROOT = Path(__file__).resolve().parents[2]
SPEC = load_model_spec("fraud_detector")
PARAMS = {"max_depth": 4, "learning_rate": 0.1}


@pytest.fixture(scope="module")
def lake(tmp_path_factory) -> Lake:
    lake = Lake(str(tmp_path_factory.mktemp("training") / "lake"))
    build_world(lake, start=START, days=DAYS, rows_per_day=4000, seed=11)
    return lake


@pytest.fixture(scope="module")
def training_set(lake):
    return build_training_set(lake=lake, spec=SPEC, dt_=LAST, run_id="build-1", store=feature_store_for(lake))


@pytest.fixture(scope="module")
def client():
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        yield client


def inputs(lake) -> TrainingInputs:
    return TrainingInputs(lake, training_ref(SPEC, LAST), tuple(feature_columns(SPEC)), "sqrt_scale_pos_weight")


def test_training_set_is_point_in_time_split_by_time_and_reproducible(lake, training_set) -> None:
    ref = training_ref(SPEC, LAST)
    splits = {s: read_split(lake, ref, s).to_pandas() for s in ("train", "validation", "holdout")}
    assert {s: len(f) for s, f in splits.items()} == training_set.rows
    assert training_set.positives["holdout"] > 0
    # by event time: everything in train precedes validation, which precedes holdout
    assert splits["train"]["event_ts"].max() <= splits["validation"]["event_ts"].min()
    assert splits["validation"]["event_ts"].max() <= splits["holdout"]["event_ts"].min()
    # point in time: a row's customer features are those of the as-of table of the day before its event
    fs = load_feature_set("customer_activity")
    column = f"{fs.table}__spend_sum_30d"
    sample = splits["holdout"].dropna(subset=[column]).head(25)
    assert len(sample)
    for _, row in sample.iterrows():
        day = (row["event_ts"].date() - dt.timedelta(days=1))
        table = lake.read_table(PartitionRef.of("features", fs.table, day)).to_pandas().set_index("customer_id")
        assert row[column] == pytest.approx(table.loc[row["customer_id"], "spend_sum_30d"])
    # only labels reported before the cut-off of D; rebuilding gives the same identity
    labels = pd.concat([lake.read_table(r).to_pandas() for r in lake.partitions("raw", "labels")])
    used = pd.concat(splits.values())["event_id"]
    late = labels[labels["reported_at"] >= label_cutoff(LAST)]
    assert not set(late["event_id"]) & set(used)
    again = build_training_set(lake=lake, spec=SPEC, dt_=LAST, run_id="build-2", store=feature_store_for(lake))
    assert again.fingerprint == training_set.fingerprint


def test_earlier_day_sees_fewer_labels(lake, training_set) -> None:
    earlier = (dt.date.fromisoformat(LAST) - dt.timedelta(days=1)).isoformat()
    before = build_training_set(lake=lake, spec=SPEC, dt_=earlier, run_id="b", store=feature_store_for(lake))
    assert sum(before.rows.values()) < sum(training_set.rows.values())
    assert before.fingerprint != training_set.fingerprint


def test_early_stopping_stops_and_keeps_the_best_round(lake, training_set, client) -> None:
    store = CheckpointStore(lake, SPEC.name, "early-stop")
    out = train_xgboost(client, inputs(lake), PARAMS, mode="single", partitions=1, max_rounds=500,
                        early_stopping_rounds=10, checkpoints=store, checkpoint_every=5)
    assert out.stopped_early and out.rounds_trained < 500
    assert out.rounds_trained - out.rounds == 10  # stopped 10 rounds after the best one, which is kept
    assert out.metric == "logloss" and out.best_score == pytest.approx(min(out.history))  # lower is better


def test_lightgbm_on_dask_stops_early_at_chunk_granularity(lake, training_set, client) -> None:
    store = CheckpointStore(lake, SPEC.name, "lgbm-dask")
    out = train_lightgbm(client, inputs(lake), PARAMS, mode="distributed", partitions=2, max_rounds=200,
                         early_stopping_rounds=10, checkpoints=store, checkpoint_every=5)
    assert out.mode == "distributed" and out.stopped_early and out.rounds_trained < 200
    assert out.rounds % 5 == 0 and out.rounds_trained - out.rounds >= 10
    assert out.best_score == pytest.approx(max(out.history))
    model = StoredModel(name="m", version="x", algorithm="lightgbm", features=inputs(lake).features, raw=out.model)
    assert model.booster.current_iteration() == out.rounds


def test_xgboost_dask_on_an_external_scheduler(lake, training_set, external_cluster) -> None:  # noqa: F811
    with Client(f"tcp://127.0.0.1:{external_cluster}") as remote:
        store = CheckpointStore(lake, SPEC.name, "external")
        out = train_xgboost(remote, inputs(lake), PARAMS, mode="distributed", partitions=2, max_rounds=30,
                            early_stopping_rounds=30, checkpoints=store, checkpoint_every=10)
    assert out.mode == "distributed" and out.rounds_trained == 30
    assert store.latest() is not None and store.latest().rounds == 30


KILLED_ATTEMPT = """
import sys
from distributed import Client, LocalCluster
from mlscale.lake import Lake
from mlscale.training.checkpoint import CheckpointStore
from tests.integration.test_training import PARAMS, inputs, SPEC
from mlscale.training.xgb_trainer import train_xgboost
if __name__ == "__main__":
    lake = Lake(sys.argv[1])
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as c, Client(c) as cl:
        train_xgboost(cl, inputs(lake), PARAMS, mode="single", partitions=1, max_rounds=4000,
                      early_stopping_rounds=4000, checkpoints=CheckpointStore(lake, SPEC.name, "killed"),
                      checkpoint_every=10)
"""


def test_retry_resumes_from_the_last_checkpoint_of_a_killed_attempt(lake, training_set, client, tmp_path) -> None:
    script = tmp_path / "attempt.py"
    script.write_text(KILLED_ATTEMPT)
    log = (tmp_path / "attempt.log").open("w")
    proc = subprocess.Popen([sys.executable, str(script), lake.uri("")], cwd=ROOT, stdout=log, stderr=log,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, start_new_session=True)
    store = CheckpointStore(lake, SPEC.name, "killed")
    deadline = time.time() + 240
    while time.time() < deadline and (store.latest() is None or store.latest().rounds < 30):
        assert proc.poll() is None, (tmp_path / "attempt.log").read_text()[-3000:]
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # the worker dies mid-training: no clean shutdown
    proc.wait(timeout=30)
    saved = store.latest()
    assert saved is not None and saved.rounds >= 30
    max_rounds = saved.rounds + 40
    resumed = train_xgboost(client, inputs(lake), PARAMS, mode="single", partitions=1, max_rounds=max_rounds,
                            early_stopping_rounds=max_rounds, checkpoints=store, checkpoint_every=10)
    assert resumed.resumed_from == saved.rounds
    assert resumed.rounds_this_attempt == max_rounds - saved.rounds < resumed.rounds_trained == max_rounds
    fresh = train_xgboost(client, inputs(lake), PARAMS, mode="single", partitions=1, max_rounds=max_rounds,
                          early_stopping_rounds=max_rounds, checkpoints=CheckpointStore(lake, SPEC.name, "fresh"),
                          checkpoint_every=10)
    holdout = read_split(lake, training_ref(SPEC, LAST), "holdout").to_pandas()

    def pr_auc(raw: bytes) -> float:
        model = StoredModel(name="m", version="x", algorithm="xgboost", features=inputs(lake).features, raw=raw)
        return holdout_metrics(holdout[LABEL], model.predict(holdout), review_budget=0.01).pr_auc

    assert abs(pr_auc(resumed.model) - pr_auc(fresh.model)) < 0.05


def test_a_lost_worker_fails_the_attempt_within_a_bounded_time(lake, training_set) -> None:
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        store = CheckpointStore(lake, SPEC.name, "lost-worker")
        pids = list(client.run(os.getpid).values())

        def kill_when_training() -> None:
            deadline = time.time() + 120
            while time.time() < deadline and store.latest() is None:
                time.sleep(0.1)
            os.kill(pids[-1], signal.SIGKILL)

        killer = threading.Thread(target=kill_when_training, daemon=True)
        killer.start()
        started = time.time()
        with pytest.raises(Exception):  # noqa: B017 - xgboost, dask or the collective: any clean failure
            train_xgboost(client, inputs(lake), PARAMS, mode="distributed", partitions=2, max_rounds=100_000,
                          early_stopping_rounds=100_000, checkpoints=store, checkpoint_every=5,
                          collective_timeout_s=20)
        assert time.time() - started < 180
        assert store.latest() is not None  # what was trained before the loss is kept for the retry


def test_train_model_registers_a_challenger_with_lineage(lake, training_set, client) -> None:
    first = train_model(model="fraud_detector", client=client, lake=lake, dt=LAST, run_id="manual__first", max_rounds=40)
    config = registry.RegistryConfig.for_lake(lake)
    mlflow = registry.client_for(config)
    assert registry.alias_version(mlflow, SPEC.name, registry.CHALLENGER) == first.version
    assert registry.alias_version(mlflow, SPEC.name, registry.CHAMPION) is None  # only the gate promotes
    tags = registry.version_tags(mlflow, SPEC.name, first.version)
    assert tags["dataset_fingerprint"] == training_set.fingerprint
    assert json.loads(tags["feature_set_versions"]) == training_set.feature_set_versions
    assert tags["airflow_run_id"] == "manual__first" and tags["code_version"]
    # the tags are enough to rebuild the training set: same day, same cut-off, same identity
    day = tags["training_set"].rsplit("dt=", 1)[1]
    assert tags["label_cutoff"] == label_cutoff(day).isoformat()
    rebuilt = build_training_set(lake=lake, spec=SPEC, dt_=day, run_id="rebuild", store=feature_store_for(lake))
    assert rebuilt.fingerprint == tags["dataset_fingerprint"]
    stored = StoredModel.load(lake, SPEC.name, first.version)
    assert stored.doc["holdout"]["pr_auc"] == pytest.approx(first.holdout["pr_auc"])
    record = lake.read_json(f"_meta/lineage_refs/{SPEC.name}-{first.version}.json")
    assert training_set.partition in record["references"] and record["status"] == "registered"
    assert lake.exists(f"reports/training/{SPEC.name}/{first.version}/report.html")
    # the synthetic world knows the true probabilities: the holdout PR-AUC is reported against their ceiling
    ceiling = lake.read_json(f"reports/training/{SPEC.name}/{first.version}/report.json")["ceiling"]
    assert ceiling == stored.doc["ceiling"] and ceiling["available"] is True
    assert ceiling["rows"] == first.holdout["rows"] and ceiling["pr_auc"] == pytest.approx(first.holdout["pr_auc"], abs=1e-6)
    assert ceiling["ratio"] == pytest.approx(ceiling["pr_auc"] / ceiling["ceiling"], rel=1e-4)
    assert ceiling["ratio_interval"][0] <= ceiling["ratio"] <= ceiling["ratio_interval"][1]
    # the report says which feature values training read; nothing was scored in this world, so none compared
    skew = lake.read_json(f"reports/training/{SPEC.name}/{first.version}/report.json")["serving_skew"]
    assert skew["mode"].startswith("latest as-of tables") and skew["compared_rows"] == 0
    assert 0 <= first.holdout["brier"] <= 1 and first.holdout["rows"] == training_set.rows["holdout"]
    # with a champion, the next version is compared with it on the same holdout
    registry.set_alias(mlflow, SPEC.name, registry.CHAMPION, first.version)
    second = train_model(model="fraud_detector", client=client, lake=lake, dt=LAST, run_id="manual__second", algorithm="lightgbm",
                         max_rounds=40)
    assert second.champion_version == first.version
    assert second.vs_champion["pr_auc"] == pytest.approx(second.holdout["pr_auc"] - first.holdout["pr_auc"], abs=1e-6)
    assert registry.alias_version(mlflow, SPEC.name, registry.CHALLENGER) == second.version
    finished = [f.key for f in lake.list_files(f"checkpoints/{SPEC.name}") if f.key.endswith("_finished.json")]
    assert len(finished) == 2



def test_health_report_reads_the_lake_the_pipelines_wrote(lake) -> None:
    """The pipeline health report on a lake written by the real ingestion, features and training."""
    from mlscale.reports.health import build_health_report

    report = build_health_report(lake, LAST, history_days=DAYS, datasets=("customers", "labels", "transactions"))
    for dataset in ("transactions", "customers", "labels"):
        row = next(r for r in report.pipelines[f"ingest_{dataset}"] if r.day == LAST)
        assert row.status in ("ok", "attention") and row.rows_in and row.rows_out is not None
        assert row.quarantine_rate is not None and row.seconds is not None
    assert any(m["pr_auc"] is not None for m in report.models)  # registered by the training tests above
    assert lake.exists(f"reports/health/{LAST}/report.json") and lake.exists(f"reports/health/{LAST}/report.html")

@pytest.mark.skipif(visible_gpus() == 0, reason="no GPU on this machine: the GPU path runs on a GPU host "
                                                "(scripts/device/gpu_training_check.py)")
def test_xgboost_on_gpu_workers(lake, training_set) -> None:
    from mlscale.compute import ClusterSpec, open_client

    with open_client(ClusterSpec(name="gpu", gpu=True)) as gpu_client:
        out = train_xgboost(gpu_client, inputs(lake), PARAMS, mode="distributed", partitions=1, max_rounds=20,
                            early_stopping_rounds=20, checkpoints=CheckpointStore(lake, SPEC.name, "gpu"),
                            checkpoint_every=10, gpu=True)
    assert out.rounds_trained == 20 and np.isfinite(out.best_score)
