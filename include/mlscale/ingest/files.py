"""One landing file → validated, pseudonymised, staged rows; rejects → quarantine files. Runs on Dask workers."""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import posixpath
import re
from collections import Counter
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from mlscale.contracts import Contract, Source
from mlscale.ingest import quarantine
from mlscale.ingest.finalize import KEY_COLUMN
from mlscale.ingest.pseudonymise import redact_text
from mlscale.ingest.readers import Chunk, NeedsRobustRead, UnreadableFile, read_csv, read_jsonl
from mlscale.ingest.validate import canonical_text, missing_required_columns, validate_chunk
from mlscale.lake import FileEntry, Lake, PartitionRef
from mlscale.tracing import annotate, span, traced

logger = logging.getLogger(__name__)
KEY_SEPARATOR = "\x1f"
JSON_NAME = re.compile(r"\.(jsonl|ndjson|json)(\.gz)?$", re.IGNORECASE)  # a file of no source: has it a header?


@dataclass
class FileOutcome:
    """What one file produced; travels from the worker to the driver (counts, paths, keys only)."""

    file: str
    source: str
    rank: int
    bytes_in: int
    rows_in: int = 0
    valid: int = 0
    quarantined: Counter = field(default_factory=Counter)
    unknown_columns: set[str] = field(default_factory=set)
    missing_columns: list[str] = field(default_factory=list)
    staged: list[str] = field(default_factory=list)         # keys of staged parquet files (with the key column)
    quarantine_files: list[FileEntry] = field(default_factory=list)
    keys: pa.Table | None = None                           # dry runs only: key, rank, ordinal, stage, row


def output_schema(contract: Contract) -> pa.Schema:
    from mlscale.ingest.validate import TYPES

    fields = []
    for col in contract.columns:
        if col.pii:
            treatment = contract.pii[col.pii]
            if treatment.output:
                fields.append(pa.field(treatment.output, pa.string()))
        else:
            fields.append(pa.field(col.name, TYPES[col.type]))
    return pa.schema(fields + [pa.field("source", pa.string()), pa.field("source_file", pa.string()),
                               pa.field("source_record", pa.int64()), pa.field("ingested_run", pa.string())])


def key_strings(table: pa.Table, key: tuple[str, ...]) -> pa.Array:
    cols = [pc.cast(table.column(k), pa.string()) for k in key]
    return cols[0] if len(cols) == 1 else pc.binary_join_element_wise(*cols, KEY_SEPARATOR)


@traced("ingest.read_file")
def process_file(lake: Lake, contract: Contract, file_key: str, rank: int, day: dt.date, *, run_id: str,
                 attempt: str, pii_key: bytes, stage_prefix: str, quarantine_ref: PartitionRef,
                 write: bool) -> FileOutcome:
    """Read, validate and pseudonymise one landing file; stage valid rows and write its quarantine rows.

    Every record of the file is accounted for: ``rows_in == valid + sum(quarantined)``. Traced as an
    ``ingest.read_file`` span with one ``ingest.validate`` span per chunk.
    """
    name = posixpath.basename(file_key)
    size = lake.fs.get_file_info(lake.path(file_key)).size or 0
    source = contract.source_for(name)
    annotate(dataset=contract.dataset, file=file_key, bytes=size, source=source.name if source else None)
    outcome = FileOutcome(file=file_key, source=source.name if source else "unknown", rank=rank, bytes_in=size)
    q_tables: list[pa.Table] = []
    key_tables: list[pa.Table] = []
    common = {"source": outcome.source, "source_file": file_key, "run_id": run_id}
    whole: tuple[str, int] | None = None  # a file rejected as a whole: (reason, records it holds)
    if source is None:
        whole = ("unreadable_file", _records_in(lake, file_key, header=not JSON_NAME.search(name)))
        q_tables.append(quarantine.whole_file("unreadable_file", "no source in the contract matches this file name",
                                              records=whole[1], **common))
    else:
        for robust in (False, True):
            try:
                for chunk in _chunks(lake, contract, source, file_key, robust=robust):
                    _process_chunk(chunk, contract, source, day, outcome, q_tables, key_tables, lake, pii_key,
                                   stage_prefix, run_id, write, common)
                break
            except NeedsRobustRead as exc:
                logger.warning("%s: fast CSV parser gave up (%s); re-reading record by record", file_key, exc)
                _discard(lake, outcome, q_tables, key_tables)
            except UnreadableFile as exc:
                _discard(lake, outcome, q_tables, key_tables)
                whole = (exc.reason, _records_in(lake, file_key, header=source.format == "csv") if exc.text else 1)
                q_tables.append(quarantine.whole_file(exc.reason, exc.detail, records=whole[1], **common))
                break
    if whole is not None:  # its one quarantine row stands for every record it holds
        outcome.rows_in = whole[1]
        outcome.quarantined[whole[0]] += whole[1]
    else:
        for table in q_tables:
            outcome.quarantined.update(quarantine.reason_counts(table))
        q_tables = _located(lake, file_key, source, q_tables)
    if write and q_tables:
        merged = pa.concat_tables(q_tables)
        if merged.num_rows:
            outcome.quarantine_files.append(lake.write_table(quarantine_ref, merged, attempt=attempt,
                                                             seq=rank))
    outcome.keys = pa.concat_tables(key_tables) if key_tables else None
    annotate(rows=outcome.rows_in, valid=outcome.valid, quarantined=sum(outcome.quarantined.values()),
             staged_files=len(outcome.staged))
    logger.info("%s (%s): %d records in, %d valid, quarantined %s, unknown columns %s", file_key, outcome.source,
                outcome.rows_in, outcome.valid, dict(outcome.quarantined), sorted(outcome.unknown_columns) or "none")
    return outcome


def _records_in(lake: Lake, file_key: str, *, header: bool) -> int:
    """The records a file rejected as a whole holds: its non-blank lines (less a CSV header), at least 1 (an empty
    or unreadable file still counts once in the day's volume and quarantine rate)."""
    from mlscale.ingest.offsets import count_lines

    try:
        lines = count_lines(lake.fs, lake.path(file_key))
    except (OSError, EOFError, pa.ArrowInvalid) as exc:  # e.g. a broken gzip stream
        logger.warning("%s: its lines cannot be counted (%s); it counts as one record", file_key, exc)
        return 1
    return max(1, lines - (1 if header and lines else 0))


def _located(lake: Lake, file_key: str, source: Source | None, q_tables: list[pa.Table]) -> list[pa.Table]:
    """The quarantine rows with the byte offset of each record in the landing file (one pass, only when some
    record was rejected)."""
    from mlscale.ingest.offsets import record_offsets

    records = {r for t in q_tables for r in t.column("record").to_pylist() if r is not None}
    if not records or source is None:
        return q_tables
    offsets = record_offsets(lake.fs, lake.path(file_key), records,
                             csv_delimiter=source.delimiter if source.format == "csv" else None)
    return [quarantine.with_offsets(t, offsets) for t in q_tables]


def _discard(lake: Lake, outcome: FileOutcome, q_tables: list[pa.Table], key_tables: list[pa.Table]) -> None:
    """Forget a partial read of a file: its staged files, rejects and counts."""
    for staged in outcome.staged:
        lake.delete(staged)
    outcome.staged, outcome.valid, outcome.rows_in = [], 0, 0
    outcome.unknown_columns, outcome.missing_columns = set(), []
    q_tables.clear()
    key_tables.clear()


def _chunks(lake: Lake, contract: Contract, source: Source, file_key: str, robust: bool):
    path = lake.path(file_key)
    if source.format == "csv":
        yield from read_csv(lake.fs, path, delimiter=source.delimiter, encoding=source.encoding, robust=robust)
    else:
        known = set(contract.column_names) | set(source.rename)
        yield from read_jsonl(lake.fs, path, known_fields=known, encoding=source.encoding)


def _process_chunk(chunk: Chunk, contract: Contract, source: Source, day: dt.date, outcome: FileOutcome,
                   q_tables: list[pa.Table], key_tables: list[pa.Table], lake: Lake, pii_key: bytes,
                   stage_prefix: str, run_id: str, write: bool, common: dict) -> None:
    outcome.rows_in += chunk.table.num_rows + len(chunk.rejected)
    outcome.unknown_columns |= chunk.unknown_columns
    chunk = _without_control_bytes(chunk)
    if chunk.rejected:
        q_tables.append(quarantine.from_rejected(chunk.rejected, key=pii_key, **common))
    if chunk.table.num_rows == 0:
        return
    if source.format == "csv":
        missing = missing_required_columns(contract, source, chunk.table.column_names)
        if missing:
            q_tables.append(_schema_mismatch(chunk, missing, pii_key, common))
            return
    with span("ingest.validate", rows=chunk.table.num_rows) as validate_span:
        text, unknown, missing = canonical_text(chunk.table, contract, source)
        outcome.unknown_columns |= set(unknown)
        outcome.missing_columns = sorted(set(outcome.missing_columns) | set(missing))
        valid, rejected = validate_chunk(text, chunk.ordinals, contract, source, day)
        q_tables.append(quarantine.from_validation(rejected, contract, key=pii_key, **common))
        annotate(validate_span, valid=valid.num_rows, rejected=rejected.num_rows)
    if valid.num_rows == 0:
        return
    rows = _output_rows(valid, contract, pii_key, source.name, outcome.file, run_id)
    rows = rows.append_column(KEY_COLUMN, key_strings(valid, contract.key))
    for subdir, part in split_by(rows, contract.partition_by):
        stage_key = f"{stage_prefix}/{subdir}/f{outcome.rank:05d}-{len(outcome.staged):04d}.parquet".replace("//", "/")
        outcome.staged.append(stage_key)
        outcome.valid += part.num_rows
        if write:  # the staged file keeps the key column: dedupe reads it back bucket by bucket
            sink = io.BytesIO()
            pq.write_table(part, sink, compression="lz4")  # staging: fast, read back once
            lake.write_bytes(stage_key, sink.getvalue())
        else:      # a dry run writes nothing: its keys travel back to the driver instead
            key_tables.append(pa.table({
                "key": part.column(KEY_COLUMN),
                "rank": pa.array([outcome.rank] * part.num_rows, pa.int32()),
                "ordinal": part.column("source_record"),
                "stage": pa.array([stage_key] * part.num_rows, pa.string()).dictionary_encode(),
                "row": pa.array(range(part.num_rows), pa.int64()),
            }))


def split_by(table: pa.Table, columns: tuple[str, ...]) -> list[tuple[str, pa.Table]]:
    """Split rows by the values of ``columns`` into (Hive sub-directory, rows without those columns)."""
    if not columns:
        return [("", table)]
    groups = table.group_by(list(columns), use_threads=False).aggregate([]).to_pylist()
    parts = []
    for group in sorted(groups, key=lambda g: tuple(str(g[c]) for c in columns)):
        mask = None
        for column in columns:
            eq = pc.equal(table.column(column), group[column])
            mask = eq if mask is None else pc.and_(mask, eq)
        subdir = "/".join(f"{c}={group[c]}" for c in columns)
        parts.append((subdir, table.filter(mask).drop_columns(list(columns))))
    return parts


def _without_control_bytes(chunk: Chunk) -> Chunk:
    """Records with a control byte (NUL, escape...) in any field move to the chunk's rejects (``control_bytes``,
    naming the fields); their neighbours go on."""
    from functools import reduce

    from mlscale.ingest.readers import CONTROL_PATTERN, RejectedRecord

    table = chunk.table
    if table.num_rows == 0 or not table.column_names or not chunk.may_hold_control_bytes:
        return chunk
    masks = {name: pc.match_substring_regex(table.column(name), CONTROL_PATTERN).fill_null(False)
             for name in table.column_names}
    bad = reduce(pc.or_, masks.values())
    if not pc.any(bad).as_py():
        return chunk
    rows = pc.indices_nonzero(bad).to_pylist()
    flagged = {name: mask.to_pylist() for name, mask in masks.items() if pc.any(mask).as_py()}
    for i in rows:
        fields = [name for name, mask in flagged.items() if mask[i]]
        values = {name: table.column(name)[i].as_py() for name in table.column_names}
        chunk.rejected.append(RejectedRecord("control_bytes", f"control bytes in {', '.join(fields)}",
                                             json.dumps(values, sort_keys=True)[:2000], chunk.ordinals[i].as_py()))
    keep = pc.invert(bad)
    return Chunk(table.filter(keep), chunk.ordinals.filter(keep), chunk.rejected, chunk.unknown_columns)


def _schema_mismatch(chunk: Chunk, missing: list[str], pii_key: bytes, common: dict) -> pa.Table:
    from mlscale.ingest.readers import RejectedRecord

    rows = chunk.table.to_pylist()
    records = [RejectedRecord("schema_mismatch", f"file lacks required columns {missing}",
                              json.dumps(row, sort_keys=True), o)
               for row, o in zip(rows, chunk.ordinals.to_pylist(), strict=True)]
    return quarantine.from_rejected(records, key=pii_key, **common)


def _output_rows(valid: pa.Table, contract: Contract, pii_key: bytes, source: str, file_key: str,
                 run_id: str) -> pa.Table:
    tokenised = quarantine.tokenise_text_columns(valid.drop_columns(["_ordinal"]), contract, pii_key)
    n = valid.num_rows
    tokenised = tokenised.append_column("source", pa.array([source] * n, pa.string()))
    tokenised = tokenised.append_column("source_file", pa.array([file_key] * n, pa.string()))
    tokenised = tokenised.append_column("source_record", valid.column("_ordinal"))
    tokenised = tokenised.append_column("ingested_run", pa.array([run_id] * n, pa.string()))
    return tokenised.select(output_schema(contract).names).cast(output_schema(contract))


__all__ = ["FileOutcome", "process_file", "output_schema", "key_strings", "redact_text"]
