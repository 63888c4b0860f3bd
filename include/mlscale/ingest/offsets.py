"""Where a record starts in its landing file: byte offsets for quarantine rows, and a file's record count.

Offsets are positions in the file's content as read (after gzip decompression, counting a byte-order mark), so
``dd``/``tail -c +N`` or a hex editor on the decompressed file lands on the record. They are found after the file
is processed, in one streaming pass that stops at the last record asked for, so files without rejects cost
nothing. Record numbers follow the readers (:mod:`mlscale.ingest.readers`): CSV records are counted from 1 after
the header, skipping blank lines, a quoted line break staying inside its record; JSON lines are numbered by
physical line.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from typing import NamedTuple

import numpy as np

from mlscale.ingest.readers import MAX_FIELD_BYTES, open_stream

BLOCK_BYTES = 8 << 20


def _lines(fs, path: str) -> Iterator[tuple[int, bytes]]:
    """(offset, line with its line break) for every physical line of the file."""
    with open_stream(fs, path) as stream:
        offset, carry = 0, b""
        while True:
            data = stream.read(BLOCK_BYTES)
            buffer = carry + data
            start = 0
            while True:
                end = buffer.find(b"\n", start)
                if end < 0:
                    break
                yield offset + start, buffer[start:end + 1]
                start = end + 1
            offset += start
            carry = buffer[start:]
            if not data:
                if carry:
                    yield offset, carry
                return


def record_offsets(fs, path: str, records: Iterable[int], *, csv_delimiter: str | None) -> dict[int, int]:
    """The byte offset of each of ``records`` (CSV record ordinals when ``csv_delimiter`` is given, else JSON line
    numbers); records beyond the end of the file are left out.

    Line starts are found with NumPy over whole blocks. A CSV file without a quote character and without a bare
    carriage return has one record per non-blank line, so its records are its non-blank lines after the header;
    any other CSV file is split into records by Python's ``csv`` module, as the reader does."""
    wanted = set(records)
    if not wanted:
        return {}
    last = max(wanted)
    scan = _scan(fs, path, stop_after_lines=None if csv_delimiter is not None else last)
    if csv_delimiter is None:
        return {n: int(scan.starts[n - 1]) for n in wanted if 1 <= n <= len(scan.starts)}
    if scan.plain:
        nonblank = scan.starts[~scan.blank]  # record 0 is the header, the first non-blank line
        return {r: int(nonblank[r]) for r in wanted if 0 <= r < len(nonblank)}
    return _csv_record_offsets(fs, path, wanted, last, csv_delimiter)


class _Scan(NamedTuple):
    """Line starts of a file (as far as it was read), which lines are blank, and whether every line is a record."""

    starts: np.ndarray
    blank: np.ndarray
    plain: bool


def _scan(fs, path: str, stop_after_lines: int | None) -> _Scan:
    """One pass over the decompressed content: the offset of every physical line (stopping once
    ``stop_after_lines`` lines are found), blank lines (nothing before ``\\n`` or ``\\r\\n``), and ``plain``: no
    quote character and no carriage return outside a ``\\r\\n``."""
    breaks: list[np.ndarray] = []
    ends_cr: list[np.ndarray] = []
    plain, size, found, previous = True, 0, 0, b""
    with open_stream(fs, path) as stream:
        while True:
            data = stream.read(BLOCK_BYTES)
            if not data:
                break
            raw = np.frombuffer(data, dtype=np.uint8)
            newlines = np.flatnonzero(raw == 10)
            breaks.append(newlines + size)
            before = raw[np.maximum(newlines - 1, 0)]
            if len(newlines) and newlines[0] == 0:  # the byte before a block's first line break is the last block's
                before[0] = previous[-1] if previous else 0
            ends_cr.append(before == 13)
            plain = plain and b'"' not in data and data.count(b"\r") == data.count(b"\r\n")
            size, found, previous = size + len(data), found + len(newlines), data
            if stop_after_lines is not None and found >= stop_after_lines:
                break
    newline_at = np.concatenate(breaks) if breaks else np.zeros(0, dtype=np.int64)
    cr = np.concatenate(ends_cr) if ends_cr else np.zeros(0, dtype=bool)
    starts = np.concatenate([[0], newline_at + 1]).astype(np.int64)
    ends = np.concatenate([newline_at, [size]]).astype(np.int64)   # where each line's content stops
    content = ends - starts - np.concatenate([cr, [False]]).astype(np.int64)
    keep = starts < size                 # a final line break opens no line
    return _Scan(starts[keep], content[keep] <= 0, plain)


def _csv_record_offsets(fs, path: str, wanted: set[int], last: int, csv_delimiter: str) -> dict[int, int]:
    found: dict[int, int] = {}
    starts: list[int] = []

    def text_lines() -> Iterator[str]:
        for offset, line in _lines(fs, path):
            starts.append(offset)
            yield line.decode("latin-1")  # one character per byte: csv only splits records here

    csv.field_size_limit(MAX_FIELD_BYTES)
    reader = csv.reader(text_lines(), delimiter=csv_delimiter)
    consumed = 0   # physical lines read before the current row
    record = -1    # the header is record 0
    try:
        for row in reader:
            first_line = consumed
            consumed = len(starts)
            if not row:
                continue
            record += 1
            if record in wanted:
                found[record] = starts[first_line]
            if record >= last:
                break
            del starts[:consumed]
            consumed = 0
    except csv.Error:  # the rest cannot be split into records: what was found stands
        pass
    return found


def count_lines(fs, path: str) -> int:
    """Non-blank lines of a text file (what a file rejected as a whole holds, for the run's counts)."""
    count = 0
    with open_stream(fs, path) as stream:
        carry = b""
        while True:
            data = stream.read(BLOCK_BYTES)
            lines = (carry + data).split(b"\n")
            carry = lines.pop() if data else b""
            count += sum(1 for line in lines if line.strip())
            if not data:
                return count


__all__ = ["count_lines", "record_offsets"]
