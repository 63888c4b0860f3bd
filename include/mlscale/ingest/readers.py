"""Read a landing file into chunks of string columns, separating records that cannot be parsed.

Readers never raise for a bad record: it comes back as a :class:`RejectedRecord` with a reason code.
A file that cannot be read at all raises :class:`UnreadableFile` (reason ``unreadable_file`` or
``schema_mismatch``) and the caller quarantines it whole. Memory is bounded by the chunk size.

A source in another encoding than UTF-8 (``encoding`` of the contract's source, an ASCII-compatible codec) is
decoded block by block as it is read; a byte that is invalid in it rejects its record as ``encoding_error``,
as an invalid UTF-8 byte does.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import chain
from typing import Any

import msgspec
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

GZIP_MAGIC = b"\x1f\x8b"
CONTROL_BYTES = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f]")
JSON_CONTROL = re.compile(rb"\\u00[01]|\\[bf]", re.IGNORECASE)  # escapes that decode to control characters
CONTROL_PATTERN = "[\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f]"  # the same bytes, for Arrow's regex kernels
BINARY_SHARE = 0.01  # a file whose first MiB is more than 1 % control bytes is not text
BINARY_MAGIC = {b"PK\x03\x04": "a ZIP archive", b"%PDF": "a PDF document", b"PAR1": "a Parquet file",
                b"\x89PNG": "a PNG image", b"\x7fELF": "an executable", b"BZh": "a bzip2 archive",
                b"\xfd7zXZ": "an xz archive", b"7z\xbc\xaf": "a 7z archive", b"\xff\xfe": "UTF-16 text",
                b"\xfe\xff": "UTF-16 text", b"\xd0\xcf\x11\xe0": "an Office document"}
FALLBACK_CHUNK_ROWS = 100_000
MAX_FIELD_BYTES = 256 << 20
BOM = b"\xef\xbb\xbf"
CSV_BLOCK_BYTES = 16 << 20
JSON_CHUNK_LINES = 100_000
JSON_BLOCK_LINES = 256
JSON_READ_BYTES = 32 << 20
UTF8 = "utf-8"


class UnreadableFile(Exception):
    """The file as a whole cannot be ingested."""

    def __init__(self, reason: str, detail: str, *, text: bool = True) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.text = text  # False: not text at all (its records cannot be counted)


@dataclass(frozen=True)
class RejectedRecord:
    reason: str
    detail: str
    text: str
    record: int | None = None  # record ordinal (CSV) or line number (JSON lines), 1-based


@dataclass
class Chunk:
    """Parsed records as string columns named as in the source, with their ordinals."""

    table: pa.Table
    ordinals: pa.Array
    rejected: list[RejectedRecord] = field(default_factory=list)
    unknown_columns: set[str] = field(default_factory=set)
    may_hold_control_bytes: bool = True  # False when the reader saw none in the chunk's bytes (skips the check)


def open_stream(fs, path: str) -> pa.NativeFile:
    """Open a file, transparently decompressing gzip (detected by its magic bytes, not its name)."""
    with fs.open_input_stream(path, compression=None) as probe:
        magic = probe.read(2)
    raw = fs.open_input_stream(path, compression=None)
    return pa.CompressedInputStream(raw, "gzip") if magic == GZIP_MAGIC else raw


def _as_invalid_utf8(exc: UnicodeError) -> tuple[str, int]:
    """Codec error handler: each byte invalid in the source's encoding becomes byte 0xFF, which is never valid
    UTF-8, so the record holding it fails UTF-8 decoding downstream (``encoding_error``)."""
    if not isinstance(exc, UnicodeDecodeError):
        raise exc
    return "\udcff" * (exc.end - exc.start), exc.end


codecs.register_error("mlscale.invalid_as_ff", _as_invalid_utf8)


def decoded_blocks(stream, size: int, encoding: str = UTF8) -> Iterator[bytes]:
    """The stream's bytes in non-empty blocks of about ``size`` bytes read, as UTF-8 (transcoded from ``encoding``
    block by block, so memory stays at a block; bytes invalid in ``encoding`` come out as invalid UTF-8)."""
    decoder = None if encoding == UTF8 else codecs.getincrementaldecoder(encoding)(errors="mlscale.invalid_as_ff")
    while True:
        raw = stream.read(size)
        data = raw if decoder is None else \
            decoder.decode(raw, final=not raw).encode(UTF8, "surrogateescape")
        if data:
            yield data
        if not raw:
            return


def invalid_bytes(encoding: str) -> str:
    """The detail of an ``encoding_error`` reject."""
    return "invalid UTF-8 bytes" if encoding == UTF8 else f"bytes invalid in {encoding}"


def _strings_checked(column: pa.Array) -> tuple[pa.Array, pa.Array]:
    """View a binary column as UTF-8 strings; return (strings, mask of rows with invalid UTF-8)."""
    as_text = column.view(pa.string()) if pa.types.is_binary(column.type) else column
    non_ascii = pc.invert(pc.string_is_ascii(as_text)).fill_null(False)
    bad = [False] * len(column)
    any_bad = False
    if pc.any(non_ascii).as_py():
        for i in pc.indices_nonzero(non_ascii).to_pylist():
            try:
                column[i].as_py().decode("utf-8")
            except UnicodeDecodeError:
                bad[i] = True
                any_bad = True
    return as_text, pa.array(bad) if any_bad else pa.array(bad, pa.bool_())


def not_text(head: bytes) -> str | None:
    """Why a file whose first bytes are ``head`` is not text (a known magic number, or a high share of control
    bytes), else None: a stray control byte in a record is that record's problem, not the file's."""
    for magic, what in BINARY_MAGIC.items():
        if head.startswith(magic):
            return f"binary content ({what})"
    control = len(CONTROL_BYTES.findall(head))
    if head and control > BINARY_SHARE * len(head):
        return f"binary content ({control:,} control bytes in the first {len(head):,})"
    return None


class NeedsRobustRead(Exception):
    """The fast parser gave up part-way; the caller discards what it got and reads with ``robust=True``."""


def read_csv(fs, path: str, *, delimiter: str, encoding: str = UTF8, robust: bool = False) -> Iterator[Chunk]:
    """CSV records as string columns (decoded from ``encoding``). The fast path uses Arrow's parser; ``robust``
    reads record by record with Python's csv module (used when the fast path raises :class:`NeedsRobustRead`)."""
    with open_stream(fs, path) as stream:
        head = stream.read(1 << 20)
    if not head.strip(BOM + b" \r\n\t"):
        raise UnreadableFile("unreadable_file", "empty file")
    binary = not_text(head)
    if binary:
        raise UnreadableFile("unreadable_file", f"{binary}, not delimited text", text=False)
    first_line = head.removeprefix(BOM).splitlines()[0] if head.removeprefix(BOM) else b""
    try:
        header = next(csv.reader([first_line.decode(encoding)], delimiter=delimiter))
    except (UnicodeDecodeError, StopIteration, csv.Error) as exc:
        what = "UTF-8" if encoding == UTF8 else encoding
        raise UnreadableFile("unreadable_file", f"header is not {delimiter!r}-delimited {what} text: {exc}") from exc
    header = [h.strip() for h in header]
    if len(header) < 2 or len(set(header)) != len(header) or not all(header):
        raise UnreadableFile("schema_mismatch", f"header has empty, duplicate or too few columns: {header[:20]}")

    if robust:
        yield from _read_csv_slowly(fs, path, delimiter=delimiter, header=header, encoding=encoding)
        return
    ordinal = 0  # records before the block
    try:  # the fast path: Arrow's parser, which gives up on some broken rows (bad bytes in a short row)
        for block in _blocks(fs, path, encoding):
            table, invalid = _parse_csv_block(block, header, delimiter)
            ordinals = _valid_ordinals(ordinal, table.num_rows, [number for number, _ in invalid])
            chunk = _chunk_from_binary(table, ordinals, invalid_bytes(encoding))
            chunk.may_hold_control_bytes = CONTROL_BYTES.search(block) is not None
            chunk.rejected = [RejectedRecord("malformed_record", detail, text, ordinal + number)
                              for number, (detail, text) in invalid] + chunk.rejected
            ordinal += table.num_rows + len(invalid)
            yield chunk
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, UnicodeDecodeError) as exc:
        raise NeedsRobustRead(str(exc)) from exc


def _parse_csv_block(block: bytes, header: list[str], delimiter: str) -> tuple[pa.Table, list[tuple[int, Any]]]:
    """A block's records as binary columns, and its rows with a wrong field count as (record number in the
    block, (detail, text)). Arrow numbers invalid rows only when parsing on one thread: a block that has any is
    parsed again that way (rare), so every rejected record keeps its number."""
    invalid: list[tuple[int | None, Any]] = []

    def on_invalid(row: pcsv.InvalidRow) -> str:
        invalid.append((row.number, (f"expected {row.expected_columns} fields, found {row.actual_columns}",
                                     row.text[:2000])))
        return "skip"

    for use_threads in (True, False):
        invalid.clear()
        # header given explicitly: each block is parsed on its own (see _blocks)
        table = pcsv.read_csv(
            pa.py_buffer(block), read_options=pcsv.ReadOptions(column_names=header, use_threads=use_threads),
            parse_options=pcsv.ParseOptions(delimiter=delimiter, newlines_in_values=True,
                                            invalid_row_handler=on_invalid),
            convert_options=pcsv.ConvertOptions(column_types={h: pa.binary() for h in header},
                                                strings_can_be_null=False))
        if all(number is not None for number, _ in invalid):
            return table, [(int(number), what) for number, what in invalid if number is not None]
    raise NeedsRobustRead("the parser did not number its invalid rows")


def _valid_ordinals(before: int, valid: int, invalid: list[int]) -> pa.Array:
    """The record ordinals of a block's valid rows: ``1 .. valid + len(invalid)`` after ``before``, less the
    invalid rows' numbers."""
    if not invalid:
        return pa.array(range(before + 1, before + valid + 1), pa.int64())
    skipped = set(invalid)
    return pa.array([before + n for n in range(1, valid + len(invalid) + 1) if n not in skipped], pa.int64())


def _blocks(fs, path: str, encoding: str = UTF8) -> Iterator[bytes]:
    """The file after its header, as UTF-8, in blocks of about ``CSV_BLOCK_BYTES`` cut at line ends.

    Arrow's streaming CSV reader reads ahead the whole file; reading block by block keeps memory at one
    block. A block cut inside a quoted field fails to parse, and the caller re-reads the file record by
    record (quoted line breaks are rare), so a cut never changes the records.
    """
    with open_stream(fs, path) as stream:
        carry = b""
        first = True
        for data in chain(decoded_blocks(stream, CSV_BLOCK_BYTES, encoding), [b""]):  # b"": the end
            buffer = carry + data
            if data:
                cut = buffer.rfind(b"\n")
                if cut < 0:
                    carry = buffer
                    continue
                block, carry = buffer[:cut + 1], buffer[cut + 1:]
            else:
                block, carry = buffer, b""
            if first:
                block = block.removeprefix(BOM)
                block = block[block.find(b"\n") + 1:] if b"\n" in block else b""
                first = False
            if block.strip():
                yield block


def _read_csv_slowly(fs, path: str, *, delimiter: str, header: list[str], encoding: str = UTF8) -> Iterator[Chunk]:
    """Python's csv module record by record: slower, but isolates any broken record (wrong field count,
    bytes invalid in the encoding) with its record number."""
    csv.field_size_limit(MAX_FIELD_BYTES)
    with open_stream(fs, path) as stream:
        text = io.TextIOWrapper(stream, encoding="utf-8-sig" if encoding == UTF8 else encoding,
                                errors="surrogateescape", newline="")
        reader = csv.reader(text, delimiter=delimiter)
        try:
            next(reader)
        except StopIteration:
            return
        rows: list[list[str]] = []
        ordinals: list[int] = []
        rejected: list[RejectedRecord] = []
        record = 0
        try:
            for row in reader:
                if not row:
                    continue
                record += 1
                joined = delimiter.join(row)
                if len(row) != len(header):
                    rejected.append(RejectedRecord("malformed_record",
                                                   f"expected {len(header)} fields, found {len(row)}",
                                                   joined.encode("utf-8", "replace").decode()[:2000], record))
                elif _has_surrogates(joined):
                    rejected.append(RejectedRecord("encoding_error", invalid_bytes(encoding),
                                                   joined.encode("utf-8", "replace").decode()[:2000], record))
                else:
                    rows.append(row)
                    ordinals.append(record)
                if len(rows) + len(rejected) >= FALLBACK_CHUNK_ROWS:
                    yield _chunk_from_rows(header, rows, ordinals, rejected)
                    rows, ordinals, rejected = [], [], []
        except csv.Error as exc:
            raise UnreadableFile("unreadable_file", f"not parseable as CSV near line {reader.line_num}: {exc}") from exc
        yield _chunk_from_rows(header, rows, ordinals, rejected)


def _has_surrogates(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _chunk_from_rows(header: list[str], rows: list[list[str]], ordinals: list[int],
                     rejected: list[RejectedRecord]) -> Chunk:
    columns = {name: pa.array([r[i] for r in rows], pa.string()) for i, name in enumerate(header)}
    return Chunk(pa.table(columns), pa.array(ordinals, pa.int64()), rejected)


def _chunk_from_binary(table: pa.Table, ordinals: pa.Array, invalid: str) -> Chunk:
    columns, bad = [], None
    for name in table.column_names:
        text, col_bad = _strings_checked(table.column(name).combine_chunks())
        columns.append(text)
        bad = col_bad if bad is None else pc.or_(bad, col_bad)
    out = pa.table(dict(zip(table.column_names, columns, strict=True)))
    if bad is None or not pc.any(bad).as_py():
        return Chunk(out, ordinals)
    rejected = [
        RejectedRecord("encoding_error", invalid, _safe_text(table, i), ordinals[i].as_py())
        for i in pc.indices_nonzero(bad).to_pylist()
    ]
    keep = pc.invert(bad)
    return Chunk(out.filter(keep), ordinals.filter(keep), rejected)


def _safe_text(table: pa.Table, row: int) -> str:
    values = [table.column(n)[row].as_py() for n in table.column_names]
    return ",".join(v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in values)[:2000]


def read_jsonl(fs, path: str, *, known_fields: set[str], encoding: str = UTF8) -> Iterator[Chunk]:
    """JSON lines (decoded from ``encoding``); each line must hold one object. ``known_fields`` are the columns to
    keep."""
    line_no = 0
    saw_content = False
    invalid = invalid_bytes(encoding)
    with open_stream(fs, path) as stream:
        pending = b""
        for block in chain(decoded_blocks(stream, JSON_READ_BYTES, encoding), [b""]):  # b"": the end
            data = pending + block
            if not block:
                lines, pending = data.split(b"\n"), b""
            else:
                lines = data.split(b"\n")
                pending = lines.pop()
                if len(lines) < JSON_CHUNK_LINES and block:
                    pending = b"\n".join([*lines, pending])
                    continue
            for start in range(0, len(lines), JSON_CHUNK_LINES):
                part = lines[start:start + JSON_CHUNK_LINES]
                if line_no == 0 and part:
                    part[0] = part[0].removeprefix(BOM)
                chunk = _json_chunk(part, line_no, known_fields, invalid)
                chunk.may_hold_control_bytes = any(JSON_CONTROL.search(line) for line in part)
                saw_content = saw_content or chunk.table.num_rows > 0 or bool(chunk.rejected)
                line_no += len(part)
                yield chunk
            if not block:
                break
    if not saw_content:
        raise UnreadableFile("unreadable_file", "empty file")


def _json_chunk(lines: list[bytes], first_line: int, known: set[str], invalid: str) -> Chunk:
    numbered = [(first_line + i + 1, line) for i, line in enumerate(lines) if line.strip()]
    objects: list[tuple[int, dict]] = []
    rejected: list[RejectedRecord] = []
    for start in range(0, len(numbered), JSON_BLOCK_LINES):
        _parse_block(numbered[start:start + JSON_BLOCK_LINES], objects, rejected, invalid)
    present: set[str] = set()
    for _, obj in objects:
        present.update(obj.keys())
    unknown = present - known
    fields = sorted(present & known)
    columns = {name: _text_column([obj.get(name) for _, obj in objects]) for name in fields}
    ordinals = pa.array([n for n, _ in objects], pa.int64())
    return Chunk(pa.table(columns) if fields else pa.table({}), ordinals, rejected, unknown)


def _text_column(values: list[object]) -> pa.Array:
    """JSON values as text: homogeneous columns convert in C; mixed ones value by value."""
    try:
        array = pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.array([_as_text(v) for v in values], pa.string())
    if pa.types.is_string(array.type) or pa.types.is_null(array.type):
        return array.cast(pa.string())
    if pa.types.is_boolean(array.type) or pa.types.is_integer(array.type) or pa.types.is_floating(array.type):
        return array.cast(pa.string())
    return pa.array([_as_text(v) for v in values], pa.string())


def _parse_block(numbered: list[tuple[int, bytes]], objects: list[tuple[int, dict]],
                 rejected: list[RejectedRecord], invalid: str) -> None:
    """Parse a block of lines in one call; if any line is broken (or holds what msgspec does not decode exactly as
    Python's json would: numbers beyond 64 bits, NaN, lone surrogates), parse that block line by line."""
    if not numbered:
        return
    try:  # msgspec decodes in C; anything it refuses goes to the line-by-line path (Python's json, its messages)
        parsed = msgspec.json.decode(b"[" + b",".join(line for _, line in numbered) + b"]")
        if len(parsed) == len(numbered) and all(type(p) is dict for p in parsed):
            objects.extend((n, obj) for (n, _), obj in zip(numbered, parsed, strict=True))
            return
    except (msgspec.MsgspecError, ValueError, UnicodeDecodeError):
        pass
    for number, line in numbered:
        try:
            obj = json.loads(line)
        except UnicodeDecodeError:
            rejected.append(RejectedRecord("encoding_error", invalid, line.decode("utf-8", "replace")[:2000], number))
            continue
        except ValueError as exc:
            reason = "encoding_error" if _invalid_utf8(line) else "malformed_record"
            rejected.append(RejectedRecord(reason, f"not valid JSON: {exc}"[:200],
                                           line.decode("utf-8", "replace")[:2000], number))
            continue
        if type(obj) is not dict:
            rejected.append(RejectedRecord("malformed_record", "a JSON line must hold one object",
                                           line.decode("utf-8", "replace")[:2000], number))
        else:
            objects.append((number, obj))


def _invalid_utf8(line: bytes) -> bool:
    try:
        line.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def _as_text(value: object) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value) if isinstance(value, float) else str(value)
    return json.dumps(value, sort_keys=True)


def text_of(chunk_table: pa.Table, row: int) -> str:
    return json.dumps({n: chunk_table.column(n)[row].as_py() for n in chunk_table.column_names})


__all__ = ["Chunk", "NeedsRobustRead", "RejectedRecord", "UnreadableFile", "read_csv", "read_jsonl", "open_stream", "io"]
