"""Resource use of Spark jobs from Spark's own event log: a tiny job on local[2] whose input and output are known,
and the compaction submitted by SparkJobOperator recording its usage in the lake."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from mlscale.airflow.operators.spark_job import EVENT_LOG_DEFAULTS, SparkJobOperator
from mlscale.compaction import plan_compaction
from mlscale.lake import Lake, PartitionRef
from mlscale.usage import read_usage
from mlscale.usage.spark_events import find_event_logs, parse_event_logs

from tests.integration.test_compaction import APP, SPARK_SUBMIT, small_files_partition

pytestmark = pytest.mark.spark
ROWS = 20_000
JOB = textwrap.dedent("""
    import sys
    from pyspark.sql import SparkSession

    spark = SparkSession.builder.appName("usage-test").getOrCreate()
    spark.read.parquet(sys.argv[1]).repartition(2).write.parquet(sys.argv[2])   # one scan, one write
    spark.stop()
""")


def run_job(tmp_path: Path, events: Path, conf: dict[str, str]) -> tuple[Path, Path]:
    source, target = tmp_path / "input.parquet", tmp_path / f"out-{events.name}"
    if not source.exists():
        pq.write_table(pa.table({"id": pa.array(range(ROWS), pa.int64()), "label": [f"row-{i}" for i in range(ROWS)]}),
                       source)
    (tmp_path / "job.py").write_text(JOB)
    events.mkdir()
    args = [SPARK_SUBMIT, "--master", "local[2]", "--driver-memory", "768m", "--conf", "spark.ui.enabled=false",
            "--conf", "spark.eventLog.enabled=true", "--conf", f"spark.eventLog.dir={events.as_uri()}"]
    for key, value in conf.items():
        args += ["--conf", f"{key}={value}"]
    env = dict(os.environ, PYSPARK_PYTHON=sys.executable, PYSPARK_DRIVER_PYTHON=sys.executable)
    out = subprocess.run([*args, str(tmp_path / "job.py"), str(source), str(target)], env=env, capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    return source, target


@pytest.mark.parametrize("layout", ["operator", "spark_default"])
def test_usage_of_a_job_whose_input_and_output_are_known(tmp_path, layout) -> None:
    # "operator": what SparkJobOperator submits (one uncompressed file); "spark_default": Spark 4's own default
    # layout (a rolling folder of zstd-compressed files)
    conf = {**EVENT_LOG_DEFAULTS, "spark.mlscale.usage.tag": "t-1"} if layout == "operator" else {}
    events = tmp_path / "events"
    source, target = run_job(tmp_path, events, conf)
    [log] = find_event_logs(events.as_uri())
    assert log.is_file() if layout == "operator" else log.name.startswith("eventlog_v2_")
    if layout == "operator":
        assert find_event_logs(events, tag="t-1") == [log] and find_event_logs(events, tag="other") == []
    usage = parse_event_logs([log])
    assert usage.records_read == ROWS and usage.records_written == ROWS          # the input's rows, read once
    assert usage.bytes_written == sum(p.stat().st_size for p in target.glob("part-*.parquet"))
    assert 0 < usage.bytes_read <= source.stat().st_size
    assert usage.tasks >= 3 and usage.failed_tasks == 0
    assert 0 < usage.cpu_seconds <= usage.wall_seconds * 2 + 5                   # two cores at most, busy or not
    assert 0 < usage.run_seconds and usage.wall_seconds > 1
    assert usage.executor_cores == {"driver": 2} and usage.memory_limit_bytes == 768 * 2**20
    if layout == "operator":   # executor metrics polled each second; Spark's defaults sample at heartbeats only
        assert usage.peak_memory_bytes["driver"] > 100 * 2**20                   # a JVM at least
    record = usage.record(dag_id="d", task_id="t", run_id="r", try_number=1, day="2026-11-01")
    assert (record.engine, record.rows, record.workers, record.processes, record.threads_per_worker) == \
        ("spark", ROWS, 1, 1, 2)
    assert record.cpu_seconds == pytest.approx(usage.cpu_seconds, abs=1e-3) and record.started_at.startswith("20")


def test_operator_records_the_usage_of_the_compaction(monkeypatch, tmp_path) -> None:
    lake = Lake(str(tmp_path / "lake"))
    monkeypatch.setenv("AIRFLOW_VAR_MLSCALE_LAKE_ROOT", lake.root)
    monkeypatch.setenv("AIRFLOW_CONN_SPARK_T_LOCAL", json.dumps({"conn_type": "spark", "host": "local[2]",
                                                                  "extra": {"deploy-mode": "client"}}))
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))   # where the operator's event-log folder goes
    small_files_partition(lake, files=30)
    ref = PartitionRef.of("raw", "transactions", "2026-11-01")
    plan = plan_compaction(lake, zone="raw", datasets=["transactions"], first_day="2026-11-01",
                           last_day="2026-11-01", run_id="manual__usage", sort_columns={"transactions": ["event_ts"]})
    op = SparkJobOperator(task_id="compact", application=str(APP), conn_id="spark_t_local",
                          application_args=["--plan", plan.plan_key, "--lake", lake.root],
                          conf={**plan.spark_conf, "spark.ui.enabled": "false"},
                          env_vars={"PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable})
    op.execute({"params": {"dt": "2026-11-01"}, "run_id": "manual__usage", "ti": SimpleNamespace(try_number=2)})
    manifest = lake.require_manifest(ref)
    assert len(manifest.files) == 3 and manifest.rows == 30 * 50
    [record] = read_usage(lake, "2026-11-01")
    assert (record.engine, record.task_id, record.run_id, record.try_number) == ("spark", "compact", "manual__usage", 2)
    assert record.cpu_seconds > 0 and record.wall_seconds > 1 and record.workers == 1
    # every scan counts: the job reads each region's input twice (checksum, rewrite) and its output once (verify)
    assert record.rows == 3 * manifest.rows
    assert record.bytes_written == manifest.bytes                 # the files Spark wrote are the files committed
    assert record.bytes_read > 0 and record.peak_memory_bytes.get("driver", 0) > 0
    assert record.cost["total"] > 0 and record.cost["cpu"] > 0
    assert list((tmp_path / "tmp").iterdir()) == []               # the try's event-log folder is gone
