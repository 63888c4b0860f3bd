"""Spans of the pipelines' stages in exported traces: the SDK's OTLP/HTTP exporter sends them to the file
collector (``mlscale.tracing.collector``) on loopback and the tests read its JSONL back.

* a real ingestion on a Dask LocalCluster: ingest → read (→ read_file → validate), dedupe, write, commit, with
  their parent/child relations and row counts equal to the ingestion result;
* training rounds (XGBoost and LightGBM, single-process on a Dask worker) and scoring partitions;
* Dask worker *processes* that build their own provider from the OTEL_* variables and join the driver's trace;
* Airflow 3.3's own task span (``worker.<task_id>``, opened by the task runner from the task instance's context
  carrier and exported by the provider Airflow configures from ``[traces] otel_on`` + OTEL_*): mlscale's spans
  nest under it.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pytest
from distributed import Client, LocalCluster
from mlscale import tracing
from mlscale.ingest import ingest_partition
from mlscale.lake import Lake
from mlscale.synthetic import generate_world
from mlscale.tracing.collector import SpanCollector, read_spans

START = dt.date(2026, 11, 1)


@pytest.fixture(scope="module")
def client() -> Iterator[Client]:
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster, \
            Client(cluster) as c:
        yield c


@pytest.fixture
def collector(tmp_path) -> Iterator[SpanCollector]:
    with SpanCollector(tmp_path / "spans.jsonl", port=0) as running:
        yield running


@dataclass
class Exported:
    provider: Any
    collector: SpanCollector

    def spans(self) -> list[dict[str, Any]]:
        """Flush this process's spans and read what the collector wrote."""
        assert tracing.flush()
        return read_spans(self.collector.sink.path)


@pytest.fixture
def exported(collector) -> Iterator[Exported]:
    """Tracing on in this process (as in an Airflow task process with tracing on), exporting to the collector."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": "airflow-task"}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{collector.endpoint}/v1/traces")))
    tracing.configure(provider)
    yield Exported(provider, collector)
    tracing.reset()
    provider.shutdown()


def named(spans: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [s for s in spans if s["name"] == name]


def one(spans: list[dict[str, Any]], name: str) -> dict[str, Any]:
    found = named(spans, name)
    assert len(found) == 1, f"{len(found)} spans named {name}: {sorted({s['name'] for s in spans})}"
    return found[0]


def start(s: dict[str, Any]) -> int:
    return int(s["start_time_unix_nano"])


def end(s: dict[str, Any]) -> int:
    return int(s["end_time_unix_nano"])


# --------------------------------------------------------------------------------------------------
# Ingestion
# --------------------------------------------------------------------------------------------------

def test_ingestion_stages_are_spans_with_parents_and_row_counts(client, tmp_path, exported) -> None:
    lake = Lake(str(tmp_path / "lake"))
    generate_world(lake.write_bytes, start=START, days=2, rows_per_day=1500, seed=5)
    tracing.configure(None)                   # day 1 untraced: day 2 dedupes against its keys
    ingest_partition(client=client, lake=lake, dt=str(START), run_id="day1", pii_key=b"k")
    tracing.configure(exported.provider)
    day = str(START + dt.timedelta(days=1))
    result = ingest_partition(client=client, lake=lake, dt=day, run_id="day2", pii_key=b"k")
    spans = exported.spans()

    root = one(spans, "ingest")
    assert root["parent_span_id"] is None and root["service"] == "airflow-task" and root["scope"] == "mlscale"
    assert {s["trace_id"] for s in spans} == {root["trace_id"]}
    assert root["attributes"].items() >= {
        "dataset": "transactions", "dt": day, "run_id": "day2", "files": result.files, "rows": result.rows_in,
        "bytes": result.bytes_in, "rows_written": result.rows_written, "rows_duplicate": result.rows_duplicate,
        "rows_quarantined": result.rows_quarantined}.items()

    read, dedupe, write = one(spans, "ingest.read"), one(spans, "ingest.dedupe"), one(spans, "ingest.write")
    commits = {s["attributes"]["zone"]: s for s in named(spans, "ingest.commit")}
    assert set(commits) == {"quarantine", "raw"}
    for stage in (read, dedupe, write, *commits.values()):
        assert stage["parent_span_id"] == root["span_id"], stage["name"]
    assert read["attributes"]["rows"] == result.rows_in and read["attributes"]["bytes"] == result.bytes_in
    assert dedupe["attributes"]["duplicates"] == result.rows_duplicate > 0
    assert write["attributes"]["rows"] == result.rows_written
    assert commits["raw"]["attributes"]["rows"] == result.rows_written
    assert commits["raw"]["attributes"]["bytes"] == result.bytes_out > 0
    assert commits["quarantine"]["attributes"]["rows"] == result.rows_quarantined > 0

    # the work on the Dask workers joins the trace under its stage
    files = named(spans, "ingest.read_file")
    assert len(files) == result.files and {f["parent_span_id"] for f in files} == {read["span_id"]}
    assert sum(f["attributes"]["rows"] for f in files) == result.rows_in
    assert sum(f["attributes"]["valid"] for f in files) == result.rows_written + result.rows_duplicate
    validations = named(spans, "ingest.validate")
    assert validations and {v["parent_span_id"] for v in validations} <= {f["span_id"] for f in files}
    assert all(v["attributes"]["rows"] >= v["attributes"]["valid"] for v in validations)
    buckets = named(spans, "ingest.dedupe_bucket")
    assert buckets and {b["parent_span_id"] for b in buckets} == {dedupe["span_id"]}
    assert sum(b["attributes"]["duplicates"] for b in buckets) == result.rows_duplicate
    assert buckets[0]["attributes"]["earlier_keys"] > 0           # day 1's keys were read
    parts = named(spans, "ingest.write_partition")
    assert parts and {p["parent_span_id"] for p in parts} == {write["span_id"]}
    assert sum(p["attributes"]["rows"] for p in parts) == result.rows_written
    assert all(p["attributes"]["partition"].startswith("region=") for p in parts)

    # in stage order: read, dedupe, quarantine commit, write, raw commit
    assert end(read) <= start(dedupe) and end(dedupe) <= start(commits["quarantine"])
    assert end(commits["quarantine"]) <= start(write) and end(write) <= start(commits["raw"])
    assert start(root) <= start(read) and end(commits["raw"]) <= end(root)


# --------------------------------------------------------------------------------------------------
# Training rounds and scoring partitions
# --------------------------------------------------------------------------------------------------

@dataclass
class SmallInputs:
    """What the trainers read through TrainingInputs (``frame(split)``, ``features``), in memory."""

    features: tuple[str, ...] = ("a", "b", "c")

    def frame(self, split: str) -> tuple[pd.DataFrame, np.ndarray, None]:
        rng = np.random.default_rng(0 if split == "train" else 1)
        x = pd.DataFrame(rng.normal(size=(2000, 3)).astype("float32"), columns=list(self.features))
        y = ((x["a"] + 0.5 * x["b"] + rng.normal(scale=0.5, size=2000)) > 0).astype("int8").to_numpy()
        return x, y, None


@pytest.mark.parametrize("algorithm", ["xgboost", "lightgbm"])
def test_training_rounds_are_spans_under_the_fit(client, tmp_path, exported, algorithm) -> None:
    from mlscale.training.checkpoint import CheckpointStore

    if algorithm == "xgboost":
        from mlscale.training.xgb_trainer import train_xgboost as train
    else:
        from mlscale.training.lgbm_trainer import train_lightgbm as train
    store = CheckpointStore(Lake(str(tmp_path / "lake")), "tiny", f"{algorithm}-run")
    with tracing.span("train", model="tiny"):
        outcome = train(client, SmallInputs(), {"max_depth": 3, "learning_rate": 0.3}, mode="single", partitions=1,
                        max_rounds=12, early_stopping_rounds=50, checkpoints=store, checkpoint_every=5)
    spans = exported.spans()
    fit = one(spans, "train.fit")
    assert fit["parent_span_id"] == one(spans, "train")["span_id"]
    assert fit["attributes"].items() >= {"mode": "single", "algorithm": algorithm, "rounds": 12,
                                         "max_rounds": 12}.items()
    rounds = sorted(named(spans, "train.round"), key=start)
    assert [r["attributes"]["round"] for r in rounds] == list(range(1, outcome.rounds_trained + 1))
    assert {r["parent_span_id"] for r in rounds} == {fit["span_id"]}   # from the worker, through the carrier
    assert all(r["attributes"]["algorithm"] == algorithm for r in rounds)
    metric = "logloss" if algorithm == "xgboost" else "average_precision"
    assert all(isinstance(r["attributes"][metric], float) for r in rounds)
    assert all(start(fit) <= start(r) <= end(r) <= end(fit) for r in rounds)
    assert all(end(a) <= start(b) for a, b in zip(rounds, rounds[1:], strict=False))


def test_scoring_partitions_are_spans_on_the_workers(client, tmp_path, exported) -> None:
    import xgboost as xgb
    from mlscale.scoring import ModelRef, score_inputs
    from mlscale.training import StoredModel

    lake = Lake(str(tmp_path / "lake"))
    x, y, _ = SmallInputs().frame("train")
    booster = xgb.train({"max_depth": 2, "objective": "binary:logistic"}, xgb.DMatrix(x, y), num_boost_round=3)
    StoredModel(name="tiny", version="1", algorithm="xgboost", features=tuple(x.columns),
                raw=bytes(booster.save_raw("ubj"))).save(lake)
    scored = score_inputs(client, lake, x, list(x.columns), [ModelRef("tiny", "1", "champion")], rows_per_partition=500)
    spans = exported.spans()
    predict = one(spans, "score.predict")
    assert predict["attributes"].items() >= {"rows": 2000, "distinct": scored.groups.distinct,
                                             "partitions": scored.partitions, "workers": 2}.items()
    parts = named(spans, "score.partition")
    assert sorted(p["attributes"]["partition"] for p in parts) == list(range(scored.partitions))
    assert {p["parent_span_id"] for p in parts} == {predict["span_id"]}
    assert sum(p["attributes"]["rows"] for p in parts) == scored.groups.distinct
    assert parts[0]["attributes"]["models"] == ["tiny/1"]
    loads = named(spans, "score.load_models")
    assert len(loads) == 2 and {s["parent_span_id"] for s in loads} == {predict["span_id"]}


# --------------------------------------------------------------------------------------------------
# Dask worker processes: their own provider from OTEL_*, the driver's trace through the carrier
# --------------------------------------------------------------------------------------------------

def stage_on_worker(rows: int) -> str:
    with tracing.span("on.worker", rows=rows):
        return str(os.getpid())


def test_worker_processes_export_their_spans_into_the_drivers_trace(exported, monkeypatch) -> None:
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "otlp_proto_http")          # what worker processes inherit
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", exported.collector.endpoint)
    monkeypatch.setenv("OTEL_SERVICE_NAME", "dask-worker")
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as process_client:
        with tracing.span("driver.stage") as driver:
            pid = process_client.submit(tracing.in_context(stage_on_worker), 7, pure=False).result()
        assert pid != str(os.getpid())
        assert all(process_client.run(tracing.flush).values())
    spans = exported.spans()
    worker = one(spans, "on.worker")
    assert worker["service"] == "dask-worker" and worker["attributes"] == {"rows": 7}
    assert worker["parent_span_id"] == format(driver.get_span_context().span_id, "016x")
    assert worker["trace_id"] == one(spans, "driver.stage")["trace_id"]


# --------------------------------------------------------------------------------------------------
# Airflow 3.3: mlscale's spans nest under the task runner's worker.<task_id> span
# --------------------------------------------------------------------------------------------------

AIRFLOW_TASK = """
import json
from types import SimpleNamespace

import airflow  # settings.initialize() -> configure_otel(conf): [traces] otel_on + the OTEL_* exporter
from airflow._shared.observability.traces import new_dagrun_trace_carrier, new_task_run_carrier
from airflow.sdk.execution_time.task_runner import _make_task_span, flush_spans
from mlscale import tracing

# what the scheduler stores on the dag run and the task instance, and the task runner receives at start-up
dag_run_carrier = new_dagrun_trace_carrier()
ti = SimpleNamespace(context_carrier=new_task_run_carrier(dag_run_carrier), task_id="ingest", map_index=-1,
                     dag_id="ingest_transactions", run_id="manual__1", try_number=1)
with flush_spans(), _make_task_span(SimpleNamespace(ti=ti)):
    with tracing.span("ingest", dataset="transactions", rows=10):
        with tracing.span("ingest.read", rows=10):
            pass
print(json.dumps({"task_run": ti.context_carrier["traceparent"], "ours": tracing.enabled()}))
"""


@pytest.mark.airflow
def test_spans_nest_under_airflows_task_span_when_airflow_traces_are_on(collector, tmp_path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "OTEL_"))}
    env.update({"AIRFLOW_HOME": str(tmp_path / "airflow"), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{tmp_path}/airflow.db",
                "AIRFLOW__TRACES__OTEL_ON": "True", "OTEL_TRACES_EXPORTER": "otlp_proto_http",
                "OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint, "OTEL_SERVICE_NAME": "airflow"})
    run = subprocess.run([sys.executable, "-c", AIRFLOW_TASK], env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    printed = json.loads(run.stdout.strip().splitlines()[-1])
    assert printed["ours"] is True
    _, trace_id, task_run_span, flags = printed["task_run"].split("-")
    assert flags == "01"                                   # sampled by Airflow's provider
    spans = read_spans(collector.sink.path)
    worker = one(spans, "worker.ingest")
    assert (worker["trace_id"], worker["parent_span_id"]) == (trace_id, task_run_span)
    assert worker["attributes"]["airflow.dag_id"] == "ingest_transactions"
    ours, read = one(spans, "ingest"), one(spans, "ingest.read")
    assert ours["parent_span_id"] == worker["span_id"] and read["parent_span_id"] == ours["span_id"]
    assert ours["trace_id"] == trace_id and ours["service"] == worker["service"] == "airflow"
    assert ours["scope"] == "mlscale"


@pytest.mark.airflow
@pytest.mark.timeout(900)
def test_a_dag_run_through_the_scheduler_is_one_trace_down_to_the_ingestion_stages(collector, tmp_path) -> None:
    """Airflow's api-server, scheduler, dag-processor and triggerer with the settings `make stack` uses: the
    dag_run, task_run and worker spans Airflow emits and mlscale's stage spans form one trace."""
    import time

    from tests.integration.airflow_stack import AirflowStack

    home = tmp_path / "home"
    home.mkdir()
    lake = Lake(str(home / "lake"))
    now = dt.datetime.now(dt.UTC)
    day = (now - dt.timedelta(hours=2)).date() - dt.timedelta(days=1)    # the daily cron's latest partition
    generate_world(lake.write_bytes, start=day, days=1, rows_per_day=1000, seed=3)
    stack = AirflowStack(home, lake_root=lake.root, extra_env={
        "AIRFLOW__TRACES__OTEL_ON": "True", "OTEL_TRACES_EXPORTER": "otlp_proto_http",
        "OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint, "OTEL_SERVICE_NAME": "airflow",
        "OTEL_BSP_SCHEDULE_DELAY": "500"})
    dag_id = "ingest_customers"
    try:
        stack.start([dag_id])
        stack.unpause(dag_id)                # catchup=False: the cron starts the latest day at once
        [run] = stack.wait(dag_id, run_type="scheduled", timeout=600)
        run_id = run["dag_run_id"]
        result = stack.xcom(dag_id, run_id, "ingest")
        deadline = time.time() + 60          # the scheduler emits the dag_run span once the run has finished
        while not named(read_spans(collector.sink.path), f"dag_run.{dag_id}") and time.time() < deadline:
            time.sleep(1)
    finally:
        stack.stop()
    spans = read_spans(collector.sink.path)
    runs = [s for s in named(spans, f"dag_run.{dag_id}") if s["attributes"].get("airflow.dag_run.run_id") == run_id]
    assert len(runs) == 1, sorted({s["name"] for s in spans})
    trace = [s for s in spans if s["trace_id"] == runs[0]["trace_id"]]
    dag_run, task_run, worker = runs[0], one(trace, "task_run.ingest"), one(trace, "worker.ingest")
    ours = one(trace, "ingest")
    assert dag_run["parent_span_id"] is None and task_run["parent_span_id"] == dag_run["span_id"]
    assert worker["parent_span_id"] == task_run["span_id"] and ours["parent_span_id"] == worker["span_id"]
    assert task_run["attributes"]["airflow.task_instance.state"] == "success"
    assert ours["attributes"].items() >= {"dataset": "customers", "dt": str(day), "run_id": run_id,
                                          "rows": result["rows_in"], "rows_written": result["rows_written"]}.items()
    stages = {s["name"] for s in trace if s["parent_span_id"] == ours["span_id"]}
    assert stages == {"ingest.read", "ingest.dedupe", "ingest.write", "ingest.commit"}
    assert one(trace, "ingest.read")["attributes"]["rows"] == result["rows_in"]
    assert {"worker.wait_for_drop", "worker.check_quarantine_rate"} <= {s["name"] for s in trace}
