"""Quarantine rows: the rejected record (PII tokenised), where it came from, and why."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.compute as pc

from mlscale.contracts import Contract
from mlscale.ingest.pseudonymise import hmac_tokens, ip_prefixes, redact_text
from mlscale.ingest.readers import RejectedRecord

QUARANTINE_SCHEMA = pa.schema([
    ("source", pa.string()),
    ("source_file", pa.string()),
    ("record", pa.int64()),
    ("byte_offset", pa.int64()),   # where the record starts in the (decompressed) landing file
    ("reason", pa.string()),
    ("reasons", pa.string()),
    ("detail", pa.string()),
    ("payload", pa.string()),
    ("run_id", pa.string()),
])


def tokenise_text_columns(text: pa.Table, contract: Contract, key: bytes) -> pa.Table:
    """Replace each PII column of a text table by its token (or prefix); dropped PII disappears."""
    out = text
    for col in contract.columns:
        if not col.pii or col.name not in out.column_names:
            continue
        treatment = contract.pii[col.pii]
        i = out.column_names.index(col.name)
        values = out.column(col.name).combine_chunks()
        if treatment.treatment == "drop":
            out = out.remove_column(i)
            continue
        tokens = ip_prefixes(values) if treatment.treatment == "ip_prefix" else hmac_tokens(values, key, col.pii)
        out = out.set_column(i, treatment.output or col.name, tokens)
    return out


def from_validation(rejected: pa.Table, contract: Contract, *, source: str, source_file: str, run_id: str,
                    key: bytes) -> pa.Table:
    """Quarantine rows for records that parsed but failed validation."""
    if rejected.num_rows == 0:
        return QUARANTINE_SCHEMA.empty_table()
    fields = [n for n in contract.column_names if n in rejected.column_names]
    tokenised = tokenise_text_columns(rejected.select(fields), contract, key)
    payload = [json.dumps(row, sort_keys=True) for row in tokenised.to_pylist()]
    n = rejected.num_rows
    return pa.table({
        "source": pa.array([source] * n, pa.string()),
        "source_file": pa.array([source_file] * n, pa.string()),
        "record": rejected.column("_ordinal"),
        "byte_offset": pa.nulls(n, pa.int64()),
        "reason": rejected.column("reason"),
        "reasons": rejected.column("reasons"),
        "detail": pa.nulls(n, pa.string()),
        "payload": pa.array(payload, pa.string()),
        "run_id": pa.array([run_id] * n, pa.string()),
    }, schema=QUARANTINE_SCHEMA)


def from_rejected(records: list[RejectedRecord], *, source: str, source_file: str, run_id: str,
                  key: bytes) -> pa.Table:
    """Quarantine rows for records that could not be parsed; card numbers, e-mails and phones in the
    raw text are replaced by tokens before anything is written."""
    return pa.table({
        "source": [source] * len(records),
        "source_file": [source_file] * len(records),
        "record": pa.array([r.record for r in records], pa.int64()),
        "byte_offset": pa.nulls(len(records), pa.int64()),
        "reason": [r.reason for r in records],
        "reasons": [r.reason for r in records],
        "detail": [r.detail for r in records],
        "payload": [redact_text(r.text, key) for r in records],
        "run_id": [run_id] * len(records),
    }, schema=QUARANTINE_SCHEMA)


def whole_file(reason: str, detail: str, *, source: str, source_file: str, run_id: str, records: int) -> pa.Table:
    """One row standing for a file that could not be read at all."""
    return pa.table({
        "source": [source], "source_file": [source_file], "record": pa.array([None], pa.int64()),
        "byte_offset": pa.array([None], pa.int64()),
        "reason": [reason], "reasons": [reason],
        "detail": [f"{detail} ({records} record{'' if records == 1 else 's'})"],
        "payload": pa.array([None], pa.string()), "run_id": [run_id],
    }, schema=QUARANTINE_SCHEMA)


def with_offsets(table: pa.Table, offsets: dict[int, int]) -> pa.Table:
    """``table`` with ``byte_offset`` filled from ``offsets`` (record number -> offset)."""
    records = table.column("record").to_pylist()
    filled = pa.array([offsets.get(r) if r is not None else None for r in records], pa.int64())
    return table.set_column(table.schema.get_field_index("byte_offset"), "byte_offset", filled)


def reason_counts(table: pa.Table) -> dict[str, int]:
    if table.num_rows == 0:
        return {}
    counts = pc.value_counts(table.column("reason").combine_chunks())
    return {c["values"].as_py(): c["counts"].as_py() for c in counts}
