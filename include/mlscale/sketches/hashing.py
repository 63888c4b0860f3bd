"""The value hash of the HyperLogLog sketches: 64-bit, vectorised over a whole column, with a scalar twin.

``hll_hash64`` (scalar, pure Python) and :func:`hash64_column` (vectorised NumPy over the Arrow buffers)
compute the same function, bit for bit:

* integers (and booleans) ``v`` in ``[-2**63, 2**64)``: ``splitmix64(v mod 2**64)``;
* ``str``: its UTF-8 bytes (so ``"a"`` and ``b"a"`` hash alike);
* bytes ``b``: ``h = splitmix64(len(b) ^ STRING_SEED)``, then for each 8-byte little-endian word ``w``
  of ``b`` (the last one zero-padded) ``h = splitmix64(h ^ w)``;

where ``splitmix64(x)`` is Vigna's SplitMix64 output function (add the golden gamma, then the Stafford
"variant 13" finaliser), all modulo 2**64. Every step is a bijection, so distinct integers, and distinct
byte strings of equal length up to 8 bytes, never collide in 64 bits. :func:`hll_hash` keeps the low 32
bits: it is the ``hashfunc`` to give ``datasketch.HyperLogLog`` so that its registers equal ours.

The function is defined here, not borrowed from a library, so sketches stored in the lake stay valid across
library upgrades; ``tests/unit/test_sketches.py`` pins known values. Floats are refused (cast them to
integers or strings first: ``1.0`` vs ``1`` would otherwise be a silent trap).
"""

from __future__ import annotations

import logging

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mlscale.sketches._columns import ColumnLike, as_binary, binary_buffers, to_arrow, valid_mask

logger = logging.getLogger(__name__)

MASK64 = (1 << 64) - 1
GOLDEN_GAMMA = 0x9E3779B97F4A7C15
MIX1 = 0xBF58476D1CE4E5B9
MIX2 = 0x94D049BB133111EB
#: Seeds the byte-string hash with the length, so ``b"a"`` and ``b"a\\0"`` differ.
STRING_SEED = 0x6D6C7363616C6531  # "mlscale1"

_U64 = np.uint64
_TAIL_MASKS = np.array([(1 << (8 * r)) - 1 for r in range(8)] + [MASK64], dtype=np.uint64)


def _splitmix64_scalar(x: int) -> int:
    z = (x + GOLDEN_GAMMA) & MASK64
    z = ((z ^ (z >> 30)) * MIX1) & MASK64
    z = ((z ^ (z >> 27)) * MIX2) & MASK64
    return z ^ (z >> 31)


def _splitmix64(z: np.ndarray) -> np.ndarray:
    """SplitMix64 of a uint64 array, in place (the array is returned)."""
    z += _U64(GOLDEN_GAMMA)
    z ^= z >> _U64(30)
    z *= _U64(MIX1)
    z ^= z >> _U64(27)
    z *= _U64(MIX2)
    z ^= z >> _U64(31)
    return z


def hll_hash64(value: int | str | bytes | bytearray | memoryview | np.integer) -> int:
    """The 64-bit hash of one value (see the module docstring); equals :func:`hash64_column` elementwise."""
    if isinstance(value, (int, np.integer)):
        v = int(value)
        if not -(1 << 63) <= v < (1 << 64):
            raise OverflowError(f"integer {v} does not fit in 64 bits")
        return _splitmix64_scalar(v & MASK64)
    if isinstance(value, str):
        data = value.encode("utf-8")
    elif isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value)
    else:
        raise TypeError(f"hll_hash64 takes an int, str or bytes, not {type(value).__name__}")
    h = _splitmix64_scalar(len(data) ^ STRING_SEED)
    for start in range(0, len(data), 8):
        h = _splitmix64_scalar(h ^ int.from_bytes(data[start:start + 8], "little"))
    return h


def hll_hash(value: int | str | bytes | bytearray | memoryview | np.integer) -> int:
    """Low 32 bits of :func:`hll_hash64`: pass as ``datasketch.HyperLogLog(hashfunc=hll_hash)``."""
    return hll_hash64(value) & 0xFFFFFFFF


def _hash_integers(arr: pa.Array) -> np.ndarray:
    target = pa.uint64() if pa.types.is_unsigned_integer(arr.type) else pa.int64()
    if arr.null_count:
        arr = pc.fill_null(arr, pa.scalar(0, arr.type))
    values = np.asarray(pc.cast(arr, target).to_numpy(zero_copy_only=False))
    return _splitmix64(values.view(np.uint64).copy())


def _hash_bytes(arr: pa.Array) -> np.ndarray:
    offsets, data = binary_buffers(as_binary(arr))
    starts = offsets[:-1]
    lengths = offsets[1:] - starts
    longest = int(lengths.max()) if len(lengths) else 0
    if longest < 1 << 16:  # few distinct lengths: seed by table lookup
        h = _splitmix64(np.arange(longest + 1, dtype=np.uint64) ^ _U64(STRING_SEED))[lengths]
    else:
        h = _splitmix64(lengths.astype(np.uint64) ^ _U64(STRING_SEED))
    # the little-endian 8-byte word at every byte offset of the zero-padded data, as one zero-copy
    # (unaligned, 1-byte stride) view; each step gathers one word per row
    padded = np.concatenate([data, np.zeros(8, dtype=np.uint8)])
    word_at = np.ndarray(shape=(len(padded) - 7,), dtype=np.dtype("<u8"), buffer=padded, strides=(1,))
    for word_start in range(0, longest, 8):  # one step per 8 bytes of the longest value, not per row
        remaining = lengths - word_start
        active = remaining > 0
        rows = None if bool(active.all()) else np.flatnonzero(active)
        if rows is not None:
            remaining = remaining[rows]
        words = word_at[starts + word_start if rows is None else starts[rows] + word_start]
        words = words.astype(np.uint64, copy=False)
        if int(remaining.min()) < 8:
            words &= _TAIL_MASKS[np.minimum(remaining, 8)]
        if rows is None:
            h ^= words
            _splitmix64(h)
        else:
            h[rows] = _splitmix64(h[rows] ^ words)
    return h


def hash64_column(values: ColumnLike) -> tuple[np.ndarray, np.ndarray | None]:
    """``(hashes uint64[n], valid)``: the 64-bit hash of every row, and the non-null mask (None: no nulls).

    The hash of a null row is meaningless; callers drop those rows with ``valid``.
    """
    arr = to_arrow(values)
    t = arr.type
    if pa.types.is_integer(t):
        hashes = _hash_integers(arr)
    elif pa.types.is_boolean(t):
        hashes = _hash_integers(pc.cast(arr, pa.int64()))
    elif pa.types.is_null(t):
        hashes = np.zeros(len(arr), dtype=np.uint64)
    else:
        try:
            hashes = _hash_bytes(arr)
        except TypeError as exc:
            raise TypeError(f"sketch values must be integers, strings or bytes, not {t} "
                            "(cast floats and dates to int or string first)") from exc
    return hashes, valid_mask(arr)


def hll_hash_array(values: ColumnLike) -> np.ndarray:
    """Vectorised :func:`hll_hash` (uint32 per row); nulls are an error here."""
    hashes, valid = hash64_column(values)
    if valid is not None:
        raise ValueError("values contain nulls")
    return (hashes & _U64(0xFFFFFFFF)).astype(np.uint32)
