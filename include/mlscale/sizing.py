"""Sizing advisor: which partitions need compaction, and the Spark configuration for the job.

Pure functions over partition statistics (from manifests) and the cluster's resources; every decision
carries its reasons so the task log says why a partition was, or was not, rewritten.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from mlscale.lake.manifest import Manifest

MB = 1 << 20
GB = 1 << 30
DEFAULT_TARGET_FILE_BYTES = 128 * MB


@dataclass(frozen=True)
class SubpartitionStats:
    """One directory of data files inside a partition (``region=NL``, or '' when not sub-partitioned)."""

    subdir: str
    files: int
    rows: int
    bytes: int
    median_file_bytes: float


@dataclass(frozen=True)
class PartitionStats:
    partition: str
    subpartitions: tuple[SubpartitionStats, ...]
    compacted_by: str | None = None  # the compaction attempt that produced the current version, if any

    @property
    def files(self) -> int:
        return sum(s.files for s in self.subpartitions)

    @property
    def bytes(self) -> int:
        return sum(s.bytes for s in self.subpartitions)

    @property
    def rows(self) -> int:
        return sum(s.rows for s in self.subpartitions)


def partition_stats(manifest: Manifest) -> PartitionStats:
    """Statistics of a committed partition, grouped by sub-directory, from its manifest alone."""
    groups: dict[str, list] = {}
    for entry in manifest.files:
        groups.setdefault(entry.path.rpartition("/")[0], []).append(entry)
    subs = tuple(
        SubpartitionStats(subdir=subdir, files=len(entries), rows=sum(e.rows for e in entries),
                          bytes=sum(e.bytes for e in entries),
                          median_file_bytes=float(statistics.median(e.bytes for e in entries)))
        for subdir, entries in sorted(groups.items())
    )
    return PartitionStats(manifest.partition, subs, manifest.extra.get("compaction_attempt"))


@dataclass(frozen=True)
class CompactionPolicy:
    target_file_bytes: int = DEFAULT_TARGET_FILE_BYTES
    max_files: int = 8                 # a sub-partition with more files than this is a candidate
    min_median_file_bytes: int = 32 * MB  # ... and so is one whose median file is smaller than this


DEFAULT_POLICY = CompactionPolicy()


@dataclass(frozen=True)
class CompactionDecision:
    partition: str
    compact: bool
    reasons: tuple[str, ...]
    output_files: dict[str, int] = field(default_factory=dict)  # sub-directory -> planned file count
    files_before: int = 0
    bytes_before: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def planned_files(total_bytes: int, target_file_bytes: int) -> int:
    """Output files for ``total_bytes`` of data at ``target_file_bytes`` each (at least one)."""
    return max(1, math.ceil(total_bytes / max(1, target_file_bytes)))


def decide(stats: PartitionStats, policy: CompactionPolicy = DEFAULT_POLICY) -> CompactionDecision:
    """Compact a partition when a sub-partition has too many or too small files *and* rewriting it
    would lower its file count; a partition already at its planned file count is left alone (no-op)."""
    reasons: list[str] = []
    planned: dict[str, int] = {}
    for sub in stats.subpartitions:
        target = planned_files(sub.bytes, policy.target_file_bytes)
        name = sub.subdir or "(root)"
        if sub.files <= target:
            continue
        too_many = sub.files > policy.max_files
        too_small = sub.median_file_bytes < policy.min_median_file_bytes
        if too_many or too_small:
            why = []
            if too_many:
                why.append(f"{sub.files} files > {policy.max_files}")
            if too_small:
                why.append(f"median file {sub.median_file_bytes / MB:.2f} MB < {policy.min_median_file_bytes / MB:.0f} MB")
            reasons.append(f"{name}: {' and '.join(why)} -> {target} file(s)")
            planned[sub.subdir] = target
    if not stats.subpartitions:
        return CompactionDecision(stats.partition, False, ("empty partition",))
    if not planned:
        return CompactionDecision(stats.partition, False,
                                  (f"already compact: {stats.files} files for {stats.bytes / MB:.1f} MB",),
                                  files_before=stats.files, bytes_before=stats.bytes)
    # keep the partition's sub-directories that need no rewrite as they are
    return CompactionDecision(stats.partition, True, tuple(reasons), planned, stats.files, stats.bytes)


@dataclass(frozen=True)
class ClusterResources:
    """What the Spark connection offers: ``executors`` × ``cores_per_executor``, memory per executor."""

    executors: int = 1
    cores_per_executor: int = 2
    memory_per_executor_bytes: int = 2 * GB
    local: bool = True


LOCAL_CLUSTER = ClusterResources()


@dataclass(frozen=True)
class SparkPlan:
    conf: dict[str, str]
    reasons: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def spark_config(decisions: Iterable[CompactionDecision], cluster: ClusterResources,
                 policy: CompactionPolicy = DEFAULT_POLICY, history: SizingAdvice | None = None) -> SparkPlan:
    """Spark settings for one compaction job over the partitions to compact. With ``history`` (the advice from
    the job's past runs, :func:`advise_from_history`), executor memory follows what those runs used instead of
    the size rule, within what the cluster offers; the reasons say which was used."""
    chosen = [d for d in decisions if d.compact]
    total_bytes = sum(d.bytes_before for d in chosen)
    largest = max((d.bytes_before for d in chosen), default=0)
    cores = cluster.executors * cluster.cores_per_executor
    reasons = []
    shuffle = min(max(1, math.ceil(total_bytes / policy.target_file_bytes)), max(1, 4 * cores), 2000)
    reasons.append(f"shuffle partitions {shuffle}: {total_bytes / MB:.1f} MB at "
                   f"{policy.target_file_bytes / MB:.0f} MB each, capped at 4 x {cores} cores")
    # a partition is rewritten by few tasks: give each executor room for ~2 target files in memory
    needed = max(1 * GB, min(cluster.memory_per_executor_bytes, 3 * policy.target_file_bytes + 512 * MB))
    basis = "size rule: ~3 target files + 512 MB"
    if history is not None and history.engine == "spark" and not cluster.local:
        observed = int(str(history.recommended["spark.executor.memory"]).rstrip("m")) * MB
        if observed > needed:   # the history only raises the size rule (a larger day than the past ones stays safe)
            needed = min(cluster.memory_per_executor_bytes, observed)
            basis = f"raised by the usage history of {history.runs} runs: " + "; ".join(history.evidence[1:])
        else:
            basis += f" (the usage history of {history.runs} runs needs less: {observed // MB} MB)"
    executor_memory = f"{max(1, needed // MB)}m"
    driver_memory = "1g" if total_bytes < 10 * GB else "2g"
    reasons.append(f"executor memory {executor_memory} of {cluster.memory_per_executor_bytes / GB:.1f} GB offered "
                   f"({basis}); driver {driver_memory}")
    broadcast = largest < cluster.memory_per_executor_bytes // 10
    reasons.append("broadcast joins allowed (largest partition < 10% of executor memory)" if broadcast
                   else "broadcast joins disabled (partitions too large for executor memory)")
    speculation = not cluster.local and cluster.executors > 1 and len(chosen) > 1
    reasons.append(f"speculation {'on' if speculation else 'off'}"
                   f" ({'local mode' if cluster.local else f'{cluster.executors} executors'})")
    conf = {
        "spark.sql.shuffle.partitions": str(shuffle),
        "spark.executor.memory": executor_memory,
        "spark.driver.memory": driver_memory,
        "spark.executor.cores": str(cluster.cores_per_executor),
        "spark.sql.autoBroadcastJoinThreshold": str(10 * MB if broadcast else -1),
        "spark.speculation": str(speculation).lower(),
        "spark.sql.parquet.compression.codec": "zstd",
        "spark.sql.files.maxRecordsPerFile": "0",
        "spark.ui.enabled": "false",
    }
    return SparkPlan(conf, tuple(reasons))


# -- training -----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class TrainingPlan:
    """Single-process or distributed training, the Dask partition count, and why."""

    mode: str                      # "single" (one worker, all data in its memory) or "distributed"
    partitions: int                # Dask partitions of the training data (one per worker at least)
    estimated_bytes: int           # in-memory size of the training matrix (float32) plus labels
    reasons: tuple[str, ...]
    rows: int = 0                  # the workload planned for (the usage records' bottleneck model reads it)
    features: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def training_plan(rows: int, features: int, *, workers: int, memory_per_worker_bytes: int,
                  single_process_max_rows: int = 2_000_000, partition_bytes: int = 128 * MB,
                  force: str | None = None) -> TrainingPlan:
    """Decide how to train ``rows`` × ``features`` on ``workers`` workers of ``memory_per_worker_bytes``.

    Histogram training needs the float32 matrix plus its quantised copy and gradients: about 3× the matrix per
    copy held. Single-process when that fits in half of one worker's memory and ``rows`` is below
    ``single_process_max_rows`` (distributing small data costs more in communication than it saves);
    distributed otherwise, with partitions of about ``partition_bytes`` and at least one per worker.
    ``force`` ("single" or "distributed") overrides the choice, and the reasons say so.
    """
    matrix = rows * (features + 1) * 4
    needed = 3 * matrix
    reasons = [f"{rows:,} rows x {features} features = {matrix / MB:.1f} MB as float32; ~{needed / MB:.0f} MB to train"]
    fits = needed <= memory_per_worker_bytes // 2
    reasons.append(f"one worker has {memory_per_worker_bytes / MB:.0f} MB: training {'fits' if fits else 'does not fit'}"
                   " in half of it")
    if force in ("single", "distributed"):
        mode = force
        reasons.append(f"mode {force} forced by the caller")
        if force == "single" and not fits:
            reasons.append("warning: single-process training may run out of memory")
    elif fits and rows <= single_process_max_rows:
        mode = "single"
        reasons.append(f"{rows:,} rows <= {single_process_max_rows:,}: single-process on one worker is faster")
    elif workers < 2:
        mode = "single"
        reasons.append("only one worker: single-process on it")
    else:
        mode = "distributed"
        reasons.append(f"distributed over {workers} workers")
    partitions = 1 if mode == "single" else max(workers, math.ceil(matrix / partition_bytes))
    if mode == "distributed":
        partitions = math.ceil(partitions / workers) * workers  # balanced across workers
        reasons.append(f"{partitions} partitions of ~{matrix / partitions / MB:.1f} MB")
    return TrainingPlan(mode=mode, partitions=partitions, estimated_bytes=needed, reasons=tuple(reasons), rows=rows,
                        features=features)


# -- right-sizing from the usage history -----------------------------------------------------------------------

#: CPU busy share a recommendation aims at (room for skew and retries), and memory headroom over the peak
TARGET_CPU_BUSY = 0.7
MEMORY_HEADROOM = 1.25
MEMORY_STEP = 256 * MB
MIN_WORKER_MEMORY = 512 * MB
MIN_HISTORY_RUNS = 3


@dataclass(frozen=True)
class SizingAdvice:
    """What a stage's past runs say its cluster should be, with the evidence (per engine: Dask or Spark)."""

    dag_id: str
    task_id: str
    engine: str
    runs: int
    offered: dict[str, int]
    recommended: dict[str, Any]
    evidence: tuple[str, ...]
    change: bool                                  #: the recommendation differs from what was offered

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        verdict = "change" if self.change else "keep"
        return f"{self.dag_id}.{self.task_id} ({self.engine}, {self.runs} runs): {verdict} -> {self.recommended}; " + \
            "; ".join(self.evidence)


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def _round_memory(nbytes: float) -> int:
    return max(MIN_WORKER_MEMORY, math.ceil(nbytes / MEMORY_STEP) * MEMORY_STEP)


def advise_from_history(records: list[Any]) -> SizingAdvice | None:
    """Right-size one stage from its usage records (``UsageRecord``s of one DAG task, any order); ``None`` with
    fewer than :data:`MIN_HISTORY_RUNS` runs. CPU: the 90th-percentile busy share of the cores offered, aimed at
    :data:`TARGET_CPU_BUSY`; memory: the 95th-percentile peak of a process, with :data:`MEMORY_HEADROOM`, and
    half as much again when a run spilled to disk."""
    if len(records) < MIN_HISTORY_RUNS:
        return None
    latest = max(records, key=lambda r: r.started_at)
    workers, threads = max(1, latest.workers), max(1, latest.threads_per_worker or 1)
    cores = workers * threads
    # each run against the cores it had (the cluster may have changed); older records without threads: skipped
    busy = [r.cpu_seconds / (r.wall_seconds * r.workers * r.threads_per_worker) for r in records
            if r.wall_seconds > 0 and r.workers > 0 and r.threads_per_worker > 0]
    busy_p90 = _quantile(busy, 0.9) if busy else 0.0
    peaks = [max(r.peak_memory_bytes.values(), default=0) for r in records]
    peak_p95 = _quantile([float(p) for p in peaks], 0.95)
    spilled = max(r.spilled_bytes_peak for r in records)
    memory = _round_memory(peak_p95 * MEMORY_HEADROOM * (1.5 if spilled else 1.0))
    needed_cores = max(1, math.ceil(busy_p90 * cores / TARGET_CPU_BUSY))
    rec_threads = min(threads, needed_cores)
    rec_workers = max(1, math.ceil(needed_cores / rec_threads))
    evidence = [f"CPU busy {100 * busy_p90:.0f}% of {cores} core(s) at p90 -> {needed_cores} core(s) at "
                f"{100 * TARGET_CPU_BUSY:.0f}%",
                f"peak memory {peak_p95 / MB:.0f} MiB per process at p95"
                + (f" of {latest.memory_limit_bytes / MB:.0f} MiB limit" if latest.memory_limit_bytes else "")]
    if spilled:
        evidence.append(f"spilled up to {spilled / MB:.0f} MiB to disk: +50% memory")
    offered = {"workers": workers, "threads_per_worker": threads, "memory_per_worker_bytes": latest.memory_limit_bytes}
    if latest.engine == "spark":
        recommended: dict[str, Any] = {"spark.executor.instances": rec_workers, "spark.executor.cores": rec_threads,
                                       "spark.executor.memory": f"{memory // MB}m"}
    else:
        recommended = {"workers": rec_workers, "threads_per_worker": rec_threads, "memory_per_worker_bytes": memory}
    memory_off = bool(latest.memory_limit_bytes) and not (0.5 * latest.memory_limit_bytes <= memory
                                                          <= latest.memory_limit_bytes)
    change = (rec_workers, rec_threads) != (workers, threads) or memory_off
    return SizingAdvice(latest.dag_id, latest.task_id, latest.engine, len(records), offered, recommended,
                        tuple(evidence), change)
