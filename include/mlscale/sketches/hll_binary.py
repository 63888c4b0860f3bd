"""HyperLogLog sketches as a pyarrow binary column (one blob per entity), dense or sparse, for Parquet.

Blob format (version 1), byte 0 the kind, byte 1 the precision ``p``, then:

* kind 1, dense: ``2**p`` bytes, register ``i`` at byte ``i``;
* kind 2, sparse: ``k`` little-endian uint16 register indices (strictly ascending), then their ``k`` values
  (uint8, non-zero). ``k = (len - 2) / 3``; an empty sketch is the 2-byte sparse blob.

The encoder picks sparse exactly when it is smaller (``3 k < 2**p``): a customer with 40 distinct merchants
costs 122 bytes instead of 4 KiB at ``p = 12``. Decoding either kind gives identical registers. A null blob
reads as an empty sketch. Every step is vectorised over the whole column (NumPy scatter/gather into one
Arrow buffer), and the ``hll_*_binary`` functions go from rows to blobs, and from blobs to merged blobs or
estimates, without ever building the dense ``[n, 2**p]`` matrix, so memory follows the data, not
``n * 2**p``.
"""

from __future__ import annotations

import logging

import numpy as np
import pyarrow as pa

from mlscale.sketches._columns import ColumnLike, binary_buffers, factorize_keys, to_arrow, valid_mask
from mlscale.sketches.hll import DEFAULT_P, SparseRegisters, check_p, entity_index_rank, max_rank

logger = logging.getLogger(__name__)

KIND_DENSE = 1
KIND_SPARSE = 2
_HEADER = 2
_DENSE_CHUNK = 1 << 22  # register bytes gathered per step when decoding dense blobs


def encode(sparse: SparseRegisters) -> pa.Array:
    """One blob per sketch of ``sparse`` (see the module docstring); ``pa.binary()`` (large if > 2 GiB)."""
    n, p, m = sparse.n, sparse.p, 1 << sparse.p
    nnz = sparse.nonzero_counts()
    is_sparse = 3 * nnz < m
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(_HEADER + np.where(is_sparse, 3 * nnz, m), out=offsets[1:])
    data = np.zeros(int(offsets[-1]), dtype=np.uint8)
    starts = offsets[:-1]
    data[starts] = np.where(is_sparse, KIND_SPARSE, KIND_DENSE)
    data[starts + 1] = p
    first = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(nnz, out=first[1:])
    entity, index, value = sparse.entity, sparse.index, sparse.value.view(np.uint8)
    base = starts[entity] + _HEADER
    as_sparse = is_sparse[entity]
    dense = ~as_sparse
    data[base[dense] + index[dense]] = value[dense]
    e, j = entity[as_sparse], np.arange(len(entity), dtype=np.int64)[as_sparse] - first[entity[as_sparse]]
    pos, idx = base[as_sparse] + 2 * j, index[as_sparse]
    data[pos] = (idx & 0xFF).astype(np.uint8)
    data[pos + 1] = (idx >> 8).astype(np.uint8)
    data[base[as_sparse] + 2 * nnz[e] + j] = value[as_sparse]
    if offsets[-1] < 2**31 - 1:
        arrow_type, offsets = pa.binary(), offsets.astype(np.int32)
    else:
        arrow_type = pa.large_binary()
    return pa.Array.from_buffers(arrow_type, n, [None, pa.py_buffer(offsets), pa.py_buffer(data)])


def decode(blobs: ColumnLike, p: int | None = None) -> SparseRegisters:
    """Blobs back to :class:`SparseRegisters`. All blobs must share one ``p`` (also ``p`` if given);
    with nothing to read it from, ``p`` defaults to ``DEFAULT_P``. Malformed blobs raise ValueError."""
    arr = to_arrow(blobs)
    if pa.types.is_null(arr.type):
        arr = arr.cast(pa.binary())
    offsets, data = binary_buffers(arr)
    n = len(arr)
    starts, lengths = offsets[:-1], offsets[1:] - offsets[:-1]
    valid = valid_mask(arr)
    rows = np.arange(n, dtype=np.int64) if valid is None else np.flatnonzero(valid)
    if len(rows) and lengths[rows].min() < _HEADER:
        raise ValueError("HyperLogLog blob shorter than its 2-byte header")
    kinds, ps = data[starts[rows]], data[starts[rows] + 1]
    found = np.unique(ps)
    if len(found) > 1 or (p is not None and len(found) == 1 and int(found[0]) != p):
        raise ValueError(f"HyperLogLog blobs of precision {found.tolist()} (expected one p, {p=})")
    p = check_p(int(found[0]) if len(found) else (DEFAULT_P if p is None else p))
    m = 1 << p
    bad = ~np.isin(kinds, (KIND_DENSE, KIND_SPARSE))
    bad |= (kinds == KIND_DENSE) & (lengths[rows] != _HEADER + m)
    bad |= (kinds == KIND_SPARSE) & ((lengths[rows] - _HEADER) % 3 != 0)
    if bad.any():
        raise ValueError(f"{int(bad.sum())} malformed HyperLogLog blob(s), first at row {int(rows[bad][0])}")
    parts = [_decode_sparse(rows[kinds == KIND_SPARSE], starts, lengths, data)]
    dense_rows = rows[kinds == KIND_DENSE]
    step = max(1, _DENSE_CHUNK // m)
    for lo in range(0, len(dense_rows), step):  # bounded memory: one chunk of dense blobs at a time
        chunk = dense_rows[lo: lo + step]
        registers = data[(starts[chunk] + _HEADER)[:, None] + np.arange(m)]
        r, i = np.nonzero(registers)
        parts.append((chunk[r], i.astype(np.int64), registers[r, i]))
    entity, index, value = (np.concatenate(column) for column in zip(*parts, strict=True))
    value = value.astype(np.int8)
    if len(value) and (index.max() >= m or value.min() < 0 or value.max() > max_rank(p)):
        raise ValueError(f"HyperLogLog blob holds a register outside [0, {max_rank(p)}] or index >= {m}")
    return SparseRegisters.reduce(entity, index, value, n, p)


def _decode_sparse(rows: np.ndarray, starts: np.ndarray, lengths: np.ndarray,
                   data: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    nnz = (lengths[rows] - _HEADER) // 3
    entity = np.repeat(rows, nnz)
    first = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(nnz, out=first[1:])
    j = np.arange(int(first[-1]), dtype=np.int64) - np.repeat(first[:-1], nnz)
    base = np.repeat(starts[rows] + _HEADER, nnz)
    index = data[base + 2 * j].astype(np.int64) | (data[base + 2 * j + 1].astype(np.int64) << 8)
    value = data[base + 2 * np.repeat(nnz, nnz) + j]
    return entity, index, value


def registers_to_binary(registers: np.ndarray) -> pa.Array:
    """Dense registers ``[n, 2**p]`` -> a binary column of ``n`` blobs (sparse where smaller)."""
    return encode(SparseRegisters.from_dense(registers))


def registers_from_binary(blobs: ColumnLike, p: int | None = None) -> np.ndarray:
    """A binary column (or list of bytes) -> dense registers ``int8[n, 2**p]``; exact inverse of the above."""
    return decode(blobs, p).to_dense()


def hll_sketches(keys: ColumnLike, values: ColumnLike, p: int = DEFAULT_P) -> tuple[np.ndarray, pa.Array]:
    """``(unique_keys, blobs)``: :func:`~mlscale.sketches.hll.hll_registers`, encoded, without the dense
    matrix in between (memory proportional to the rows, not to ``n_entities * 2**p``)."""
    p = check_p(p)
    codes, uniques, index, rank, _ = entity_index_rank(keys, values, p)
    return uniques, encode(SparseRegisters.reduce(codes, index, rank, len(uniques), p))


def hll_merge_binary(keys: ColumnLike, blobs: ColumnLike, p: int | None = None) -> tuple[np.ndarray, pa.Array]:
    """``(unique_keys, blobs)``: blobs with equal key merged (the union's sketch, exactly), e.g. the 30
    daily partials of each customer -> one 30-day sketch per customer."""
    codes, uniques = factorize_keys(keys)
    sparse = decode(blobs, p)
    if len(codes) != sparse.n:
        raise ValueError(f"{len(codes)} keys for {sparse.n} blobs")
    merged = SparseRegisters.reduce(codes[sparse.entity], sparse.index, sparse.value, len(uniques), sparse.p)
    return uniques, encode(merged)


def hll_estimate_binary(blobs: ColumnLike, p: int | None = None) -> np.ndarray:
    """Cardinality estimate ``float64[n]`` per blob, equal to ``hll_estimate(registers_from_binary(blobs))``."""
    return decode(blobs, p).estimate()
