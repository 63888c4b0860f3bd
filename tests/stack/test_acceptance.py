"""Acceptance on the production shape (``make stack``), driven through Airflow's REST API with its client.

The reduced run CI can afford: the stack started in a folder of its own, two days of drops generated into the
S3 lake, an ingestion backfill of both created through the API, and compaction and features run per partition
by the asset events on the external Dask cluster; then the lake on S3 (raw and as-of tables committed, every
object encrypted), the Feast online values in Redis, and ``make stack-down`` stopping exactly what it started.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shlex
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
PORT_BASE = 56400  # apart from a developer's own stack (55400)
DAYS = 2
DATASETS = ("transactions", "customers", "labels")

pytestmark = [pytest.mark.stack, pytest.mark.timeout(1500)]


def _stack_env(folder: Path) -> dict[str, str]:
    """The environment of ``.stack/env.sh`` (what a user sources), over this process's own."""
    out = subprocess.run(["bash", "-c", f"source scripts/env.sh && source {shlex.quote(str(folder))}/env.sh && env -0"],
                         cwd=ROOT, capture_output=True, check=True)
    return dict(line.split("=", 1) for line in out.stdout.decode().split("\0") if "=" in line)


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[dict[str, str]]:
    folder = tmp_path_factory.mktemp("stack")
    os.chmod(folder, 0o755)  # PostgreSQL runs as its own user when the tests run as root
    for parent in folder.parents:
        if str(parent).startswith(str(Path(tmp_path_factory.getbasetemp()).parent)):
            os.chmod(parent, os.stat(parent).st_mode | 0o011)
    env = {**os.environ, "STACK_DIR": str(folder), "STACK_PORT_BASE": str(PORT_BASE)}
    up = subprocess.run(["bash", "scripts/stack.sh", "up"], cwd=ROOT, env=env, capture_output=True, text=True,
                        timeout=900)
    try:
        assert up.returncode == 0, f"{up.stdout[-3000:]}\n{up.stderr[-3000:]}"
        yield {**_stack_env(folder), "STACK_DIR": str(folder), "STACK_PORT_BASE": str(PORT_BASE)}
    finally:
        down = subprocess.run(["bash", "scripts/stack.sh", "down"], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=300)
        stopped = re.findall(r"stopped (\S+) \(pid", down.stdout)
        assert down.returncode == 0 and len(stopped) == 12, down.stdout  # every process it started, by PID
        assert "otel-collector" in stopped and "serving" in stopped, stopped


def _client(env: dict[str, str]) -> Any:
    import json

    from airflow_client.client import ApiClient, Configuration

    url = f"http://127.0.0.1:{env['AIRFLOW__API__PORT']}"
    password = json.loads(Path(env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"]).read_text())["admin"]
    token = requests.post(f"{url}/auth/token", json={"username": "admin", "password": password}, timeout=60)
    assert token.status_code == 201, token.text
    return ApiClient(Configuration(host=url, access_token=token.json()["access_token"]))


def _wait_runs(dag_runs: Any, dag_id: str, count: int, timeout: float = 900) -> list[Any]:
    deadline = time.time() + timeout
    while True:
        runs = [r for r in dag_runs.get_dag_runs(dag_id, limit=100).dag_runs if str(r.run_type.value) != "scheduled"]
        done = [r for r in runs if str(r.state.value) in ("success", "failed")]
        if len(done) >= count and len(done) == len(runs):
            assert all(str(r.state.value) == "success" for r in done), [(r.dag_run_id, r.state) for r in done]
            return done
        assert time.time() < deadline, f"{dag_id}: {[(r.dag_run_id, r.state) for r in runs]}"
        time.sleep(5)


def test_a_backfill_through_the_rest_api_runs_on_s3_dask_postgres_and_redis(stack) -> None:
    from airflow_client.client.api.backfill_api import BackfillApi
    from airflow_client.client.api.dag_api import DAGApi
    from airflow_client.client.api.dag_run_api import DagRunApi
    from airflow_client.client.models.backfill_post_body import BackfillPostBody
    from airflow_client.client.models.dag_patch_body import DAGPatchBody
    from airflow_client.client.models.reprocess_behavior import ReprocessBehavior
    from mlscale.lake import PartitionRef

    # the ingestion cron's latest partition is yesterday: the backfill covers the two days before it
    last = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=2)
    first = last - dt.timedelta(days=DAYS - 1)
    generate = subprocess.run(
        [str(ROOT / ".venv/bin/mlscale"), "generate", "--lake", stack["AIRFLOW_VAR_MLSCALE_LAKE_ROOT"], "--start",
         first.isoformat(), "--days", str(DAYS), "--rows-per-day", "1500"],
        cwd=ROOT, env=stack, capture_output=True, text=True, timeout=300)
    assert generate.returncode == 0, generate.stderr[-3000:]

    with _client(stack) as api:
        dags, dag_runs, backfills = DAGApi(api), DagRunApi(api), BackfillApi(api)
        deadline = time.time() + 300
        while {f"ingest_{d}" for d in DATASETS} - {d.dag_id for d in dags.get_dags(limit=100).dags}:
            assert time.time() < deadline, "the ingestion DAGs were not parsed"
            time.sleep(3)
        for dag_id in ("compact_lake", "build_features"):
            dags.patch_dag(dag_id, DAGPatchBody(is_paused=False))
        for dataset in DATASETS:
            dag_id = f"ingest_{dataset}"
            dags.patch_dag(dag_id, DAGPatchBody(is_paused=False))
            backfills.create_backfill(BackfillPostBody(
                dag_id=dag_id, from_date=dt.datetime.combine(first, dt.time(), dt.UTC),
                to_date=dt.datetime.combine(last, dt.time(23, 59, 59), dt.UTC), max_active_runs=1,
                reprocess_behavior=ReprocessBehavior.COMPLETED))
        for dataset in DATASETS:
            runs = _wait_runs(dag_runs, f"ingest_{dataset}", DAYS)
            assert sorted(r.partition_key for r in runs) == [(first + dt.timedelta(days=i)).isoformat()
                                                             for i in range(DAYS)]
        for dag_id in ("compact_lake", "build_features"):
            runs = _wait_runs(dag_runs, dag_id, DAYS)
            assert {r.partition_key for r in runs} >= {first.isoformat(), last.isoformat()}
        for dag_id in (*(f"ingest_{d}" for d in DATASETS), "compact_lake", "build_features"):
            dags.patch_dag(dag_id, DAGPatchBody(is_paused=True))

    lake = _lake(stack)
    for day in (first, last):
        assert lake.manifest(PartitionRef.of("raw", "transactions", day.isoformat())) is not None
    tables = [f.key for f in lake.list_files("features") if f.key.endswith("/_manifest.json")
              and f"/dt={last.isoformat()}/" in f.key and "_partials" not in f.key]
    assert tables, "no as-of table committed for the last day"
    _assert_encrypted(stack, lake)
    import redis

    host, port = stack["AIRFLOW_VAR_MLSCALE_FEAST_REDIS"].split(":")
    assert redis.Redis(host=host, port=int(port)).dbsize() > 0  # the online store was materialised


def _lake(env: dict[str, str]) -> Any:
    import json

    from mlscale.lake import Lake, S3Options

    aws = json.loads(env["AIRFLOW_CONN_AWS_DEFAULT"])
    return Lake(env["AIRFLOW_VAR_MLSCALE_LAKE_ROOT"],
                s3=S3Options(endpoint_url=aws["extra"]["endpoint_url"], access_key=aws["login"],
                             secret_key=aws["password"], region=aws["extra"]["region_name"]))


def _assert_encrypted(env: dict[str, str], lake: Any) -> None:
    import boto3

    s3 = boto3.client("s3", endpoint_url=env["STACK_S3_ENDPOINT"], aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                      aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"], region_name="us-east-1")
    keys = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=env["STACK_BUCKET"])
            for o in page.get("Contents", [])]
    assert keys
    for key in keys[:: max(1, len(keys) // 25)]:  # a spread of what the platform wrote
        assert s3.head_object(Bucket=env["STACK_BUCKET"], Key=key).get("ServerSideEncryption") == "AES256", key
