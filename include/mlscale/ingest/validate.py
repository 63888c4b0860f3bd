"""Validate a chunk of source records against the contract: typed valid rows, and rejects with reasons.

Reason codes are stable and documented in the README: ``missing_required``, ``type_error:<field>``,
``unknown_enum:<field>``, ``out_of_range:<field>``, ``future_timestamp``, ``late_beyond_window``
(plus ``malformed_record``, ``encoding_error``, ``control_bytes``, ``schema_mismatch``, ``unreadable_file``
from the readers). A record carries every reason that applies; its primary ``reason`` is the first in that order.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from mlscale.contracts import Column, Contract, Source
from mlscale.ingest import parse

TYPES = {"string": pa.string(), "timestamp": parse.UTC_TS, "decimal": pa.float64(), "integer": pa.int64(),
         "boolean": pa.bool_(), "date": pa.date32()}


@dataclass
class Validated:
    valid: pa.Table           # canonical columns (typed, PII still clear) + ``_ordinal``
    rejected: pa.Table        # ``_ordinal``, ``reason``, ``reasons`` + canonical columns as text
    unknown_columns: list[str]
    missing_columns: list[str]


def canonical_text(table: pa.Table, contract: Contract, source: Source) -> tuple[pa.Table, list[str], list[str]]:
    """Rename source columns to canonical names; absent columns become nulls; text is trimmed; '' and the source's
    ``null_values`` are null; values of a case-insensitive enum take the declared spelling."""
    by_canonical: dict[str, pa.Array] = {}
    unknown = []
    for name in table.column_names:
        target = source.rename.get(name, name)
        if target in contract.column_names and target not in by_canonical:
            by_canonical[target] = table.column(name)
        else:
            unknown.append(name)
    missing = [c for c in contract.column_names if c not in by_canonical]
    columns = {}
    nulls = pa.array(list(dict.fromkeys(("", *source.null_values))), pa.string())
    for col in contract.columns:
        values = by_canonical.get(col.name)
        if values is None:
            columns[col.name] = pa.nulls(table.num_rows, pa.string())
            continue
        values = pc.utf8_trim_whitespace(values.cast(pa.string()))
        values = pc.if_else(pc.is_in(values, value_set=nulls), pa.scalar(None, pa.string()), values)
        if col.enum and col.case == "insensitive":
            values = _declared_spelling(values, col.enum)
        columns[col.name] = values
    return pa.table(columns), unknown, missing


def _declared_spelling(values: pa.Array, enum: tuple[str, ...]) -> pa.Array:
    """Values equal to an enum value but for case, as the enum declares it; other values unchanged (the enum
    check rejects them)."""
    declared = pa.array(enum, pa.string())
    index = pc.index_in(pc.utf8_lower(values), value_set=pc.utf8_lower(pc.utf8_trim_whitespace(declared)))
    return pc.if_else(pc.is_valid(index), pc.take(declared, index), values)


def missing_required_columns(contract: Contract, source: Source, header: list[str]) -> list[str]:
    """Required canonical columns that a source file's header does not provide."""
    present = {source.rename.get(h, h) for h in header}
    return [c.name for c in contract.columns if c.required and c.name not in present]


def _typed(col: Column, text: pa.Array, source: Source) -> pa.Array:
    if col.type == "string":
        return text
    if col.type == "timestamp":
        return parse.parse_timestamp(text, fmt=source.timestamp_format, timezone=source.timezone)
    if col.type == "decimal":
        return parse.parse_decimal(text, decimal=source.decimal, thousands=source.thousands)
    if col.type == "integer":
        return parse.parse_integer(text)
    if col.type == "boolean":
        return parse.parse_boolean(text)
    return parse.parse_date(text)


def validate_chunk(text: pa.Table, ordinals: pa.Array, contract: Contract, source: Source,
                   day: dt.date) -> tuple[pa.Table, pa.Table]:
    """Split canonical text columns into (valid typed rows, rejected rows with reasons)."""
    n = text.num_rows
    checks: list[tuple[str, pa.Array]] = []
    missing = None
    for col in contract.columns:
        if col.required:
            isnull = pc.is_null(text.column(col.name))
            missing = isnull if missing is None else pc.or_(missing, isnull)
    if missing is not None:
        checks.append(("missing_required", missing))
    typed: dict[str, pa.Array] = {}
    for col in contract.columns:
        raw = text.column(col.name).combine_chunks()
        value = _typed(col, raw, source)
        typed[col.name] = value
        if col.type != "string":
            checks.append((f"type_error:{col.name}", pc.and_(pc.is_valid(raw), pc.is_null(value))))
    for col in contract.columns:
        if col.enum:
            bad = pc.invert(pc.is_in(typed[col.name], pa.array(col.enum, pa.string())))
            checks.append((f"unknown_enum:{col.name}", pc.and_(pc.is_valid(typed[col.name]), bad)))
    for col in contract.columns:
        if col.min is not None or col.max is not None:
            value = typed[col.name]
            low = pc.less(value, col.min) if col.min is not None else pa.nulls(n, pa.bool_())
            high = pc.greater(value, col.max) if col.max is not None else pa.nulls(n, pa.bool_())
            checks.append((f"out_of_range:{col.name}", pc.or_kleene(low, high)))
    if contract.event_time:
        ts = typed[contract.event_time]
        start = dt.datetime.combine(day, dt.time(), dt.UTC)
        if contract.max_future_hours is not None:
            limit = start + dt.timedelta(days=1, hours=float(contract.max_future_hours))
            checks.append(("future_timestamp", pc.greater(ts, pa.scalar(limit, parse.UTC_TS))))
        if contract.max_lateness_days is not None:
            floor = start - dt.timedelta(days=int(contract.max_lateness_days))
            checks.append(("late_beyond_window", pc.less(ts, pa.scalar(floor, parse.UTC_TS))))
    masks = [(code, mask.fill_null(False) if n else mask) for code, mask in checks]
    any_bad = pa.array([False] * n, pa.bool_())
    for _, mask in masks:
        any_bad = pc.or_(any_bad, mask)
    valid = pa.table({name: typed[name].cast(TYPES[contract.column(name).type]) for name in contract.column_names})
    valid = valid.append_column("_ordinal", ordinals)
    good = pc.invert(any_bad)
    rejected_rows = pc.indices_nonzero(any_bad)
    if len(rejected_rows) == 0:
        return valid.filter(good), _empty_rejects(contract)
    reasons = [pc.if_else(pc.take(mask, rejected_rows), code, pa.scalar(None, pa.string())) for code, mask in masks]
    joined = pc.binary_join_element_wise(*reasons, ";", null_handling="skip")
    primary = pc.coalesce(*reasons)
    rejected = text.take(rejected_rows)
    rejected = rejected.append_column("_ordinal", pc.take(ordinals, rejected_rows))
    rejected = rejected.append_column("reason", primary).append_column("reasons", joined)
    return valid.filter(good), rejected


def _empty_rejects(contract: Contract) -> pa.Table:
    fields = [pa.field(n, pa.string()) for n in contract.column_names]
    fields += [pa.field("_ordinal", pa.int64()), pa.field("reason", pa.string()), pa.field("reasons", pa.string())]
    return pa.schema(fields).empty_table()
