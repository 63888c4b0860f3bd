"""Turn staged rows into raw partition files: drop duplicates, split by the contract's partition columns."""

from __future__ import annotations

import io

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from mlscale.lake import FileEntry, Lake, PartitionRef


def finalize_stage(lake: Lake, stage_key: str, drop_rows: list[int], raw_ref: PartitionRef, *,
                   partition_by: tuple[str, ...], attempt: str, seq: int) -> list[FileEntry]:
    """Write one staged file's surviving rows into ``raw_ref`` (one file per partition value)."""
    table = pq.read_table(io.BytesIO(lake.read_bytes(stage_key)))
    if drop_rows:
        keep = np.ones(table.num_rows, dtype=bool)
        keep[np.asarray(drop_rows, dtype=np.int64)] = False
        table = table.filter(pa.array(keep))
    if table.num_rows == 0:
        return []
    if not partition_by:
        return [lake.write_table(raw_ref, table, attempt=attempt, seq=seq * 1000)]
    entries = []
    groups = table.group_by(list(partition_by), use_threads=False).aggregate([]).to_pylist()
    for i, group in enumerate(sorted(groups, key=lambda g: tuple(str(g[c]) for c in partition_by))):
        mask = None
        for column in partition_by:
            eq = pc.equal(table.column(column), group[column])
            mask = eq if mask is None else pc.and_(mask, eq)
        part = table.filter(mask).drop_columns(list(partition_by))
        subdir = "/".join(f"{c}={group[c]}" for c in partition_by)
        entries.append(lake.write_table(raw_ref, part, attempt=attempt, seq=seq * 1000 + i, subdir=subdir))
    return entries
