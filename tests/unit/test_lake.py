from __future__ import annotations

import json
import pickle

import pyarrow as pa
import pytest
from mlscale.lake import (
    MANIFEST_NAME,
    CommitConflict,
    CommitError,
    Lake,
    LakeConfigError,
    ManifestError,
    PartitionNameError,
    PartitionNotFound,
    PartitionRef,
    new_attempt_id,
)
from mlscale.lake.manifest import schema_fingerprint

REF = PartitionRef.of("raw", "transactions", "2026-11-01")


SCHEMA = pa.schema([("event_id", pa.string()), ("amount", pa.float64())])


def table(values: list[int]) -> pa.Table:
    return pa.table({"event_id": [f"E{v}" for v in values], "amount": [float(v) for v in values]}, schema=SCHEMA)


def write_version(lake: Lake, values_by_region: dict[str, list[int]], run_id: str = "run-1"):
    schema = SCHEMA
    with lake.writer(REF, run_id=run_id, schema=schema) as w:
        for region, values in values_by_region.items():
            w.write(table(values), subdir=f"region={region}")
    return w.manifest


def test_commit_then_read_exact_rows_with_hive_columns(lake: Lake) -> None:
    manifest = write_version(lake, {"NL": [1, 2, 3], "DE": [4, 5]})
    assert manifest.rows == 5 and len(manifest.files) == 2
    got = lake.read_table(REF).sort_by("event_id")
    assert got.column("event_id").to_pylist() == ["E1", "E2", "E3", "E4", "E5"]
    assert sorted(set(got.column("region").to_pylist())) == ["DE", "NL"]
    doc = lake.read_json(f"{REF.key}/{MANIFEST_NAME}")
    assert doc["rows"] == 5 and doc["run_id"] == "run-1"
    assert doc["schema_fingerprint"] == schema_fingerprint(SCHEMA)
    assert all(len(f["sha256"]) == 64 for f in doc["files"])
    lake.verify(REF)


def test_recommit_replaces_exactly_and_records_superseded_files(lake: Lake) -> None:
    first = write_version(lake, {"NL": [1, 2, 3]})
    second = write_version(lake, {"NL": [7], "PL": [8]}, run_id="run-2")
    assert sorted(lake.read_table(REF).column("event_id").to_pylist()) == ["E7", "E8"]
    old_keys = {f"{REF.key}/{old.path}" for old in first.files}
    superseded = lake.superseded(REF.key)
    assert set(superseded) == old_keys and all(when.startswith("20") for when in superseded.values())
    data = {f.key for f in lake.list_files(REF.key) if "/_superseded/" not in f.key and "/_manifests/" not in f.key}
    assert data == {f"{REF.key}/{MANIFEST_NAME}"} | {f"{REF.key}/{f.path}" for f in second.files} | old_keys
    assert lake.orphans("raw") == []   # superseded files are accounted for; lifecycle removes them after the grace


def test_a_reader_pinned_before_a_rewrite_reads_the_old_version_whole(lake: Lake) -> None:
    write_version(lake, {"NL": [1, 2, 3], "PL": [4]})
    pinned = lake.dataset(REF)                                  # a reader starts: it has listed the old files
    write_version(lake, {"NL": [7]}, run_id="run-2")            # the partition is rewritten meanwhile
    assert sorted(pinned.to_table().column("event_id").to_pylist()) == ["E1", "E2", "E3", "E4"]
    assert lake.read_table(REF).column("event_id").to_pylist() == ["E7"]   # a new reader sees the new one


def test_crash_before_manifest_keeps_readers_on_previous_version(lake: Lake) -> None:
    write_version(lake, {"NL": [1, 2]})
    with pytest.raises(RuntimeError, match="worker died"):
        with lake.writer(REF, run_id="run-2", schema=SCHEMA) as w:
            w.write(table([9, 9, 9]), subdir="region=NL")
            raise RuntimeError("worker died")
    assert sorted(lake.read_table(REF).column("event_id").to_pylist()) == ["E1", "E2"]
    orphans = lake.orphans("raw/transactions")
    assert [o.key for o in orphans] == [f"{REF.key}/{w.files[0].path}"]
    assert orphans[0].size > 0


def test_never_committed_partition_is_not_found_and_its_files_are_orphans(lake: Lake) -> None:
    entry = lake.write_table(REF, table([1]), attempt=new_attempt_id(), seq=0)
    with pytest.raises(PartitionNotFound, match="no committed manifest"):
        lake.read_table(REF)
    assert lake.partitions("raw", "transactions") == []
    assert [o.key for o in lake.orphans("raw")] == [f"{REF.key}/{entry.path}"]


def test_commit_refuses_missing_files(lake: Lake) -> None:
    entry = lake.write_table(REF, table([1]), attempt="a1", seq=0)
    lake.delete(f"{REF.key}/{entry.path}")
    with pytest.raises(CommitError, match="missing"):
        lake.commit(REF, [entry], schema=SCHEMA, run_id="r", attempt="a1")
    assert lake.manifest(REF) is None


def test_partitions_listing_and_delete(lake: Lake) -> None:
    schema = SCHEMA
    for day in ("2026-11-02", "2026-11-01", "2026-11-03"):
        ref = PartitionRef.of("raw", "transactions", day)
        with lake.writer(ref, run_id="r", schema=schema) as w:
            w.write(table([1]))
    days = [r.dt for r in lake.partitions("raw", "transactions")]
    assert days == ["2026-11-01", "2026-11-02", "2026-11-03"]
    assert [r.dt for r in lake.partition_days("raw", "transactions", "2026-11-02", "2026-11-03")] == days[1:]
    assert lake.delete_partition(PartitionRef.of("raw", "transactions", "2026-11-02")) == 1
    assert [r.dt for r in lake.partitions("raw", "transactions")] == ["2026-11-01", "2026-11-03"]
    assert lake.list_files("raw/transactions/dt=2026-11-02") == []


def test_checksum_mismatch_is_detected(lake: Lake) -> None:
    manifest = write_version(lake, {"NL": [1, 2]})
    lake.write_bytes(f"{REF.key}/{manifest.files[0].path}", b"tampered")
    with pytest.raises(ManifestError, match="does not match"):
        lake.verify(REF)


def test_lake_pickles_for_dask_workers(lake: Lake) -> None:
    write_version(lake, {"NL": [1]})
    clone = pickle.loads(pickle.dumps(lake))
    assert clone.read_table(REF).num_rows == 1


def test_names_are_validated() -> None:
    with pytest.raises(PartitionNameError, match="zone"):
        PartitionRef.of("rawz", "transactions", "2026-11-01")
    with pytest.raises(PartitionNameError, match="YYYY-MM-DD"):
        PartitionRef.of("raw", "transactions", "yesterday")
    with pytest.raises(PartitionNameError, match="dataset"):
        PartitionRef.of("raw", "../etc", "2026-11-01")
    with pytest.raises(LakeConfigError, match="unsupported scheme"):
        _ = Lake("gs://bucket/x").fs
    assert PartitionRef.from_key("raw/t/dt=2026-11-01/region=NL") == PartitionRef.of("raw", "t", "2026-11-01", region="NL")


def test_two_writers_on_one_partition_lose_no_commit(lake: Lake) -> None:
    """Writers racing on one partition: each commit gets its own version (a loser re-reads and commits again),
    the last version is one writer's rows whole, and every file written is listed or recorded as superseded."""
    import threading

    errors: list[BaseException] = []

    def writer(name: int) -> None:
        try:
            for i in range(6):
                write_version(lake, {"NL": [name * 100 + i, name * 100 + i + 50]}, run_id=f"writer-{name}")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in (1, 2, 3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    final = lake.require_manifest(REF)
    assert final.version == 18                                    # 3 writers x 6 commits: none lost
    versions = sorted(f.key for f in lake.list_files(f"{REF.key}/_manifests/"))
    assert [int(k.rsplit("/", 1)[1].split(".")[0]) for k in versions] == list(range(1, 19))
    attempts = {json.loads(lake.read_bytes(k))["attempt"] for k in versions}
    assert len(attempts) == 18                                    # each version is another commit
    rows = sorted(lake.read_table(REF).column("event_id").to_pylist())
    assert len(rows) == 2 and int(rows[1][1:]) - int(rows[0][1:]) == 50   # one writer's version, whole
    assert lake.orphans("raw") == []                              # every file is listed or superseded


def test_a_commit_over_a_version_it_did_not_see_is_a_conflict(lake: Lake) -> None:
    first = write_version(lake, {"NL": [1]})
    with pytest.raises(CommitConflict, match=f"{REF.key} is at version 1, not 0"):
        lake.publish(REF, first, expected_version=0)
    # another writer created version 2 and has not pointed readers to it yet: this commit lost the race
    lake.write_bytes(f"{REF.key}/_manifests/0000000002.json", first.to_json())
    with pytest.raises(CommitConflict, match=f"{REF.key}: version 2 was committed by another writer"):
        lake.publish(REF, first)


def stranded_version(lake: Lake, values: list[int]):
    """Version n+1 created by a writer that stopped before pointing readers to it (its files written)."""
    import dataclasses

    current = lake.require_manifest(REF)
    entry = lake.write_table(REF, table(values), attempt=new_attempt_id(), seq=0)
    stranded = dataclasses.replace(current, files=(entry,), attempt="stopped", version=current.version + 1)
    lake.write_bytes(f"{REF.key}/_manifests/{stranded.version:010d}.json", stranded.to_json())
    return current, stranded


def test_a_version_its_writer_never_published_is_rolled_forward(lake: Lake, monkeypatch) -> None:
    import mlscale.lake.lake as lake_module

    write_version(lake, {"NL": [1]})
    first, stranded = stranded_version(lake, [2])
    assert lake.read_table(REF).column("event_id").to_pylist() == ["E1"]   # readers never saw version 2
    monkeypatch.setattr(lake_module, "STALE_VERSION_S", 0.0)      # its writer is long gone
    third = write_version(lake, {"NL": [3]}, run_id="run-3")
    assert third.version == 3 and lake.read_table(REF).column("event_id").to_pylist() == ["E3"]
    superseded = set(lake.superseded(REF.key))
    assert set(first.file_keys()) | set(stranded.file_keys()) <= superseded   # both recorded, none orphaned
    assert lake.orphans("raw") == []


def test_a_stranded_version_whose_files_are_gone_is_retired(lake: Lake, monkeypatch) -> None:
    import mlscale.lake.lake as lake_module

    write_version(lake, {"NL": [1]})
    _, stranded = stranded_version(lake, [2])
    for key in stranded.file_keys():
        lake.delete(key)                                          # lifecycle took its files meanwhile
    monkeypatch.setattr(lake_module, "STALE_VERSION_S", 0.0)
    again = write_version(lake, {"NL": [3]}, run_id="run-3")      # not blocked forever
    assert again.version == 2 and lake.read_table(REF).column("event_id").to_pylist() == ["E3"]


def test_a_rewrite_derived_from_a_version_does_not_overwrite_a_later_one(lake: Lake) -> None:
    first = write_version(lake, {"NL": [1]})
    write_version(lake, {"NL": [2]}, run_id="rerun")              # e.g. a rerun taking in a late file
    entry = lake.write_table(REF, table([1]), attempt=new_attempt_id(), seq=0)
    with pytest.raises(CommitConflict, match="is at version 2, not 1"):
        lake.commit(REF, [entry], schema=SCHEMA, run_id="compaction", attempt="c1", expected_version=first.version)
    assert lake.read_table(REF).column("event_id").to_pylist() == ["E2"]
