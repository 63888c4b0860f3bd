"""What a Spark application used, read from its own event log (``spark.eventLog.enabled``).

The event log is one JSON object per line (Spark 4 layout: a file ``<app id>[_<attempt>]`` with ``.inprogress``
while it runs and a codec suffix when compressed, or, with ``spark.eventLog.rolling.enabled``, a folder
``eventlog_v2_<app id>`` of ``events_<n>_<app id>`` files). :func:`parse_event_logs` reads these events:

- ``SparkListenerApplicationStart`` / ``SparkListenerApplicationEnd``: the wall time (``Timestamp``, ms);
- ``SparkListenerEnvironmentUpdate``: ``Spark Properties`` (the master, the executor or driver memory);
- ``SparkListenerExecutorAdded``: the executors and their ``Total Cores``;
- ``SparkListenerTaskEnd``: ``Task Metrics`` — ``Executor CPU Time`` and ``Executor Deserialize CPU Time`` (ns),
  ``Executor Run Time`` (ms), ``Input Metrics`` / ``Output Metrics`` (``Bytes Read``, ``Records Read``, ``Bytes
  Written``, ``Records Written``), ``Memory Bytes Spilled``, ``Disk Bytes Spilled``, ``Peak Execution Memory`` —
  and ``Task Executor Metrics`` (the executor's memory while the task ran);
- ``SparkListenerStageExecutorMetrics`` and ``SparkListenerExecutorMetricsUpdate`` (``Executor Metrics Updated``):
  the executors' memory peaks per stage and at heartbeats.

Units and what is counted: CPU seconds are the executors' CPU time running (and deserialising) tasks, failed
attempts included — the driver's own CPU and Python workers' CPU (UDFs) are not in Spark's task metrics. Bytes
and spill are sums over all task attempts; rows are the records successful tasks read from the job's inputs
(every scan counts: a job that reads its input twice reads its rows twice). The memory of an executor is its
process tree's resident set, the JVM and its Python processes (``ProcessTreeJVMRSSMemory`` +
``ProcessTreePythonRSSMemory``, reported with ``spark.executor.processTreeMetrics.enabled``; ``Other`` processes
are left out: a JVM's short-lived forks are counted there at the JVM's size), else the JVM's own accounting
(heap + non-heap + direct and mapped buffer pools); the peak is the largest of the snapshots in the log (taken at
heartbeats, or every ``spark.executor.metrics.pollingInterval``).

Pure: no Spark, no Airflow; the parser reads files and returns a :class:`SparkUsage`.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mlscale.errors import NotRetryable
from mlscale.usage.sampler import UsageRecord

logger = logging.getLogger(__name__)

#: a Spark property the submitting task sets to a value of its own, so that its application's log can be told
#: apart from others in a shared ``spark.eventLog.dir``
USAGE_TAG_PROPERTY = "spark.mlscale.usage.tag"
ROLLING_PREFIX = "eventlog_v2_"
COMPRESSED = (".lz4", ".lzf", ".snappy", ".zstd")
IN_PROGRESS = ".inprogress"
_JVM_POOLS = ("JVMHeapMemory", "JVMOffHeapMemory", "DirectPoolMemory", "MappedPoolMemory")
_PROCESS_TREE_RSS = ("ProcessTreeJVMRSSMemory", "ProcessTreePythonRSSMemory")
_SIZE_UNITS = {"b": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40, "p": 2**50}
DEFAULT_MEMORY = "1g"   # Spark's default spark.executor.memory and spark.driver.memory


class EventLogError(ValueError, NotRetryable):
    """An event log that cannot be read; the message names the file and the Spark setting to change."""


@dataclass(frozen=True)
class SparkUsage:
    """The resources one or more Spark applications used, from their event logs."""

    app_ids: tuple[str, ...]
    started_ms: int | None                     #: the earliest application start (epoch ms)
    ended_ms: int | None                       #: the latest application end, else the last task end (epoch ms)
    cpu_seconds: float                         #: executors' CPU time in tasks (run + deserialise)
    run_seconds: float                         #: executors' wall time in tasks (``Executor Run Time``)
    tasks: int
    failed_tasks: int
    executor_cores: dict[str, int] = field(default_factory=dict)       #: executor id -> ``Total Cores``
    peak_memory_bytes: dict[str, int] = field(default_factory=dict)    #: executor id -> peak memory
    bytes_read: int = 0
    bytes_written: int = 0
    records_read: int = 0
    records_written: int = 0
    memory_bytes_spilled: int = 0
    disk_bytes_spilled: int = 0
    peak_execution_memory: int = 0             #: the largest ``Peak Execution Memory`` of one task
    memory_limit_bytes: int = 0                #: ``spark.executor.memory`` (the driver's in local mode)

    @property
    def wall_seconds(self) -> float:
        if self.started_ms is None or self.ended_ms is None:
            return 0.0
        return max(0.0, (self.ended_ms - self.started_ms) / 1000)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "wall_seconds": self.wall_seconds}

    def record(self, *, dag_id: str, task_id: str, run_id: str, try_number: int, day: str) -> UsageRecord:
        """The task's :class:`~mlscale.usage.sampler.UsageRecord` (``engine="spark"``; cost left to the caller)."""
        started = (dt.datetime.fromtimestamp(self.started_ms / 1000, dt.UTC).isoformat(timespec="seconds")
                   if self.started_ms is not None else "")
        executors = set(self.executor_cores) | set(self.peak_memory_bytes)
        return UsageRecord(dag_id=dag_id, task_id=task_id, run_id=run_id, try_number=try_number, day=day,
                           started_at=started, wall_seconds=round(self.wall_seconds, 3),
                           cpu_seconds=round(self.cpu_seconds, 3), workers=len(self.executor_cores),
                           processes=len(executors | {"driver"}), peak_memory_bytes=dict(self.peak_memory_bytes),
                           bytes_read=self.bytes_read, bytes_written=self.bytes_written,
                           spilled_bytes_peak=self.disk_bytes_spilled,
                           threads_per_worker=max(self.executor_cores.values(), default=0),
                           memory_limit_bytes=self.memory_limit_bytes, rows=self.records_read, engine="spark")


def parse_size(text: str) -> int:
    """Bytes of a JVM/Spark memory setting: ``"512m"``, ``"2g"``, ``"1024"`` (bytes), ``"1.5g"``."""
    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([bkmgtp]?)b?\s*", str(text).lower())
    if not match:
        raise ValueError(f"not a memory size: {text!r} (use e.g. 512m or 4g)")
    return int(float(match.group(1)) * _SIZE_UNITS[match.group(2) or "b"])


def _event_files(path: Path) -> list[Path]:
    """The files of one application's log, in order (a rolling log's ``events_<n>_`` files by ``n``)."""
    if not path.is_dir():
        return [path]
    parts = [p for p in path.iterdir() if p.name.startswith("events_")]

    def index(p: Path) -> int:
        found = re.match(r"events_(\d+)_", p.name)
        return int(found.group(1)) if found else 0

    return sorted(parts, key=index)


def _codec(path: Path) -> str | None:
    name = path.name.removesuffix(IN_PROGRESS)
    return next((suffix[1:] for suffix in COMPRESSED if name.endswith(suffix)), None)


def _lines(path: Path) -> Iterator[str]:
    codec = _codec(path)
    if codec is None:
        with path.open(encoding="utf-8", errors="replace") as handle:
            yield from handle
        return
    if codec != "zstd":
        raise EventLogError(f"{path}: the event log is compressed with {codec}, which this reader cannot decode; "
                            "submit with spark.eventLog.compress=false (or spark.eventLog.compression.codec=zstd)")
    import pyarrow as pa  # a zstd stream (Spark writes standard zstd frames)

    with pa.input_stream(str(path), compression="zstd") as stream:
        yield from io.TextIOWrapper(stream, encoding="utf-8", errors="replace")


def read_events(path: str | Path) -> Iterator[dict[str, Any]]:
    """The events of one application's log (a file or a rolling folder), in order.

    A line that is not a JSON object (the last line of a log whose application was killed while writing it) is
    skipped with a warning.
    """
    for part in _event_files(Path(path)):
        for number, line in enumerate(_lines(part), start=1):
            if not line.strip():
                continue
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                logger.warning("event log %s: line %d is not JSON (cut short?), skipped", part, number)
                continue
            if isinstance(event, dict):
                yield event


def _is_log(entry: Path) -> bool:
    if entry.name.startswith((".", "_")) or entry.name.endswith(".crc"):
        return False
    return entry.is_dir() if entry.name.startswith(ROLLING_PREFIX) else entry.is_file()


def _properties(path: Path, *, max_events: int = 50) -> Mapping[str, Any]:
    """The ``Spark Properties`` of a log (its ``SparkListenerEnvironmentUpdate``, one of its first events)."""
    for number, event in enumerate(read_events(path)):
        if event.get("Event") == "SparkListenerEnvironmentUpdate":
            props = event.get("Spark Properties")
            return props if isinstance(props, Mapping) else {}
        if number >= max_events:
            break
    return {}


def find_event_logs(directory: str | Path, *, tag: str | None = None, since: float | None = None) -> list[Path]:
    """The application logs in ``directory`` (a local ``spark.eventLog.dir``; ``file:`` URIs are accepted).

    ``since`` (epoch seconds) keeps the logs written to since then; ``tag`` keeps those whose application ran with
    ``spark.mlscale.usage.tag`` set to it. Logs are returned by name.
    """
    root = Path(local_path(str(directory)))
    if not root.is_dir():
        return []
    found = []
    for entry in sorted(root.iterdir()):
        if not _is_log(entry):
            continue
        if since is not None and max((p.stat().st_mtime for p in _event_files(entry)), default=0.0) < since:
            continue
        if tag is not None and _properties(entry).get(USAGE_TAG_PROPERTY) != tag:
            continue
        found.append(entry)
    return found


def local_path(uri: str) -> str:
    """The local path of an event-log directory: ``file:/x``, ``file:///x`` or ``/x``.

    Raises :class:`EventLogError` for other schemes (``hdfs://``, ``s3a://``): those logs are not read here.
    """
    if uri.startswith("file:"):
        rest = uri[len("file:"):]
        return "/" + rest.lstrip("/") if rest.startswith("/") else rest
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", uri):
        raise EventLogError(f"spark.eventLog.dir {uri!r} is not on this machine's filesystem; resource use is read "
                            "from local event logs only (leave spark.eventLog.dir unset to get one per task)")
    return uri


def _memory(metrics: Mapping[str, Any]) -> int:
    """One snapshot's memory of an executor: its process tree's RSS where reported, else the JVM's pools."""
    rss = sum(int(metrics.get(k) or 0) for k in _PROCESS_TREE_RSS)
    return rss if rss > 0 else sum(int(metrics.get(k) or 0) for k in _JVM_POOLS)


class _Totals:
    def __init__(self) -> None:
        self.app_ids: list[str] = []
        self.starts: list[int] = []
        self.ends: list[int] = []
        self.last_ms: int | None = None
        self.cpu_ns = 0
        self.run_ms = 0
        self.tasks = self.failed = 0
        self.cores: dict[str, int] = {}
        self.peaks: dict[str, int] = {}
        self.sums = dict.fromkeys(("bytes_read", "bytes_written", "records_read", "records_written",
                                   "memory_bytes_spilled", "disk_bytes_spilled"), 0)
        self.peak_execution = 0
        self.memory_limit = 0

    def peak(self, executor: Any, metrics: Any) -> None:
        if executor is None or not isinstance(metrics, Mapping):
            return
        value = _memory(metrics)
        if value > 0:
            self.peaks[str(executor)] = max(self.peaks.get(str(executor), 0), value)

    def add(self, event: Mapping[str, Any]) -> None:
        kind = event.get("Event")
        if kind == "SparkListenerApplicationStart":
            self.app_ids.append(str(event.get("App ID", "")))
            self.starts.append(int(event["Timestamp"]))
        elif kind == "SparkListenerApplicationEnd":
            self.ends.append(int(event["Timestamp"]))
        elif kind == "SparkListenerEnvironmentUpdate":
            props = event.get("Spark Properties") or {}
            local = str(props.get("spark.master", "")).startswith("local")
            setting = props.get("spark.driver.memory" if local else "spark.executor.memory") or DEFAULT_MEMORY
            try:
                self.memory_limit = max(self.memory_limit, parse_size(setting))
            except ValueError:
                logger.warning("event log: memory setting %r not understood; no memory limit recorded", setting)
        elif kind == "SparkListenerExecutorAdded":
            info = event.get("Executor Info") or {}
            self.cores[str(event.get("Executor ID"))] = int(info.get("Total Cores") or 0)
        elif kind == "SparkListenerTaskEnd":
            self._task_end(event)
        elif kind == "SparkListenerStageExecutorMetrics":
            self.peak(event.get("Executor ID"), event.get("Executor Metrics"))
        elif kind == "SparkListenerExecutorMetricsUpdate":
            for update in event.get("Executor Metrics Updated") or []:
                self.peak(event.get("Executor ID"), update.get("Executor Metrics"))

    def _task_end(self, event: Mapping[str, Any]) -> None:
        info = event.get("Task Info") or {}
        metrics = event.get("Task Metrics") or {}
        self.tasks += 1
        succeeded = (event.get("Task End Reason") or {}).get("Reason") == "Success"
        self.failed += 0 if succeeded else 1
        if info.get("Finish Time"):
            self.last_ms = max(self.last_ms or 0, int(info["Finish Time"]))
        self.peak(info.get("Executor ID"), event.get("Task Executor Metrics"))
        if not metrics:   # a task lost with its executor reports no metrics
            return
        self.cpu_ns += int(metrics.get("Executor CPU Time") or 0) + int(metrics.get("Executor Deserialize CPU Time") or 0)
        self.run_ms += int(metrics.get("Executor Run Time") or 0)
        inputs, outputs = metrics.get("Input Metrics") or {}, metrics.get("Output Metrics") or {}
        self.sums["bytes_read"] += int(inputs.get("Bytes Read") or 0)
        self.sums["bytes_written"] += int(outputs.get("Bytes Written") or 0)
        if succeeded:
            self.sums["records_read"] += int(inputs.get("Records Read") or 0)
            self.sums["records_written"] += int(outputs.get("Records Written") or 0)
        self.sums["memory_bytes_spilled"] += int(metrics.get("Memory Bytes Spilled") or 0)
        self.sums["disk_bytes_spilled"] += int(metrics.get("Disk Bytes Spilled") or 0)
        self.peak_execution = max(self.peak_execution, int(metrics.get("Peak Execution Memory") or 0))

    def usage(self) -> SparkUsage:
        ends = self.ends or ([self.last_ms] if self.last_ms is not None else [])
        return SparkUsage(app_ids=tuple(self.app_ids), started_ms=min(self.starts, default=None),
                          ended_ms=max(ends, default=None), cpu_seconds=self.cpu_ns / 1e9, run_seconds=self.run_ms / 1e3,
                          tasks=self.tasks, failed_tasks=self.failed, executor_cores=dict(self.cores),
                          peak_memory_bytes=dict(self.peaks), peak_execution_memory=self.peak_execution,
                          memory_limit_bytes=self.memory_limit, **self.sums)


def usage_of_events(events: Iterable[Mapping[str, Any]]) -> SparkUsage:
    """The :class:`SparkUsage` of a stream of event-log events (one application, or several one after another)."""
    totals = _Totals()
    for event in events:
        try:
            totals.add(event)
        except (KeyError, TypeError, ValueError) as exc:   # one odd event never hides the rest
            logger.warning("event log: %s skipped (%s: %s)", event.get("Event"), type(exc).__name__, exc)
    return totals.usage()


def parse_event_logs(paths: Iterable[str | Path]) -> SparkUsage:
    """The resources the applications of these event logs used together (wall time: first start to last end).

    Raises :class:`EventLogError` when no path is given or a log holds no application start.
    """
    paths = list(paths)
    if not paths:
        raise EventLogError("no Spark event log to read: was the job submitted with spark.eventLog.enabled=true?")
    usage = usage_of_events(event for path in paths for event in read_events(path))
    if not usage.app_ids:
        raise EventLogError(f"{', '.join(map(str, paths))}: no SparkListenerApplicationStart event; not a Spark "
                            "event log, or the application failed before it started")
    return usage
