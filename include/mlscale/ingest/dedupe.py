"""Deterministic dedupe on the contract key: within the day, and against earlier days' raw partitions."""

from __future__ import annotations

import datetime as dt
import logging

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mlscale.contracts import Contract
from mlscale.lake import Lake, PartitionRef
from mlscale.tracing import annotate, traced

logger = logging.getLogger(__name__)


def previous_keys(lake: Lake, contract: Contract, day: dt.date, *, bucket: int = 0, buckets: int = 1) -> pa.Array:
    """Keys already committed to raw in the ``dedupe_window_days`` before ``day`` (manifests only),
    restricted to one hash bucket; read batch by batch, so memory follows the bucket, not the days."""
    from mlscale.ingest.files import key_strings

    arrays = []
    for back in range(1, contract.dedupe_window_days + 1):
        ref = PartitionRef.of("raw", contract.dataset, day - dt.timedelta(days=back))
        if lake.manifest(ref) is None:
            continue
        for batch in lake.dataset(ref).to_batches(columns=list(contract.key)):
            keys = key_strings(pa.Table.from_batches([batch]), contract.key)
            keys = keys.combine_chunks() if isinstance(keys, pa.ChunkedArray) else keys
            if buckets > 1:
                keys = pc.filter(keys, pa.array(bucket_of(keys, buckets) == bucket))
            arrays.append(keys)
    if not arrays:
        return pa.array([], pa.string())
    return pa.concat_arrays(arrays)


def bucket_of(keys: pa.Array, buckets: int) -> np.ndarray:
    """The dedupe bucket of each key (a stable hash), so buckets can be deduplicated independently."""
    if buckets == 1:
        return np.zeros(len(keys), dtype=np.int64)
    from mlscale.sketches import hash64_column

    hashes, _ = hash64_column(keys)
    return (hashes % np.uint64(buckets)).astype(np.int64)


@traced("ingest.dedupe_bucket", keywords=("bucket", "buckets"))
def dedupe_bucket(lake: Lake, contract: Contract, stages: list[tuple[str, int]], day: dt.date, *, bucket: int,
                  buckets: int) -> dict[str, list[int]]:
    """Duplicates among the keys of one hash bucket: read from the staged files (key and record
    number only) and the earlier days' raw partitions. Memory is one bucket's keys."""
    from mlscale.ingest.finalize import KEY_COLUMN, read_stage

    tables = []
    for stage_key, rank in stages:
        staged = read_stage(lake, stage_key, columns=[KEY_COLUMN, "source_record"])
        keys = staged.column(KEY_COLUMN).combine_chunks()
        mask = bucket_of(keys, buckets) == bucket
        rows = np.flatnonzero(mask)
        tables.append(pa.table({
            "key": pc.take(keys, pa.array(rows)),
            "rank": pa.array(np.full(len(rows), rank, dtype=np.int32)),
            "ordinal": pc.take(staged.column("source_record").combine_chunks(), pa.array(rows)),
            "stage": pa.array([stage_key] * len(rows), pa.string()).dictionary_encode(),
            "row": pa.array(rows, pa.int64()),
        }))
    if not tables:
        return {}
    earlier = previous_keys(lake, contract, day, bucket=bucket, buckets=buckets)
    drops = duplicate_rows(pa.concat_tables(tables, promote_options="permissive"), earlier)
    annotate(rows=sum(t.num_rows for t in tables), earlier_keys=len(earlier),
             duplicates=sum(len(rows) for rows in drops.values()))
    return drops


def duplicate_rows(keys: pa.Table, earlier: pa.Array) -> dict[str, list[int]]:
    """Rows to drop, per staged file: every repeat of a key after its first occurrence in
    (file order, record order), and every key already present in earlier days.

    The same inputs always give the same winners, so reruns and backfills write identical rows.
    """
    if keys.num_rows == 0:
        return {}
    order = pc.sort_indices(keys, sort_keys=[("rank", "ascending"), ("ordinal", "ascending")])
    ordered = keys.take(order)
    codes = pc.dictionary_encode(ordered.column("key")).combine_chunks().indices.to_numpy(zero_copy_only=False)
    first = np.zeros(len(codes), dtype=bool)
    _, first_positions = np.unique(codes, return_index=True)
    first[first_positions] = True
    seen_before = pc.is_in(ordered.column("key"), value_set=earlier).to_numpy(zero_copy_only=False) \
        if len(earlier) else np.zeros(len(codes), dtype=bool)
    drop = ~first | seen_before
    dropped = ordered.filter(pa.array(drop))
    result: dict[str, list[int]] = {}
    stages = dropped.column("stage").cast(pa.string()).to_pylist()
    for stage, row in zip(stages, dropped.column("row").to_pylist(), strict=True):
        result.setdefault(stage, []).append(row)
    return result
