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
    numbers); records beyond the end of the file are left out."""
    wanted = set(records)
    if not wanted:
        return {}
    last = max(wanted)
    found: dict[int, int] = {}
    if csv_delimiter is None:
        for number, (offset, _) in enumerate(_lines(fs, path), start=1):
            if number in wanted:
                found[number] = offset
            if number >= last:
                break
        return found
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
