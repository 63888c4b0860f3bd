"""Column-like inputs as pyarrow arrays, entity keys as dense sorted codes, and groups of rows per code.

Shared by the HyperLogLog and KLL builders. Everything here is vectorised (pyarrow compute kernels and
NumPy); nothing loops per row.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, TypeAlias

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

logger = logging.getLogger(__name__)

#: Anything ``pyarrow.array`` accepts: a pyarrow (chunked) array, a NumPy array (object, ``U``, integer),
#: a pandas Series or a Python sequence.
ColumnLike: TypeAlias = pa.Array | pa.ChunkedArray | np.ndarray | Sequence[Any]


def to_arrow(values: ColumnLike) -> pa.Array:
    """One contiguous pyarrow array (chunks combined, dictionaries decoded); no copy for arrow input."""
    if isinstance(values, pa.ChunkedArray):
        arr = values.combine_chunks()
    elif isinstance(values, pa.Array):
        arr = values
    else:
        arr = pa.array(values)
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    return arr


def valid_mask(arr: pa.Array) -> np.ndarray | None:
    """Boolean mask of the non-null slots, or None when there are no nulls."""
    if arr.null_count == 0:
        return None
    return np.asarray(arr.is_valid().to_numpy(zero_copy_only=False), dtype=bool)


def factorize_keys(keys: ColumnLike) -> tuple[np.ndarray, np.ndarray]:
    """``(codes, unique_keys)``: ``unique_keys`` sorted ascending, ``unique_keys[codes] == keys``.

    Codes are int64 in ``[0, len(unique_keys))``. String keys come back as an object array of ``str``,
    integer keys as int64 (uint64 for unsigned input). Null keys are rejected: an entity must be named.
    """
    return sorted_codes(encode_keys(keys))


def encode_keys(keys: ColumnLike) -> pa.Array:
    """The first half of :func:`factorize_keys`: the keys dictionary-encoded in order of first appearance
    (its ``dictionary`` tells how many entities there are before they are sorted)."""
    arr = to_arrow(keys)
    if arr.null_count:
        raise ValueError(f"keys contain {arr.null_count} null(s); every row must name its entity")
    return pc.dictionary_encode(arr)


def sorted_codes(encoded: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """The second half of :func:`factorize_keys`: codes into the sorted dictionary."""
    dictionary = encoded.dictionary
    if len(encoded) == 0:
        return np.zeros(0, dtype=np.int64), dictionary.to_numpy(zero_copy_only=False)
    order = np.asarray(pc.array_sort_indices(dictionary).to_numpy(), dtype=np.int64)
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order), dtype=np.int64)
    codes = rank[np.asarray(encoded.indices.to_numpy(), dtype=np.int64)]
    uniques = dictionary.take(pa.array(order)).to_numpy(zero_copy_only=False)
    return codes, uniques


def group_bounds(codes: np.ndarray, n_groups: int) -> tuple[np.ndarray, np.ndarray]:
    """``(order, offsets)``: rows of group ``g`` are ``order[offsets[g]:offsets[g + 1]]`` (stable order)."""
    order = np.argsort(codes, kind="stable")
    offsets = np.zeros(n_groups + 1, dtype=np.int64)
    np.cumsum(np.bincount(codes, minlength=n_groups), out=offsets[1:])
    return order, offsets


def binary_buffers(arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """``(offsets int64[n + 1], data uint8)`` of a string/binary array (slices honoured, zero copy data)."""
    offset_type: type[np.signedinteger]
    if pa.types.is_string(arr.type) or pa.types.is_binary(arr.type):
        offset_type = np.int32
    elif pa.types.is_large_string(arr.type) or pa.types.is_large_binary(arr.type):
        offset_type = np.int64
    else:
        raise TypeError(f"expected a string or binary array, got {arr.type}")
    buffers = arr.buffers()
    offsets = np.frombuffer(buffers[1], dtype=offset_type)[arr.offset: arr.offset + len(arr) + 1]
    data = np.frombuffer(buffers[2], dtype=np.uint8) if buffers[2] is not None else np.zeros(0, np.uint8)
    return offsets.astype(np.int64), data


def as_binary(arr: pa.Array) -> pa.Array:
    """A string/binary/large variant of ``arr`` that :func:`binary_buffers` can read (view types cast)."""
    t = arr.type
    if pa.types.is_string(t) or pa.types.is_binary(t) or pa.types.is_large_string(t) or pa.types.is_large_binary(t):
        return arr
    if pa.types.is_string_view(t):
        return pc.cast(arr, pa.large_string())
    if pa.types.is_binary_view(t) or pa.types.is_fixed_size_binary(t):
        return pc.cast(arr, pa.large_binary())
    raise TypeError(f"expected a string or binary column, got {t}")
