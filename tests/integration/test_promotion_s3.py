"""The promotion path of a production-shaped deployment: the lake on S3 (moto's server over HTTP), Feast and
MLflow elsewhere, the settings only in Airflow Variables and the aws_default connection (as docker-compose
sets them), and the `audit_bias` DAG's own `promote` task deciding."""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
from pathlib import Path

import pytest
from distributed import Client, LocalCluster
from mlscale.governance.audit_run import audit_model
from mlscale.governance.gate import ACCEPT_INSUFFICIENT_BIAS, record_approval
from mlscale.lake import Lake
from mlscale.training import train_model

from tests.integration.world import build_world

ROOT = Path(__file__).resolve().parents[2]
START = dt.date(2026, 11, 1)
DAYS = 5
LAST = (START + dt.timedelta(days=DAYS - 1)).isoformat()
MODEL = "fraud_detector"


def _promote_task():
    """The python callable of audit_bias's `promote` task, from the DAG file itself."""
    spec = importlib.util.spec_from_file_location("audit_bias_dag", ROOT / "dags" / "audit_bias.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.dag.get_task("promote").python_callable


def test_promotion_decides_on_an_s3_lake_with_settings_from_airflow(s3_lake: Lake, s3_server, tmp_path,
                                                                    monkeypatch) -> None:
    feast_root, tracking_uri = str(tmp_path / "feast"), f"sqlite:///{tmp_path}/mlflow.db"
    monkeypatch.chdir(tmp_path)  # MLflow's default artifact root is relative to the working directory
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        build_world(s3_lake, start=START, days=DAYS, rows_per_day=2500, seed=5, client=client, feast_root=feast_root)
        trained = train_model(client=client, lake=s3_lake, dt=LAST, run_id="s3-train", model=MODEL, max_rounds=30,
                              tracking_uri=tracking_uri, feast_root=feast_root)
    audited = audit_model(lake=s3_lake, dt=LAST, run_id="s3-audit", model=MODEL, version=trained.version,
                          tracking_uri=tracking_uri)
    record_approval(s3_lake, model=MODEL, version=trained.version, approved_by="s3 test",
                    accepts=(ACCEPT_INSUFFICIENT_BIAS,))
    for name, value in {"lake_root": s3_lake.root, "mlflow_tracking_uri": tracking_uri,
                        "feast_root": feast_root}.items():
        monkeypatch.setenv(f"AIRFLOW_VAR_MLSCALE_{name.upper()}", value)
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", json.dumps({
        "conn_type": "aws", "login": s3_server.access_key, "password": s3_server.secret_key,
        "extra": {"endpoint_url": s3_server.endpoint_url, "region_name": "us-east-1"}}))
    decision = _promote_task()(audited={**audited.as_dict(), "dt": LAST}, run_id="s3-gate")
    assert decision["version"] == trained.version
    assert decision["decision"] in ("promoted", "refused")
    drift = decision["evidence"]["drift"]
    assert drift["day"] == LAST and "verdict" in drift  # the gate read the day's features from the Feast root
    records = [s3_lake.read_json(f.key) for f in s3_lake.list_files(f"_meta/governance_audit/dt={LAST}")]
    assert [(r["run_id"], r["version"]) for r in records] == [("s3-gate", trained.version)]


pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")
