from __future__ import annotations

from mlscale.lake.manifest import FileEntry, Manifest
from mlscale.sizing import (
    GB,
    MB,
    ClusterResources,
    CompactionPolicy,
    decide,
    partition_stats,
    planned_files,
    spark_config,
)


def manifest(files: list[tuple[str, int]]) -> Manifest:
    return Manifest(partition="raw/t/dt=2026-11-01",
                    files=tuple(FileEntry(path=p, rows=max(1, b // 100), bytes=b, sha256="0" * 64) for p, b in files),
                    schema_fingerprint="x", run_id="r", attempt="a")


def test_many_small_files_are_compacted_to_the_planned_count() -> None:
    stats = partition_stats(manifest([(f"region=NL/part-a-{i:05d}.parquet", 200_000) for i in range(300)]))
    decision = decide(stats)
    assert decision.compact and decision.output_files == {"region=NL": 1}
    assert "300 files > 8" in decision.reasons[0] and "median file" in decision.reasons[0]


def test_already_compact_partition_is_a_noop() -> None:
    decision = decide(partition_stats(manifest([("region=NL/p0.parquet", 5_000), ("region=DE/p1.parquet", 7_000)])))
    assert not decision.compact and "already compact" in decision.reasons[0]


def test_one_huge_file_is_not_split_or_rewritten() -> None:
    decision = decide(partition_stats(manifest([("part-0.parquet", 5 * GB)])))
    assert not decision.compact


def test_empty_partition() -> None:
    decision = decide(partition_stats(manifest([])))
    assert not decision.compact and decision.reasons == ("empty partition",)


def test_skew_only_the_fragmented_subpartition_is_rewritten() -> None:
    files = [("region=NL/big.parquet", 120 * MB)] + [(f"region=PL/s{i}.parquet", 1 * MB) for i in range(50)]
    decision = decide(partition_stats(manifest(files)))
    assert decision.output_files == {"region=PL": 1}


def test_large_fragmented_subpartition_gets_several_files() -> None:
    files = [(f"part-{i}.parquet", 10 * MB) for i in range(100)]  # 1000 MB in 100 files
    decision = decide(partition_stats(manifest(files)), CompactionPolicy(target_file_bytes=128 * MB))
    assert decision.output_files == {"": planned_files(1000 * MB, 128 * MB)} == {"": 8}


def test_spark_config_fits_the_cluster() -> None:
    files = [(f"part-{i}.parquet", 10 * MB) for i in range(100)]
    decisions = [decide(partition_stats(manifest(files)))]
    local = spark_config(decisions, ClusterResources(executors=1, cores_per_executor=2, local=True))
    assert local.conf["spark.sql.shuffle.partitions"] == "8"  # 1000 MB / 128 MB, under 4 x 2 cores
    assert local.conf["spark.speculation"] == "false"
    big = spark_config(decisions, ClusterResources(executors=4, cores_per_executor=4,
                                                   memory_per_executor_bytes=16 * GB, local=False))
    assert big.conf["spark.speculation"] == "false"  # a single partition: nothing to speculate across
    assert int(big.conf["spark.executor.memory"].rstrip("m")) <= 16 * 1024
    assert big.conf["spark.sql.autoBroadcastJoinThreshold"] != "-1"
    tiny = spark_config(decisions, ClusterResources(memory_per_executor_bytes=1 * GB))
    assert tiny.conf["spark.sql.autoBroadcastJoinThreshold"] == "-1"
    assert any("broadcast" in r for r in tiny.reasons)
