"""Compaction: plan which partitions to rewrite (with :mod:`mlscale.sizing`), and commit rewritten files.

The rewrite itself runs on Spark (``include/mlscale/spark_apps/compact_partitions.py``); this module holds what the
Airflow task and the Spark driver share, so both commit through :class:`mlscale.lake.Lake`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import logging
import posixpath
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pyarrow.parquet as pq

from mlscale.lake import FileEntry, Lake, Manifest, PartitionRef, file_name_of, parse_day
from mlscale.layout import COMPACTION_PLANS, COMPACTION_RUNS
from mlscale.sizing import (
    DEFAULT_POLICY,
    LOCAL_CLUSTER,
    MIN_HISTORY_RUNS,
    ClusterResources,
    CompactionDecision,
    CompactionPolicy,
    advise_from_history,
    decide,
    partition_stats,
    spark_config,
)

logger = logging.getLogger(__name__)
PLANS = COMPACTION_PLANS
RUNS = COMPACTION_RUNS


class VerificationFailed(RuntimeError):
    """Rewritten files differ from the input (rows, checksum or schema): the old partition stays."""


@dataclass(frozen=True)
class CompactionPlan:
    plan_key: str
    lake_root: str
    run_id: str
    partitions: tuple[dict[str, Any], ...]   # decision + sort columns, for partitions to compact
    skipped: tuple[dict[str, Any], ...]
    spark_conf: dict[str, str]
    spark_reasons: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"plan_key": self.plan_key, "lake_root": self.lake_root, "run_id": self.run_id,
                "partitions": list(self.partitions), "skipped": list(self.skipped),
                "spark_conf": self.spark_conf, "spark_reasons": list(self.spark_reasons),
                "to_compact": len(self.partitions)}


def days_between(first: str, last: str) -> list[str]:
    lo, hi = parse_day(first), parse_day(last)
    return [(lo + dt.timedelta(days=i)).isoformat() for i in range((hi - lo).days + 1)]


def plan_compaction(lake: Lake, *, zone: str, datasets: Iterable[str], first_day: str, last_day: str, run_id: str,
                    policy: CompactionPolicy = DEFAULT_POLICY,
                    cluster: ClusterResources = LOCAL_CLUSTER,
                    sort_columns: dict[str, list[str]] | None = None,
                    history: list[Any] | None = None) -> CompactionPlan:
    """Decide, for every committed partition of ``datasets`` in the day range, whether to compact it.

    Writes the plan to ``_meta/compaction_plans/`` (the Spark job reads it) and logs every decision.
    ``history``: the usage records of the job's past runs; the Spark settings follow them when there are
    enough (:func:`~mlscale.sizing.advise_from_history`), and the log says which basis was used.
    """
    chosen: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    days = set(days_between(first_day, last_day))
    for dataset in datasets:
        for ref in lake.partitions(zone, dataset):
            if ref.dt not in days:
                continue
            manifest = lake.require_manifest(ref)
            if any(entry.path.startswith("/") for entry in manifest.files):
                logger.info("%s: skip (cold tier: not rewritten)", ref.key)
                skipped.append({"partition": ref.key, "compact": False, "reasons": ["cold tier"]})
                continue
            decision = decide(partition_stats(manifest), policy)
            logger.info("%s: %s (%s)", ref.key, "compact" if decision.compact else "skip", "; ".join(decision.reasons))
            item = decision.as_dict() | {"sort_by": (sort_columns or {}).get(dataset, [])}
            (chosen if decision.compact else skipped).append(item)
    decisions = [CompactionDecision(**{k: v for k, v in p.items() if k != "sort_by"}) for p in chosen]
    runs = [r for r in history or [] if r.engine == "spark" and r.succeeded]
    advice = advise_from_history(runs)
    logger.info("sizing: %s", f"the usage history ({advice.summary()})" if advice else
                f"{len(runs)} successful Spark run(s) of this job recorded, too few to size from (needs "
                f"{MIN_HISTORY_RUNS}): the size rules")
    spark = spark_config(decisions, cluster, policy, history=advice)
    for reason in spark.reasons:
        logger.info("spark: %s", reason)
    plan_key = f"{PLANS}/{file_name_of(run_id)}.json"
    plan = CompactionPlan(plan_key, lake.root, run_id, tuple(chosen), tuple(skipped), spark.conf, spark.reasons)
    lake.write_json(plan_key, plan.as_dict())
    logger.info("compaction plan %s: %d partitions to compact, %d skipped", lake.uri(plan_key), len(chosen),
                len(skipped))
    return plan


def file_entry(data: bytes, path: str) -> FileEntry:
    rows = pq.ParquetFile(io.BytesIO(data)).metadata.num_rows
    return FileEntry(path=path, rows=rows, bytes=len(data), sha256=hashlib.sha256(data).hexdigest())


def commit_rewrite(lake: Lake, ref: PartitionRef, previous: Manifest, rewritten: dict[str, list[bytes]], *,
                   attempt: str, run_id: str) -> Manifest:
    """Store the rewritten files of some sub-directories and commit them with the untouched ones.

    Refuses (:class:`VerificationFailed`) if the row count or the column schema changed; the previous
    version then stays committed and the new files become orphans for the lifecycle DAG.
    """
    entries: list[FileEntry] = [e for e in previous.files if e.path.rpartition("/")[0] not in rewritten]
    old_schema = None
    for subdir, blobs in sorted(rewritten.items()):
        before = sum(e.rows for e in previous.files if e.path.rpartition("/")[0] == subdir)
        new_entries = []
        for seq, data in enumerate(blobs):
            path = posixpath.join(subdir, f"part-{attempt}-{seq:05d}.parquet")
            lake.write_bytes(f"{ref.key}/{path}", data)
            new_entries.append(file_entry(data, path))
        after = sum(e.rows for e in new_entries)
        if after != before:
            raise VerificationFailed(f"{ref.key}/{subdir}: {after} rows rewritten, {before} committed")
        first_old = next(e for e in previous.files if e.path.rpartition("/")[0] == subdir)
        old_schema = pq.read_schema(io.BytesIO(lake.read_bytes(lake.file_key(ref, first_old.path))))
        for data in blobs:
            new_schema = pq.read_schema(io.BytesIO(data))
            if [(f.name, f.type) for f in new_schema] != [(f.name, f.type) for f in old_schema]:
                raise VerificationFailed(f"{ref.key}/{subdir}: schema changed from {old_schema} to {new_schema}")
        entries += new_entries
    schema = old_schema or pq.read_schema(io.BytesIO(lake.read_bytes(lake.file_key(ref, previous.files[0].path))))
    # the rewrite is derived from ``previous``: a partition committed meanwhile (a rerun) is not overwritten
    return lake.commit(ref, entries, schema=schema.remove_metadata(), run_id=run_id, attempt=attempt,
                       inputs=previous.inputs, extra=previous.extra | {"compaction_attempt": attempt,
                                                                        "compacted_run": run_id},
                       expected_version=previous.version)

