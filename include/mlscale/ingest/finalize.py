"""Turn staged rows into raw partition files: drop duplicates, stream one sub-partition's files."""

from __future__ import annotations

import io
from collections.abc import Mapping
from contextlib import ExitStack

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from mlscale.lake import FileEntry, Lake, PartitionRef
from mlscale.lake.lake import StreamingFile
from mlscale.tracing import annotate, traced

MAX_ROWS_PER_FILE = 2_000_000
KEY_COLUMN = "_key"


def stage_subdir(stage_key: str, stage_prefix: str) -> str:
    """``region=NL`` for ``<prefix>/region=NL/f00001-0000.parquet`` ('' when not sub-partitioned)."""
    rest = stage_key[len(stage_prefix):].strip("/")
    return rest.rpartition("/")[0]


def read_stage(lake: Lake, stage_key: str, columns: list[str] | None = None) -> pa.Table:
    return pq.read_table(io.BytesIO(lake.read_bytes(stage_key)), columns=columns)


@traced("ingest.write_partition", keywords=("subdir",))
def finalize_subpartition(lake: Lake, stage_keys: list[str], drops: Mapping[str, list[int]], raw_ref: PartitionRef,
                          *, subdir: str, attempt: str, seq: int,
                          max_rows_per_file: int = MAX_ROWS_PER_FILE) -> list[FileEntry]:
    """Write the surviving rows of ``stage_keys`` (all of one sub-partition) as few, large files.

    Rows keep the order of the staged files (file order, then record order). Files are streamed one
    staged table at a time, so memory is bounded by the staging chunk, not by the day's size.
    """
    entries: list[FileEntry] = []
    with ExitStack() as stack:
        out = None
        for stage_key in stage_keys:
            table = read_stage(lake, stage_key)
            if KEY_COLUMN in table.column_names:
                table = table.drop_columns([KEY_COLUMN])
            dropped = drops.get(stage_key)
            if dropped:
                keep = np.ones(table.num_rows, dtype=bool)
                keep[np.asarray(dropped, dtype=np.int64)] = False
                table = table.filter(pa.array(keep))
            if table.num_rows == 0:
                continue
            if out is None:
                out = stack.enter_context(lake.parquet_writer(raw_ref, table.schema, attempt=attempt,
                                                              seq=seq * 1000 + len(entries), subdir=subdir))
            out.write(table)
            if out.rows >= max_rows_per_file:
                stack.close()
                entries.append(_entry(out))
                out = None
        if out is not None:
            stack.close()
            entries.append(_entry(out))
    annotate(partition=subdir or None, rows=sum(e.rows for e in entries), bytes=sum(e.bytes for e in entries),
             files=len(entries))
    return entries


def _entry(out: StreamingFile) -> FileEntry:
    assert out.entry is not None, "a closed streaming file has its entry"
    return out.entry
