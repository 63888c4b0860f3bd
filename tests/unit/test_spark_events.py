"""The Spark event-log parser on small logs written with the event and key names Spark 4.3 writes (checked against
real logs in tests/integration/test_spark_usage.py), and the event-log settings SparkJobOperator submits with."""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import SimpleNamespace

import pytest
from mlscale.usage.spark_events import (
    USAGE_TAG_PROPERTY,
    EventLogError,
    find_event_logs,
    local_path,
    parse_event_logs,
    parse_size,
    read_events,
)

GIB = 2**30


def app_start(app_id: str = "local-1", ts: int = 1_000_000) -> dict:
    return {"Event": "SparkListenerApplicationStart", "App Name": "t", "App ID": app_id, "Timestamp": ts, "User": "u"}


def environment(**props: str) -> dict:
    return {"Event": "SparkListenerEnvironmentUpdate", "Spark Properties": {"spark.master": "local[2]", **props}}


def task_end(*, executor: str = "driver", cpu_ns: int = 2_000_000_000, run_ms: int = 2500, read: int = 100,
             records: int = 10, written: int = 50, out_records: int = 10, disk_spill: int = 0, reason: str = "Success",
             finish: int = 1_004_000, memory: dict | None = None) -> dict:
    return {"Event": "SparkListenerTaskEnd", "Stage ID": 0, "Task End Reason": {"Reason": reason},
            "Task Info": {"Executor ID": executor, "Finish Time": finish},
            "Task Executor Metrics": memory or {},
            "Task Metrics": {"Executor CPU Time": cpu_ns, "Executor Deserialize CPU Time": 0, "Executor Run Time": run_ms,
                             "Peak Execution Memory": 1024, "Memory Bytes Spilled": 2 * disk_spill,
                             "Disk Bytes Spilled": disk_spill,
                             "Input Metrics": {"Bytes Read": read, "Records Read": records},
                             "Output Metrics": {"Bytes Written": written, "Records Written": out_records}}}


def write_log(path: Path, events: list[dict], tail: str = "") -> Path:
    path.write_text("".join(json.dumps(e) + "\n" for e in events) + tail)
    return path


def test_totals_of_tasks_executors_and_wall_time(tmp_path) -> None:
    events = [
        {"Event": "SparkListenerLogStart", "Spark Version": "4.3.0"},
        app_start(),
        environment(**{"spark.master": "spark://m:7077", "spark.executor.memory": "4g"}),
        {"Event": "SparkListenerExecutorAdded", "Executor ID": "1", "Executor Info": {"Total Cores": 4}},
        {"Event": "SparkListenerExecutorAdded", "Executor ID": "2", "Executor Info": {"Total Cores": 4}},
        task_end(executor="1", disk_spill=300, memory={"JVMHeapMemory": 200, "JVMOffHeapMemory": 100,
                                                        "ProcessTreeJVMRSSMemory": 5000,
                                                        "ProcessTreePythonRSSMemory": 1000,
                                                        "ProcessTreeOtherRSSMemory": 99999}),
        task_end(executor="2", reason="ExceptionFailure", memory={"JVMHeapMemory": 200, "JVMOffHeapMemory": 100}),
        task_end(executor="2"),
        {"Event": "SparkListenerStageExecutorMetrics", "Executor ID": "2", "Stage ID": 0,
         "Executor Metrics": {"JVMHeapMemory": 700, "DirectPoolMemory": 10}},
        {"Event": "SparkListenerExecutorMetricsUpdate", "Executor ID": "1", "Metrics Updated": [],
         "Executor Metrics Updated": [{"Stage ID": -1, "Executor Metrics": {"ProcessTreeJVMRSSMemory": 4000}}]},
        {"Event": "SparkListenerApplicationEnd", "Timestamp": 1_010_000, "ExitCode": 0},
    ]
    usage = parse_event_logs([write_log(tmp_path / "local-1", events)])
    assert usage.app_ids == ("local-1",) and usage.wall_seconds == 10.0
    assert usage.tasks == 3 and usage.failed_tasks == 1
    assert usage.cpu_seconds == pytest.approx(6.0) and usage.run_seconds == pytest.approx(7.5)  # failed tries used CPU
    assert (usage.records_read, usage.records_written) == (20, 20)                            # ... but read no rows
    assert (usage.bytes_read, usage.bytes_written, usage.disk_bytes_spilled) == (300, 150, 300)
    assert usage.peak_memory_bytes == {"1": 6000, "2": 710}      # process-tree RSS (JVM + Python), else JVM pools
    assert usage.executor_cores == {"1": 4, "2": 4} and usage.memory_limit_bytes == 4 * GIB
    record = usage.record(dag_id="d", task_id="t", run_id="r", try_number=1, day="2026-11-01")
    assert (record.engine, record.rows, record.workers, record.processes, record.spilled_bytes_peak) == \
        ("spark", 20, 2, 3, 300)                                   # two executors and the driver
    assert record.started_at == "1970-01-01T00:16:40+00:00"


def test_a_log_cut_short_and_without_an_end(tmp_path) -> None:
    log = write_log(tmp_path / "local-2.inprogress", [app_start("local-2"), environment(), task_end(finish=1_003_000)],
                    tail='{"Event": "SparkListenerTaskEnd", "Stage')
    usage = parse_event_logs([log])
    assert usage.wall_seconds == 3.0                               # to the last task's end
    assert usage.tasks == 1 and usage.memory_limit_bytes == GIB    # local mode: spark.driver.memory, 1g by default


def test_rolling_logs_are_read_in_order(tmp_path) -> None:
    folder = tmp_path / "eventlog_v2_local-3"
    folder.mkdir()
    write_log(folder / "events_10_local-3", [{"Event": "SparkListenerApplicationEnd", "Timestamp": 1_002_000}])
    write_log(folder / "events_2_local-3", [task_end()])
    write_log(folder / "events_1_local-3", [app_start("local-3")])
    (folder / "appstatus_local-3").write_text("")
    assert [e["Event"] for e in read_events(folder)] == ["SparkListenerApplicationStart", "SparkListenerTaskEnd",
                                                         "SparkListenerApplicationEnd"]
    assert find_event_logs(tmp_path) == [folder] and parse_event_logs([folder]).wall_seconds == 2.0


def test_compressed_logs(tmp_path) -> None:
    import pyarrow as pa

    with pa.output_stream(str(tmp_path / "local-4.zstd"), compression="zstd") as out:
        out.write("".join(json.dumps(e) + "\n" for e in [app_start("local-4"), task_end()]).encode())
    assert parse_event_logs([tmp_path / "local-4.zstd"]).tasks == 1
    (tmp_path / "local-5.lz4").write_bytes(b"\x00")
    with pytest.raises(EventLogError, match="spark.eventLog.compress=false"):
        parse_event_logs([tmp_path / "local-5.lz4"])


def test_finding_one_applications_log_in_a_shared_folder(tmp_path) -> None:
    old = write_log(tmp_path / "local-6", [app_start("local-6"), environment(**{USAGE_TAG_PROPERTY: "mine"})])
    os.utime(old, (1_000, 1_000))
    mine = write_log(tmp_path / "local-7", [app_start("local-7"), environment(**{USAGE_TAG_PROPERTY: "mine"})])
    write_log(tmp_path / "local-8", [app_start("local-8"), environment(**{USAGE_TAG_PROPERTY: "theirs"})])
    (tmp_path / ".local-7.crc").write_bytes(b"x")
    assert [p.name for p in find_event_logs(tmp_path)] == ["local-6", "local-7", "local-8"]
    assert find_event_logs(f"file://{tmp_path}", tag="mine", since=10_000) == [mine]
    assert find_event_logs(tmp_path / "missing") == []


def test_paths_sizes_and_errors(tmp_path) -> None:
    folder = str(tmp_path / "ev")
    assert local_path(f"file://{folder}") == local_path(f"file:{folder}") == local_path(folder) == folder
    with pytest.raises(EventLogError, match="not on this machine"):
        local_path("s3a://bucket/events")
    assert (parse_size("512m"), parse_size("2g"), parse_size("1.5g"), parse_size("1024"), parse_size("4gb")) == \
        (512 * 2**20, 2 * GIB, int(1.5 * GIB), 1024, 4 * GIB)
    with pytest.raises(ValueError, match="memory size"):
        parse_size("lots")
    with pytest.raises(EventLogError, match="spark.eventLog.enabled"):
        parse_event_logs([])
    with pytest.raises(EventLogError, match="SparkListenerApplicationStart"):
        parse_event_logs([write_log(tmp_path / "not-a-log", [{"Event": "SparkListenerTaskEnd"}])])


CONTEXT = {"params": {"dt": "2026-11-03"}, "run_id": "manual__t", "ti": SimpleNamespace(try_number=3)}


def operator(**kwargs):
    from mlscale.airflow.operators.spark_job import SparkJobOperator

    return SparkJobOperator(task_id="compact", application="app.py", **kwargs)


def test_operator_turns_the_event_log_on_and_keeps_the_users_settings(tmp_path) -> None:
    from mlscale.airflow.operators.spark_job import EVENT_LOG_DEFAULTS

    conf = {"spark.sql.shuffle.partitions": "4", "spark.eventLog.compress": "true"}
    events = operator()._event_log(conf, CONTEXT)
    assert events is not None and events.created and Path(events.directory).is_dir()
    assert conf["spark.eventLog.dir"] == Path(events.directory).as_uri() and conf["spark.eventLog.enabled"] == "true"
    assert conf["spark.eventLog.compress"] == "true" and conf["spark.sql.shuffle.partitions"] == "4"
    assert conf["spark.eventLog.rolling.enabled"] == EVENT_LOG_DEFAULTS["spark.eventLog.rolling.enabled"]
    assert conf[USAGE_TAG_PROPERTY] == events.tag and "manual__t.3." in events.tag
    os.rmdir(events.directory)

    named = {"spark.eventLog.dir": str(tmp_path)}
    events = operator()._event_log(named, CONTEXT)
    assert events is not None and not events.created and named["spark.eventLog.dir"] == str(tmp_path)
    assert operator()._event_log({"spark.eventLog.enabled": "false"}, CONTEXT) is None


def test_operator_accounting_never_fails_the_task(tmp_path) -> None:
    op = operator(usage_day="2026-11-02")
    events = op._event_log({}, CONTEXT)
    assert events is not None
    op._record_usage(events, CONTEXT)                 # no log in the folder: a warning, no error
    assert not Path(events.directory).exists()        # the try's folder is removed all the same
    assert op._day(CONTEXT) == "2026-11-02" and operator()._day(CONTEXT) == "2026-11-03"
