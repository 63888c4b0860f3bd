"""Byte offsets of records in landing files: the vectorised scan agrees with Python's csv module record by record,
on plain files (one record per line) and on files it hands to the csv module (quotes, bare carriage returns)."""

from __future__ import annotations

import gzip

import pytest
from mlscale.ingest import offsets
from pyarrow import fs as pafs

CASES = {
    "plain": b"a,b\n1,2\n3,4\n5,6\n",
    "blank lines and crlf": b"\xef\xbb\xbfa,b\r\n\r\n1,2\r\n\n3,4\r\n  \n5,6",
    "no final newline": b"a,b\n1,2\n3,4",
    "quoted line break": b'a,b\n1,"x\ny"\n3,4\n"5",6\n',
    "bare carriage return": b"a,b\n1,2\r3,4\n5,6\n",
    "only header": b"a,b\n",
}


def offsets_via_csv(path: str, wanted: set[int]) -> dict[int, int]:
    return offsets._csv_record_offsets(pafs.LocalFileSystem(), path, wanted, max(wanted), ",")


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("block", [3, 1 << 20])
def test_csv_offsets_match_the_csv_module(tmp_path, monkeypatch, name, block) -> None:
    monkeypatch.setattr(offsets, "BLOCK_BYTES", block)  # line breaks across block boundaries too
    path = tmp_path / "f.csv"
    path.write_bytes(CASES[name])
    wanted = set(range(0, 7))
    fast = offsets.record_offsets(pafs.LocalFileSystem(), str(path), wanted, csv_delimiter=",")
    assert fast == offsets_via_csv(str(path), wanted)
    data = CASES[name]
    for record, at in fast.items():
        assert record == 0 or data[at - 1:at] in (b"\n", b"\r")   # every record starts a line


@pytest.mark.parametrize("block", [4, 1 << 20])
def test_json_line_offsets_count_physical_lines(tmp_path, monkeypatch, block) -> None:
    monkeypatch.setattr(offsets, "BLOCK_BYTES", block)
    data = b'{"a": 1}\n\n{"a": 2}\r\n{"a": 3}'
    path = tmp_path / "f.jsonl.gz"
    path.write_bytes(gzip.compress(data))
    found = offsets.record_offsets(pafs.LocalFileSystem(), str(path), {1, 3, 4, 9}, csv_delimiter=None)
    assert found == {1: 0, 3: data.index(b'{"a": 2}'), 4: data.index(b'{"a": 3}')}
