"""OpenLineage datasets of DaskOperator runs: what a task's result says it wrote, and what that was built from."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pyarrow as pa
import pytest
from mlscale.airflow.operators.dask_operator import DaskOperator
from mlscale.lake import Lake, PartitionRef
from mlscale.lineage.task import TaskLineage, openlineage_name, task_lineage
from mlscale.training.model import StoredModel

DAY = "2026-11-20"
LANDING = [f"landing/transactions/dt={DAY}/acquirer_a__0001.csv", f"landing/transactions/dt={DAY}/wallet_c__0001.jsonl"]
RAW = f"raw/transactions/dt={DAY}"
QUARANTINE = f"quarantine/transactions/dt={DAY}"
FEATURES = f"features/customer_activity_vabc123/dt={DAY}"
TRAINING = f"training/fraud_xgb/dt={DAY}"
PREDICTIONS = f"predictions/fraud_xgb/dt={DAY}"
MODEL = "models/fraud_xgb/4"


def commit(lake: Lake, key: str, inputs: list[str]) -> None:
    table = pa.table({"id": ["a", "b"]})
    with lake.writer(PartitionRef.from_key(key), run_id="run-1", schema=table.schema, inputs=inputs) as writer:
        writer.write(table)


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    lake = Lake(str(tmp_path / "lake"))
    for key in LANDING:
        lake.write_bytes(key, b"id\n1\n")
    commit(lake, RAW, [lake.uri(k) for k in LANDING])
    commit(lake, QUARANTINE, [lake.uri(k) for k in LANDING])
    commit(lake, FEATURES, [lake.uri(RAW)])
    commit(lake, TRAINING, [lake.uri(FEATURES), lake.uri(RAW)])
    StoredModel(name="fraud_xgb", version="4", algorithm="xgboost", features=("value",), raw=b"booster",
                doc={"inputs": [lake.uri(TRAINING)], "registered_day": DAY}).save(lake)
    commit(lake, PREDICTIONS, [lake.uri(RAW), lake.uri(FEATURES), lake.uri(f"{MODEL}/") + "/"])
    return lake


def local(lake: Lake, key: str) -> str:
    return f"{lake.path('')}/{key}"


def test_ingestion_result_reads_its_landing_drops(lake: Lake) -> None:
    result = {"raw_uri": lake.uri(RAW), "quarantine_uri": lake.uri(QUARANTINE), "rows_in": 2, "code_version": "1.0",
              "per_file": [{"file": LANDING[0], "rows": 1}], "dry_run": False}
    found = task_lineage(result, lake)
    assert found.outputs == (local(lake, RAW), local(lake, QUARANTINE))
    assert found.inputs == tuple(local(lake, k) for k in LANDING)
    assert found.output_names() == [("file", local(lake, RAW)), ("file", local(lake, QUARANTINE))]
    assert task_lineage({**result, "dry_run": True}, lake) == TaskLineage()  # a dry run wrote nothing


def test_training_result_outputs_the_set_the_version_and_the_report(lake: Lake) -> None:
    report = lake.uri("reports/training/fraud_xgb/4/report.html")
    result = {"model": "fraud_xgb", "version": "4", "training_set": TRAINING, "report": report,
              "holdout": {"pr_auc": 0.5}, "champion_version": "3"}
    found = task_lineage(result, lake)
    assert found.outputs == (local(lake, TRAINING), local(lake, "reports/training/fraud_xgb/4/report.html"),
                             local(lake, MODEL))
    # the training set is built in the same task: an output, not an input of the run
    assert found.inputs == (local(lake, FEATURES), local(lake, RAW))


def test_scoring_result_reads_the_model_versions_it_scored_with(lake: Lake) -> None:
    result = {"model": "fraud_xgb", "predictions": lake.uri(PREDICTIONS), "status": "scored",
              "champion_version": "4", "run_id": "manual__1"}
    found = task_lineage(result, lake)
    assert found.outputs == (local(lake, PREDICTIONS),)
    assert found.inputs == (local(lake, FEATURES), local(lake, MODEL), local(lake, RAW))
    # a model version named without a training set was read (a bias audit, a drift check)
    assert task_lineage({"model": "fraud_xgb", "version": 4}, lake) == TaskLineage(inputs=(local(lake, MODEL),))


def test_uncommitted_unknown_and_bookkeeping_locations_are_left_out(lake: Lake) -> None:
    result = {"raw_uri": lake.uri("raw/transactions/dt=2030-01-01"), "log": lake.uri("_meta/ingestion_runs/x.json"),
              "elsewhere": "s3://vendor/exports/a.csv", "days": ["2026-11-19", "2026-11-20"], "note": "a/b c"}
    assert task_lineage(result, lake) == TaskLineage()

    def no_lake() -> Lake:
        raise AssertionError("a result naming no location needs no lake")

    assert task_lineage({"rows": 3, "dt": DAY}, no_lake) == TaskLineage()


def test_openlineage_names() -> None:
    assert openlineage_name("/data/lake/raw/x/dt=2026-11-20") == ("file", "/data/lake/raw/x/dt=2026-11-20")
    assert openlineage_name("file:///data/lake/raw/x/") == ("file", "/data/lake/raw/x")
    assert openlineage_name("s3://lake-bucket/prod/raw/x/dt=D") == ("s3://lake-bucket", "prod/raw/x/dt=D")
    assert openlineage_name("s3a://lake-bucket/raw/x") == ("s3://lake-bucket", "raw/x")
    assert openlineage_name("gs://b/raw/x") == ("gs://b", "raw/x")
    assert openlineage_name("data/lake/raw/x") == ("file", os.path.abspath("data/lake/raw/x"))


def test_s3_lake_datasets(s3_lake: Lake) -> None:
    s3_lake.write_bytes(LANDING[0], b"id\n1\n")
    commit(s3_lake, RAW, [s3_lake.uri(LANDING[0])])
    bucket, prefix = s3_lake.root[len("s3://"):].split("/", 1)
    found = task_lineage({"raw_uri": s3_lake.uri(RAW)}, s3_lake)
    assert found.output_names() == [(f"s3://{bucket}", f"{prefix}/{RAW}")]
    assert found.input_names() == [(f"s3://{bucket}", f"{prefix}/{LANDING[0]}")]


def test_operator_facets_on_complete(lake: Lake) -> None:
    from airflow.providers.openlineage.extractors import OperatorLineage
    from openlineage.client.event_v2 import Dataset

    op = DaskOperator(task_id="ingest", python_callable="mlscale.ingest:ingest_partition")
    assert op.get_openlineage_facets_on_complete(None) == OperatorLineage()  # nothing ran yet
    op._lineage = op._task_lineage({"raw_uri": lake.uri(RAW), "rows_written": 2}, lake)
    facets = op.get_openlineage_facets_on_complete(None)
    assert isinstance(facets, OperatorLineage)
    assert facets.outputs == [Dataset(namespace="file", name=local(lake, RAW))]
    assert facets.inputs == [Dataset(namespace="file", name=local(lake, k)) for k in LANDING]


def test_operator_lineage_failures_never_fail_the_task(lake: Lake) -> None:
    def broken() -> Lake:
        raise OSError("lake unreachable")

    op = DaskOperator(task_id="ingest", python_callable="mlscale.ingest:ingest_partition")
    assert op._task_lineage({"raw_uri": "raw/transactions/dt=2026-11-20"}, broken) is None
    assert op._task_lineage(["not", "a", "mapping"], lake) is None
    lake.write_bytes(f"{RAW}/_manifest.json", b"{not json")
    assert op._task_lineage({"raw_uri": lake.uri(RAW)}, lake) is None


DAG_FILE = '''
"""One DaskOperator task that commits a raw partition built from a landing drop."""
import datetime

from airflow.sdk import dag

from mlscale.airflow.operators.dask_operator import DaskOperator


def commit_partition(*, lake, dt, run_id):
    import pyarrow as pa
    from mlscale.lake import PartitionRef

    landing = f"landing/transactions/dt={dt}/drop_0001.csv"
    lake.write_bytes(landing, b"id\\n1\\n2\\n")
    ref = PartitionRef.of("raw", "transactions", dt)
    table = pa.table({"id": ["1", "2"]})
    with lake.writer(ref, run_id=run_id, schema=table.schema, inputs=[lake.uri(landing)]) as writer:
        writer.write(table)
    return {"raw_uri": lake.uri(ref.key), "rows": table.num_rows}


@dag(schedule=None, start_date=datetime.datetime(2026, 11, 1), catchup=False, tags=["test"])
def openlineage_check():
    DaskOperator(task_id="commit", python_callable=commit_partition)


openlineage_check()
'''


@pytest.mark.airflow
def test_complete_event_of_airflow_dags_test_lists_the_datasets(tmp_path: Path) -> None:
    airflow = str(Path(sys.executable).with_name("airflow"))
    (tmp_path / "dags").mkdir()
    (tmp_path / "dags" / "openlineage_check.py").write_text(textwrap.dedent(DAG_FILE))
    events = tmp_path / "openlineage" / "events.jsonl"
    events.parent.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "MLSCALE", "OPENLINEAGE"))}
    env.update({
        "AIRFLOW_HOME": str(tmp_path),
        "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
        "AIRFLOW__CORE__DAGS_FOLDER": str(tmp_path / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{tmp_path}/airflow.db",
        "AIRFLOW_VAR_MLSCALE_LAKE_ROOT": str(tmp_path / "lake"),
        "AIRFLOW_CONN_DASK_CPU_DEFAULT": json.dumps({"conn_type": "dask", "extra": {"n_workers": 1, "processes": False}}),
        "AIRFLOW__OPENLINEAGE__NAMESPACE": "mlscale",
        # what scripts/env.sh sets for a local AIRFLOW_HOME
        "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps({"type": "file", "log_file_path": str(events), "append": True}),
    })
    subprocess.run([airflow, "db", "migrate"], env=env, check=True, capture_output=True, timeout=300)
    out = subprocess.run([airflow, "dags", "test", "openlineage_check", "2026-11-05"], env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-4000:]
    task_events = [e for e in map(json.loads, events.read_text().splitlines())
                   if e["job"]["name"] == "openlineage_check.commit"]
    assert [e["eventType"] for e in task_events] == ["START", "COMPLETE"]
    complete = task_events[-1]
    lake = tmp_path / "lake"
    assert complete["job"]["namespace"] == "mlscale"
    assert [(d["namespace"], d["name"]) for d in complete["inputs"]] == [
        ("file", f"{lake}/landing/transactions/dt=2026-11-05/drop_0001.csv")]
    assert [(d["namespace"], d["name"]) for d in complete["outputs"]] == [
        ("file", f"{lake}/raw/transactions/dt=2026-11-05")]
