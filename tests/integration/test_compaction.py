"""Compaction with spark-submit on Spark local[2] (pyspark from the lock, Java from the machine)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from mlscale.compaction import VerificationFailed, commit_rewrite, plan_compaction
from mlscale.lake import Lake, PartitionRef

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "include" / "mlscale" / "spark_apps" / "compact_partitions.py"
SPARK_SUBMIT = str(Path(sys.executable).with_name("spark-submit"))
REF = PartitionRef.of("raw", "transactions", "2026-11-01")
SCHEMA = pa.schema([("event_id", pa.string()), ("event_ts", pa.timestamp("us", tz="UTC")), ("amount", pa.float64())])
pytestmark = pytest.mark.spark


def small_files_partition(lake: Lake, files: int = 240, rows: int = 50) -> None:
    rng = np.random.default_rng(0)
    with lake.writer(REF, run_id="ingest", schema=SCHEMA) as writer:
        for i in range(files):
            writer.write(pa.table({
                "event_id": [f"E{i:04d}-{j:03d}" for j in range(rows)],
                "event_ts": pa.array(rng.integers(1_790_000_000_000_000, 1_800_000_000_000_000, rows),
                                     pa.timestamp("us", tz="UTC")),
                "amount": rng.random(rows),
            }, schema=SCHEMA), subdir=f"region={['NL', 'DE', 'FR'][i % 3]}")


def spark_submit(lake: Lake, plan_key: str, *extra: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYSPARK_PYTHON=sys.executable, PYSPARK_DRIVER_PYTHON=sys.executable)
    return subprocess.run([SPARK_SUBMIT, "--master", "local[2]", "--conf", "spark.ui.enabled=false", str(APP),
                           "--plan", plan_key, "--lake", lake.root, *extra], env=env, capture_output=True, text=True,
                          timeout=600)


def rows(lake: Lake) -> list[tuple]:
    table = lake.read_table(REF)
    return sorted(zip(*(table.column(c).to_pylist() for c in ("event_id", "event_ts", "amount", "region")), strict=True))


def plan(lake: Lake, run_id: str):
    return plan_compaction(lake, zone="raw", datasets=["transactions"], first_day="2026-11-01", last_day="2026-11-01",
                           run_id=run_id, sort_columns={"transactions": ["event_ts"]})


def test_compaction_rewrites_small_files_exactly_and_rerun_is_noop(local_lake: Lake) -> None:
    small_files_partition(local_lake)
    before = rows(local_lake)
    first = plan(local_lake, "run-1")
    assert first.as_dict()["to_compact"] == 1
    out = spark_submit(local_lake, first.plan_key)
    assert out.returncode == 0, out.stderr[-3000:]
    manifest = local_lake.require_manifest(REF)
    assert len(manifest.files) == 3 and manifest.extra["compaction_attempt"]
    assert rows(local_lake) == before
    local_lake.verify(REF)
    assert local_lake.orphans("raw") == []
    # each file is sorted by event time
    for entry in manifest.files:
        ts = local_lake.read_table(REF).filter(pa.compute.equal(pa.compute.field("region"),
                                                                 entry.path.split("/")[0][7:])).column("event_ts")
        values = ts.to_pylist()
        assert values == sorted(values)
    record = next(local_lake.read_json(f.key) for f in local_lake.list_files("_meta/compaction_runs"))
    assert (record["files_before"], record["files_after"], record["rows"]) == (240, 3, 240 * 50)
    assert plan(local_lake, "run-2").as_dict()["to_compact"] == 0


def test_crash_before_manifest_leaves_old_version_readable(local_lake: Lake) -> None:
    small_files_partition(local_lake, files=30)
    before_manifest = local_lake.require_manifest(REF)
    before = rows(local_lake)
    out = spark_submit(local_lake, plan(local_lake, "crash").plan_key, "--fail-before-commit")
    assert out.returncode != 0 and "crash injected" in out.stderr + out.stdout
    assert local_lake.require_manifest(REF) == before_manifest
    assert rows(local_lake) == before


def test_failed_verification_keeps_the_old_partition(local_lake: Lake) -> None:
    small_files_partition(local_lake, files=6)
    previous = local_lake.require_manifest(REF)
    import io

    import pyarrow.parquet as pq

    sink = io.BytesIO()
    pq.write_table(pa.table({"event_id": ["lost"], "event_ts": pa.array([0], pa.timestamp("us", tz="UTC")),
                             "amount": [1.0]}, schema=SCHEMA), sink)
    with pytest.raises(VerificationFailed, match="rows rewritten"):
        commit_rewrite(local_lake, REF, previous, {"region=NL": [sink.getvalue()]}, attempt="bad", run_id="r")
    assert local_lake.require_manifest(REF) == previous
