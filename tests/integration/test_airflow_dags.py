"""DAGs run by Airflow itself (`airflow dags test`) on SQLite: ingestion (twice: same rows), compaction."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from mlscale.lake import Lake, PartitionRef

ROOT = Path(__file__).resolve().parents[2]
AIRFLOW = str(Path(sys.executable).with_name("airflow"))
MLSCALE = str(Path(sys.executable).with_name("mlscale"))  # the console script
pytestmark = pytest.mark.airflow


@pytest.fixture(scope="module")
def airflow_env(tmp_path_factory):
    home = tmp_path_factory.mktemp("airflow_home")
    lake_root = home / "lake"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "MLSCALE"))}
    env.update({
        "AIRFLOW_HOME": str(home),
        "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db?timeout=30",
        "AIRFLOW_VAR_MLSCALE_LAKE_ROOT": str(lake_root),
        "AIRFLOW_CONN_DASK_CPU_DEFAULT": json.dumps({"conn_type": "dask", "extra": {"n_workers": 1, "processes": True}}),
        "AIRFLOW_CONN_PII_HMAC_DEFAULT": json.dumps({"conn_type": "generic", "password": "test-key"}),
    })
    subprocess.run([AIRFLOW, "db", "migrate"], env=env, check=True, capture_output=True, timeout=300)
    subprocess.run([MLSCALE, "apply-settings", str(ROOT / "airflow_settings.yaml")],
                   env=env, check=True, capture_output=True, timeout=300)
    subprocess.run([MLSCALE, "generate", "--lake", str(lake_root), "--start",
                    "2026-11-01", "--days", "1", "--rows-per-day", "2000"], env=env, check=True,
                   capture_output=True, timeout=300)
    return env, Lake(str(lake_root))


def dags_test(env, *args: str) -> subprocess.CompletedProcess:
    out = subprocess.run([AIRFLOW, "dags", "test", *args], env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-4000:]
    return out


def test_ingest_dag_through_airflow_is_idempotent(airflow_env) -> None:
    env, lake = airflow_env
    ref = PartitionRef.of("raw", "transactions", "2026-11-01")
    report = lake.read_json("_meta/generator/dt=2026-11-01/report.json")
    first = dags_test(env, "ingest_transactions", "2026-11-01")
    assert "quarantined" in first.stdout + first.stderr  # the on-call summary is in the task log
    rows_first = sorted(lake.read_table(ref).column("event_id").to_pylist())
    assert len(rows_first) == report["valid_unique"]["transactions"]
    dags_test(env, "ingest_transactions", "2026-11-01")
    assert sorted(lake.read_table(ref).column("event_id").to_pylist()) == rows_first
    runs = [r for r in (lake.read_json(f.key) for f in lake.list_files("_meta/ingestion_runs"))]
    assert len(runs) == 2 and {r["rows_written"] for r in runs} == {len(rows_first)}
    assert lake.orphans("raw") == []


def test_manual_dry_run_with_day_param_writes_nothing(airflow_env) -> None:
    env, lake = airflow_env
    dags_test(env, "ingest_customers", "--conf", json.dumps({"dt": "2026-11-01", "dry_run": True}))
    assert lake.manifest(PartitionRef.of("raw", "customers", "2026-11-01")) is None


def test_compaction_dag_through_airflow(airflow_env) -> None:
    from tests.integration.test_compaction import small_files_partition

    env, lake = airflow_env
    small_files_partition(lake, files=30)  # raw/transactions/dt=2026-11-01 as 30 small files
    assert len(lake.require_manifest(PartitionRef.of("raw", "transactions", "2026-11-01")).files) == 30
    out = dags_test(env, "compact_lake", "--conf", json.dumps({"dt": "2026-11-01", "lookback_days": 0}))
    assert "compacted raw/transactions/dt=2026-11-01" in out.stdout + out.stderr
    records = [lake.read_json(f.key) for f in lake.list_files("_meta/compaction_runs/dt=2026-11-01")]
    assert [(r["files_before"], r["files_after"]) for r in records] == [(30, 3)]
    manifest = lake.require_manifest(PartitionRef.of("raw", "transactions", "2026-11-01"))
    assert len(manifest.files) == 3 and manifest.rows == 30 * 50


READ_SETTINGS = """
import json
from airflow.models.connection import Connection
from airflow.models.pool import Pool
from airflow.models.variable import Variable
from airflow.utils.session import create_session
with create_session() as s:
    conns = {c.conn_id: (c.conn_type, c.host, c.password, c.extra) for c in s.query(Connection)}
    pools = {p.pool: p.slots for p in s.query(Pool)}
print(json.dumps({"conns": conns, "pools": pools, "lake": Variable.get("mlscale_lake_root")}))
"""


def test_settings_loader_is_idempotent_and_keeps_the_generated_key(airflow_env) -> None:
    env, _ = airflow_env

    def read() -> dict:
        out = subprocess.run([sys.executable, "-c", READ_SETTINGS], env=env, capture_output=True, text=True,
                             check=True, timeout=120)
        return json.loads(out.stdout.strip().splitlines()[-1])

    before = read()
    subprocess.run([MLSCALE, "apply-settings", str(ROOT / "airflow_settings.yaml")],
                   env=env, check=True, capture_output=True, timeout=300)
    after = read()
    assert before == after
    assert {"dask_cpu_default", "dask_gpu_default", "spark_default", "aws_default", "pii_hmac_default"} <= set(after["conns"])
    assert len(after["conns"]["pii_hmac_default"][2]) == 64  # a generated 256-bit key, kept across applies
    assert after["pools"]["dask_cpu"] == 2 and after["pools"]["dask_gpu"] == 1
    assert json.loads(after["conns"]["dask_gpu_default"][3])["gpu"] is True
