"""Vectorised parsing of string columns into typed columns; failures become nulls plus a mask."""

from __future__ import annotations

import re

import pyarrow as pa
import pyarrow.compute as pc

ISO = (r"^(?P<base>\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2})(?P<frac>\.\d{1,9})?"
       r"(?P<tz>Z|z|[+-]\d{2}:?\d{2})?$")
TRUE = ("true", "1", "yes", "y", "t")
FALSE = ("false", "0", "no", "n", "f")
UTC_TS = pa.timestamp("us", tz="UTC")


def _null_like(values: pa.Array, typ: pa.DataType) -> pa.Scalar:
    return pa.scalar(None, typ)


def _strict_strptime(values: pa.Array, fmt: str) -> pa.Array:
    """strptime that rejects out-of-range fields (``2026-02-30``) instead of rolling them over."""
    parsed = pc.strptime(values, format=fmt, unit="s", error_is_null=True)
    written = pc.if_else(pc.is_valid(parsed), pc.utf8_slice_codeunits(values, 8, 10), "0")
    day_written = pc.cast(written, pa.int64())  # every format here starts with %Y-%m-%d
    same = pc.equal(pc.day(parsed), day_written)
    return pc.cast(pc.if_else(same, parsed, pa.scalar(None, parsed.type)), pa.timestamp("us"))


ISO_WITH_OFFSET = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:?\d{2})$"


def _cast_with_offsets(values: pa.Array) -> pa.Array | None:
    """Arrow's own ISO-8601 parser when every non-null value carries ``Z`` or an offset (the common
    case); values that do not look like that become null. None when the parser still refuses."""
    try:
        return pc.cast(values, UTC_TS)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    looks_right = pc.match_substring_regex(values, ISO_WITH_OFFSET)
    if not pc.all(pc.or_(looks_right, pc.is_null(values))).as_py() and \
            pc.any(pc.match_substring_regex(values, r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d+)?$")).as_py():
        return None  # naive timestamps: they need the source's time zone (slow path)
    try:
        return pc.cast(pc.if_else(looks_right, values, pa.scalar(None, pa.string())), UTC_TS)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None


def parse_decimal(values: pa.Array, *, decimal: str = ".", thousands: str = "") -> pa.Array:
    """Numbers written with the source's separators (``1.234,56``); anything else is null."""
    d, t = re.escape(decimal), re.escape(thousands)
    exponent = r"(?:[eE][+-]?\d+)?" if decimal == "." else ""
    plain = rf"[+-]?\d+(?:{d}\d+)?{exponent}"
    pattern = rf"^(?:{plain}|[+-]?\d{{1,3}}(?:{t}\d{{3}})+(?:{d}\d+)?)$" if thousands else rf"^{plain}$"
    ok = pc.match_substring_regex(values, pattern).fill_null(False)
    text = pc.if_else(ok, values, "0")
    if thousands:
        text = pc.replace_substring(text, thousands, "")
    if decimal != ".":
        text = pc.replace_substring(text, decimal, ".")
    return pc.if_else(ok, pc.cast(text, pa.float64()), _null_like(values, pa.float64()))


def parse_integer(values: pa.Array) -> pa.Array:
    ok = pc.match_substring_regex(values, r"^[+-]?\d{1,18}$").fill_null(False)
    return pc.if_else(ok, pc.cast(pc.if_else(ok, values, "0"), pa.int64()), _null_like(values, pa.int64()))


def parse_boolean(values: pa.Array) -> pa.Array:
    lower = pc.utf8_lower(values)
    is_true = pc.is_in(lower, pa.array(TRUE))
    is_false = pc.is_in(lower, pa.array(FALSE))
    return pc.if_else(is_true, True, pc.if_else(is_false, False, _null_like(values, pa.bool_())))


def parse_date(values: pa.Array) -> pa.Array:
    ok = pc.match_substring_regex(values, r"^\d{4}-\d{2}-\d{2}$").fill_null(False)
    parsed = _strict_strptime(pc.if_else(ok, values, "1970-01-01"), "%Y-%m-%d")
    return pc.if_else(ok, pc.cast(parsed, pa.date32()), _null_like(values, pa.date32()))


def parse_timestamp(values: pa.Array, *, fmt: str = "iso8601", timezone: str = "UTC") -> pa.Array:
    """Timestamps in UTC (microseconds). ISO-8601 with ``Z``/offsets is converted; naive values are
    read in the source's ``timezone``; ``epoch_ms``/``epoch_s`` are integers since 1970 UTC."""
    if fmt in ("epoch_ms", "epoch_s"):
        ok = pc.match_substring_regex(values, r"^[+-]?\d{1,15}$").fill_null(False)
        ints = pc.cast(pc.if_else(ok, values, "0"), pa.int64())
        scale = 1000 if fmt == "epoch_ms" else 1_000_000
        micros = pc.multiply_checked(ints, scale)
        return pc.if_else(ok, pc.cast(micros, pa.timestamp("us")).cast(UTC_TS), _null_like(values, UTC_TS))
    fast = _cast_with_offsets(values)
    if fast is not None:
        return fast
    parts = pc.extract_regex(values, ISO)
    base = pc.replace_substring(parts.field("base"), " ", "T")
    naive = _strict_strptime(base, "%Y-%m-%dT%H:%M:%S")
    frac = pc.utf8_slice_codeunits(parts.field("frac"), 1, 7)
    frac_us = pc.cast(pc.if_else(pc.equal(frac, ""), "0", pc.utf8_rpad(frac, 6, "0")), pa.int64())
    tz = pc.replace_substring(parts.field("tz"), ":", "")
    has_offset = pc.not_equal(tz, "")
    is_zulu = pc.is_in(tz, pa.array(["Z", "z"]))
    numeric = pc.if_else(pc.or_(is_zulu, pc.invert(has_offset)), "+0000", tz)
    sign = pc.if_else(pc.starts_with(numeric, "-"), -1, 1)
    hours = pc.cast(pc.utf8_slice_codeunits(numeric, 1, 3), pa.int64())
    minutes = pc.cast(pc.utf8_slice_codeunits(numeric, 3, 5), pa.int64())
    offset_us = pc.multiply(sign, pc.multiply(pc.add(pc.multiply(hours, 60), minutes), 60_000_000))
    local_us = pc.add(pc.cast(naive, pa.int64()), frac_us)
    explicit = pc.cast(pc.subtract(local_us, offset_us), pa.timestamp("us")).cast(UTC_TS)
    if timezone.upper() == "UTC":
        implicit = pc.cast(pc.cast(local_us, pa.timestamp("us")), UTC_TS)
    else:
        implicit = pc.assume_timezone(pc.cast(local_us, pa.timestamp("us")), timezone=timezone,
                                      ambiguous="earliest", nonexistent="earliest").cast(UTC_TS)
    return pc.if_else(has_offset, explicit, implicit)
