"""Deterministic dedupe on the contract key: within the day, and against earlier days' raw partitions."""

from __future__ import annotations

import datetime as dt
import logging

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mlscale.contracts import Contract
from mlscale.lake import Lake, PartitionRef

logger = logging.getLogger(__name__)


def previous_keys(lake: Lake, contract: Contract, day: dt.date) -> pa.Array:
    """Keys already committed to raw in the ``dedupe_window_days`` before ``day`` (manifests only)."""
    from mlscale.ingest.files import key_strings

    arrays = []
    for back in range(1, contract.dedupe_window_days + 1):
        ref = PartitionRef.of("raw", contract.dataset, day - dt.timedelta(days=back))
        if lake.manifest(ref) is None:
            continue
        table = lake.read_table(ref, columns=list(contract.key))
        arrays.append(key_strings(table, contract.key))
    if not arrays:
        return pa.array([], pa.string())
    return pa.concat_arrays([a.combine_chunks() if isinstance(a, pa.ChunkedArray) else a for a in arrays])


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
