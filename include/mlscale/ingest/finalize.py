"""Turn staged rows into raw partition files: drop duplicates, write one sub-partition's files."""

from __future__ import annotations

import io
from collections.abc import Mapping

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from mlscale.lake import FileEntry, Lake, PartitionRef

MAX_ROWS_PER_FILE = 2_000_000


def stage_subdir(stage_key: str, stage_prefix: str) -> str:
    """``region=NL`` for ``<prefix>/region=NL/f00001-0000.parquet`` ('' when not sub-partitioned)."""
    rest = stage_key[len(stage_prefix):].strip("/")
    return rest.rpartition("/")[0]


def finalize_subpartition(lake: Lake, stage_keys: list[str], drops: Mapping[str, list[int]], raw_ref: PartitionRef,
                          *, subdir: str, attempt: str, seq: int,
                          max_rows_per_file: int = MAX_ROWS_PER_FILE) -> list[FileEntry]:
    """Write the surviving rows of ``stage_keys`` (all of one sub-partition) as few, large files.

    Rows keep the order of the staged files (file order, then record order); memory is bounded by
    ``max_rows_per_file``.
    """
    entries: list[FileEntry] = []
    pending: list[pa.Table] = []
    pending_rows = 0

    def flush() -> None:
        nonlocal pending, pending_rows
        if pending_rows:
            table = pa.concat_tables(pending)
            entries.append(lake.write_table(raw_ref, table, attempt=attempt, seq=seq * 1000 + len(entries),
                                            subdir=subdir))
        pending, pending_rows = [], 0

    for stage_key in stage_keys:
        table = pq.read_table(io.BytesIO(lake.read_bytes(stage_key)))
        dropped = drops.get(stage_key)
        if dropped:
            keep = np.ones(table.num_rows, dtype=bool)
            keep[np.asarray(dropped, dtype=np.int64)] = False
            table = table.filter(pa.array(keep))
        if table.num_rows == 0:
            continue
        pending.append(table)
        pending_rows += table.num_rows
        if pending_rows >= max_rows_per_file:
            flush()
    flush()
    return entries
