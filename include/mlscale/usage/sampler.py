"""What a task used on its Dask cluster: wall time, CPU seconds, peak memory per worker, bytes, spill, GPU.

:class:`UsageSampler` wraps a task's work on a Dask client. At the start and the end it asks every worker's
process (and this driver process) for its counters (``psutil``: CPU user+system seconds, bytes through read
and write calls); in between, a thread samples the scheduler's worker metrics every ``interval_s`` (one call
for all workers: memory, spilled bytes, and GPU utilisation and memory where the workers report them — Dask's
NVML diagnostics on GPU workers). Workers that share a process with the driver (an in-process
``LocalCluster``) are counted once, by process id. The record (:class:`UsageRecord`) goes to
``_meta/resource_usage/dt=<day>/<dag>__<task>__<run>__<try>.json`` and onto the task log as one line.

CPU seconds are the processes' busy time during the task (other work in the same processes at the same time
would be counted too: the Dask clusters of this project run one task's work at a time per pool slot).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import threading
import time
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from mlscale.lake import Lake
from mlscale.layout import RESOURCE_USAGE, day_prefix

logger = logging.getLogger(__name__)


@dataclass
class UsageRecord:
    dag_id: str
    task_id: str
    run_id: str
    try_number: int
    day: str
    started_at: str
    wall_seconds: float
    cpu_seconds: float                                   #: every process of the cluster, and the driver
    workers: int
    processes: int
    peak_memory_bytes: dict[str, int] = field(default_factory=dict)   #: per process (pid) — the peak sampled
    bytes_read: int = 0
    bytes_written: int = 0
    spilled_bytes_peak: int = 0
    gpu_seconds: float = 0.0                             #: GPUs held x wall time (GPU workers only)
    gpu_utilization_peak: float | None = None
    gpu_memory_peak_bytes: int | None = None
    samples: int = 0
    cost: dict[str, float] = field(default_factory=dict)
    threads_per_worker: int = 0                          #: what the cluster offered: threads of one worker
    memory_limit_bytes: int = 0                          #: ... and the memory limit of one worker (0: none)
    rows: int | None = None                              #: the workload the task's result reports (bottlenecks)
    features: int | None = None
    engine: str = "dask"                                 #: "dask" or "spark"
    model: str | None = None                             #: the model the task trained or scored, if any
    model_version: str | None = None                     #: "<model>/<version>" (cost per model version)
    map_index: int = -1                                  #: the mapped task instance (-1: not mapped)
    succeeded: bool = True                               #: False: a failed try (its cost counts, its times do not)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        peak = max(self.peak_memory_bytes.values(), default=0) / 2**20
        gpu = f", GPU {self.gpu_seconds:.0f} s (peak util {self.gpu_utilization_peak}%)" if self.gpu_seconds else ""
        cost = f", cost ${self.cost['total']:.5f}" if self.cost else ""
        work = f" for {self.rows:,} rows" if self.rows is not None else ""
        work += f" x {self.features} features" if self.rows is not None and self.features else ""
        return (f"resource use{work}: wall {self.wall_seconds:.1f} s, CPU {self.cpu_seconds:.1f} s on {self.processes} "
                f"process(es) ({self.workers} workers), peak memory {peak:.0f} MiB per process (largest), read "
                f"{self.bytes_read / 2**20:.1f} MiB, written {self.bytes_written / 2**20:.1f} MiB, spilled peak "
                f"{self.spilled_bytes_peak / 2**20:.1f} MiB{gpu}{cost}")


def _counters(dask_worker: Any = None) -> dict[str, Any]:
    """This process's counters (runs on each worker through ``client.run``, and in the driver)."""
    import psutil

    me = psutil.Process()
    cpu = me.cpu_times()
    try:
        io = me.io_counters()
        read, written = int(getattr(io, "read_chars", io.read_bytes)), int(getattr(io, "write_chars", io.write_bytes))
    except (AttributeError, psutil.Error):
        read = written = 0
    return {"pid": os.getpid(), "cpu": cpu.user + cpu.system, "rss": me.memory_info().rss, "read": read,
            "written": written}


class UsageSampler:
    def __init__(self, client: Any, *, interval_s: float = 0.5) -> None:
        self.client, self.interval_s = client, interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._peak: dict[str, int] = {}
        self._spilled = 0
        self._gpu_util: float | None = None
        self._gpu_mem: int | None = None
        self._gpus = 0
        self._samples = 0
        self._pids: dict[str, int] = {}
        self._threads = 0
        self._memory_limit = 0

    def _snapshot(self) -> dict[int, dict[str, Any]]:
        found = {os.getpid(): _counters()}
        try:
            for address, counters in self.client.run(_counters).items():
                self._pids[address] = counters["pid"]
                found[counters["pid"]] = counters
        except Exception as exc:  # noqa: BLE001 - a cluster that cannot answer: the driver's own counters only
            logger.warning("resource use: the workers' counters could not be read (%s: %s)", type(exc).__name__, exc)
        return found

    def _sample(self) -> None:
        try:
            workers = self.client.scheduler_info(n_workers=-1).get("workers", {})
        except TypeError:   # older distributed: no n_workers
            workers = self.client.scheduler_info().get("workers", {})
        except Exception:  # noqa: BLE001 - a missed sample only lowers the peak's precision
            return
        self._samples += 1
        gpus = 0
        for address, info in workers.items():
            self._threads = max(self._threads, int(info.get("nthreads") or 0))
            self._memory_limit = max(self._memory_limit, int(info.get("memory_limit") or 0))
            metrics = info.get("metrics", {})
            pid = str(self._pids.get(address, address))
            self._peak[pid] = max(self._peak.get(pid, 0), int(metrics.get("memory", 0)))
            spilled = metrics.get("spilled_bytes") or {}
            self._spilled = max(self._spilled, int(spilled.get("disk", 0)) if isinstance(spilled, dict) else 0)
            gpu = metrics.get("gpu") or {}
            if gpu or "gpu_utilization" in metrics:
                gpus += 1
                util = gpu.get("utilization", metrics.get("gpu_utilization"))
                used = gpu.get("memory-used", metrics.get("gpu_memory_used"))
                if util is not None:
                    self._gpu_util = max(self._gpu_util or 0.0, float(util))
                if used is not None:
                    self._gpu_mem = max(self._gpu_mem or 0, int(used))
        self._gpus = max(self._gpus, gpus)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._sample()

    def __enter__(self) -> UsageSampler:
        self._started_at = dt.datetime.now(dt.UTC)
        self._t0 = time.perf_counter()
        self._before = self._snapshot()
        self._sample()
        self._thread = threading.Thread(target=self._run, name="usage-sampler", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._wall = time.perf_counter() - self._t0
        self._sample()
        self._after = self._snapshot()

    def record(self, *, dag_id: str, task_id: str, run_id: str, try_number: int, day: str) -> UsageRecord:
        """The record of the ``with`` block that ended."""
        pids = set(self._before) & set(self._after)
        delta = {k: sum(self._after[p][k] - self._before[p][k] for p in pids) for k in ("cpu", "read", "written")}
        peaks = dict(self._peak)
        for pid in pids:   # the driver (and in-process workers) by their own RSS too
            peaks[str(pid)] = max(peaks.get(str(pid), 0), int(self._after[pid]["rss"]), int(self._before[pid]["rss"]))
        return UsageRecord(dag_id=dag_id, task_id=task_id, run_id=run_id, try_number=try_number, day=day,
                           started_at=self._started_at.isoformat(timespec="seconds"),
                           wall_seconds=round(self._wall, 3), cpu_seconds=round(delta["cpu"], 3),
                           workers=len(self._pids), processes=len(pids), peak_memory_bytes=peaks,
                           bytes_read=int(delta["read"]), bytes_written=int(delta["written"]),
                           spilled_bytes_peak=self._spilled, gpu_seconds=round(self._gpus * self._wall, 3),
                           gpu_utilization_peak=self._gpu_util, gpu_memory_peak_bytes=self._gpu_mem,
                           samples=self._samples, threads_per_worker=self._threads,
                           memory_limit_bytes=self._memory_limit)


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+-]", "_", text)[:120]


def usage_key(record: UsageRecord) -> str:
    parts = [record.dag_id, record.task_id, record.run_id, str(record.try_number)]
    if record.map_index >= 0:   # each mapped instance (one per model, say) keeps its own record
        parts.insert(2, f"m{record.map_index}")
    name = "__".join(_safe(p) for p in parts)
    return f"{day_prefix(RESOURCE_USAGE, record.day)}/{name}.json"


def write_usage(lake: Lake, record: UsageRecord) -> str:
    key = usage_key(record)
    lake.write_json(key, record.as_dict())
    return key


def read_usage(lake: Lake, day: str) -> list[UsageRecord]:
    prefix = day_prefix(RESOURCE_USAGE, day)
    records = []
    known = {f.name for f in fields(UsageRecord)}
    for stored in lake.list_files(prefix):
        if not stored.key.endswith(".json"):
            continue
        try:
            doc = lake.read_json(stored.key)
            records.append(UsageRecord(**{k: v for k, v in doc.items() if k in known}))
        except (TypeError, ValueError, AttributeError) as exc:  # a damaged record is skipped, never fatal
            logger.warning("resource use: %s skipped (%s: %s)", stored.key, type(exc).__name__, exc)
    return records
