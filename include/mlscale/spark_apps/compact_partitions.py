"""spark-submit application: rewrite the partitions of a compaction plan into few, sorted files.

    spark-submit include/mlscale/spark_apps/compact_partitions.py --plan _meta/compaction_plans/<run>.json --lake <root>

For each planned partition: read exactly the files its manifest lists, rewrite each planned
sub-directory into the planned number of files sorted by the declared columns, verify row count and an
order-independent content checksum (sum of xxhash64 of every row) against the input, then commit through
``mlscale.lake`` (a new manifest; superseded files kept for the grace period). A failed verification leaves the old
partition in place. Before/after figures go to ``_meta/compaction_runs/``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

from mlscale.compaction import RUNS, VerificationFailed, commit_rewrite
from mlscale.lake import Lake, PartitionRef, new_attempt_id
from mlscale.lake.storage import is_local

logger = logging.getLogger("compact_partitions")


def checksum(df):
    from pyspark.sql import functions as F

    row = df.agg(F.count(F.lit(1)).alias("rows"),
                 F.sum(F.xxhash64(*df.columns).cast("decimal(38,0)")).alias("checksum")).collect()[0]
    return int(row["rows"]), str(row["checksum"])


def local_inputs(lake: Lake, ref: PartitionRef, paths: list[str], scratch: Path) -> list[str]:
    """Paths Spark can read: the lake's own on a local lake, downloaded copies from an object store."""
    if is_local(lake.fs):
        return [lake.path(lake.file_key(ref, p)) for p in paths]
    out = []
    for i, p in enumerate(paths):
        target = scratch / f"in-{i:05d}.parquet"
        target.write_bytes(lake.read_bytes(lake.file_key(ref, p)))
        out.append(str(target))
    return out


def compact_partition(spark, lake: Lake, item: dict, *, run_id: str, fail_before_commit: bool) -> dict:
    ref = PartitionRef.from_key(item["partition"])
    previous = lake.require_manifest(ref)
    attempt = new_attempt_id()
    started = time.perf_counter()
    rewritten: dict[str, list[bytes]] = {}
    with tempfile.TemporaryDirectory(prefix="compact-") as tmp:
        scratch = Path(tmp)
        for subdir, n_files in sorted(item["output_files"].items()):
            paths = [e.path for e in previous.files if e.path.rpartition("/")[0] == subdir]
            df = spark.read.parquet(*local_inputs(lake, ref, paths, scratch / "in" / (subdir or "root")))
            before = checksum(df)
            out = df.coalesce(n_files) if n_files < df.rdd.getNumPartitions() else df.repartition(n_files)
            sort_by = [c for c in item.get("sort_by", []) if c in df.columns]
            if sort_by:
                out = out.sortWithinPartitions(*sort_by)
            target = scratch / "out" / (subdir or "root")
            out.write.mode("overwrite").option("compression", "zstd").parquet(str(target))
            after = checksum(spark.read.parquet(str(target)))
            if after != before:
                raise VerificationFailed(f"{ref.key}/{subdir}: content changed in the rewrite "
                                         f"(rows, checksum) {before} -> {after}; the old partition stays")
            rewritten[subdir] = [p.read_bytes() for p in sorted(target.glob("part-*.parquet"))]
        if fail_before_commit:
            raise RuntimeError("crash injected before the manifest commit (test)")
        manifest = commit_rewrite(lake, ref, previous, rewritten, attempt=attempt, run_id=run_id)
    record = {
        "partition": ref.key, "attempt": attempt, "run_id": run_id,
        "files_before": len(previous.files), "files_after": len(manifest.files),
        "bytes_before": previous.bytes, "bytes_after": manifest.bytes, "rows": manifest.rows,
        "seconds": round(time.perf_counter() - started, 3), "reasons": item.get("reasons", []),
    }
    lake.write_json(f"{RUNS}/dt={ref.dt}/{ref.zone}__{ref.dataset}__{attempt}.json", record)
    logger.info("compacted %s: %d -> %d files, %d -> %d bytes, %d rows", ref.key, record["files_before"],
                record["files_after"], record["bytes_before"], record["bytes_after"], record["rows"])
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plan", required=True, help="key of the plan JSON inside the lake")
    parser.add_argument("--lake", required=True, help="lake root URI")
    parser.add_argument("--fail-before-commit", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stdout)
    from mlscale.lake import S3Options  # noqa: F401 - S3 options come from the environment on executors

    lake = Lake(args.lake)
    plan = lake.read_json(args.plan)
    if not plan["partitions"]:
        logger.info("nothing to compact in %s", args.plan)
        return 0
    from pyspark.sql import SparkSession

    t0 = time.perf_counter()
    spark = (SparkSession.builder.appName(f"mlscale-compaction-{plan['run_id']}")
             # keep Arrow's timestamp[us, UTC]: no INT96, no session-local time zone
             .config("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
             .config("spark.sql.session.timeZone", "UTC")
             .getOrCreate())
    spark.sparkContext.setLogLevel("WARN")
    startup = time.perf_counter() - t0
    records = []
    try:
        for item in plan["partitions"]:
            records.append(compact_partition(spark, lake, item, run_id=plan["run_id"],
                                             fail_before_commit=args.fail_before_commit))
    finally:
        spark.stop()
    work = time.perf_counter() - t0 - startup
    print(json.dumps({"spark_startup_s": round(startup, 2), "work_s": round(work, 2), "partitions": records}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
