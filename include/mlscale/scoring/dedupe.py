"""Repeated model inputs: events whose input vectors are identical are scored once.

Inputs are compared as the model sees them: the float32 values of the model's input columns (a model casts
its inputs to float32, so rows equal in float32 get equal scores), with ``-0.0`` read as ``0.0`` and every
NaN as one NaN. Rows are grouped by a 64-bit hash of those values (SplitMix64's finaliser chained over the
row's 8-byte words, vectorised over rows); rows that share a hash are then compared value by value, and a
hash collision, however unlikely (about n²/2⁶⁵), falls back to grouping by the exact bytes, so two different
input vectors never share a score. Equal inputs always have equal hashes (the ``input_hash`` column).

Every row keeps its own prediction row: the score of its group is copied back, so nothing is dropped,
only the model work is shared. Groups are numbered in order of first occurrence; when no row repeats, the
input matrix is scored as it is (no copy).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

_SEED = np.uint64(0x6D6C7363616C6531)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


@dataclass(frozen=True)
class DistinctInputs:
    """The distinct input vectors of a frame and, for each row, its vector's group."""

    hashes: np.ndarray      # uint64 per row: the hash of its input vector
    first: np.ndarray       # int64, per group: the position of its first row (ascending)
    inverse: np.ndarray     # int64 per row: its group, an index into ``first`` / ``unique``
    unique: np.ndarray      # float32 [groups, columns], C-contiguous: one input vector per group

    @property
    def rows(self) -> int:
        return int(len(self.hashes))

    @property
    def distinct(self) -> int:
        return int(len(self.first))

    @property
    def repeats(self) -> int:
        """Rows whose inputs equal an earlier row's (scored with it)."""
        return self.rows - self.distinct

    def expand(self, values: np.ndarray) -> np.ndarray:
        """Per-group ``values`` (one per distinct vector) as per-row values."""
        return values if self.repeats == 0 else values[self.inverse]


def input_matrix(frame: Any, columns: Sequence[str]) -> np.ndarray:
    """The float32 values of ``columns`` (C-contiguous, owned; ``-0.0`` → ``0.0``, NaNs made one NaN)."""
    return canonical_block(frame[list(columns)].to_numpy(dtype=np.float32))


def canonical_block(values: np.ndarray) -> np.ndarray:
    """``values`` as the float32 block models see (C-contiguous, owned; ``-0.0`` → ``0.0``, NaNs made one NaN)."""
    matrix = np.require(values, np.float32, ["C_CONTIGUOUS", "OWNDATA"])
    matrix += np.float32(0.0)           # -0.0 + 0.0 == +0.0
    matrix[np.isnan(matrix)] = np.nan   # one bit pattern for every NaN
    return matrix


def _mix(z: np.ndarray) -> np.ndarray:
    z ^= z >> np.uint64(30)
    z *= _M1
    z ^= z >> np.uint64(27)
    z *= _M2
    z ^= z >> np.uint64(31)
    return z


def row_hashes(matrix: np.ndarray) -> np.ndarray:
    """The 64-bit hash (uint64) of each row of a C-contiguous float32 matrix."""
    n, k = matrix.shape
    if k % 2:
        matrix = np.concatenate([matrix, np.zeros((n, 1), dtype=np.float32)], axis=1)
    words = matrix.view(np.uint64)
    hashes = np.full(n, _SEED, dtype=np.uint64)
    for j in range(words.shape[1]):
        hashes ^= words[:, j]
        hashes = _mix(hashes)
    return hashes


def _groups(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(first, inverse)`` of equal ``keys``, groups numbered by first occurrence (hash table, O(n))."""
    import pandas as pd

    n = len(keys)
    inverse, uniques = pd.factorize(keys, sort=False)
    if len(uniques) == n:
        every = np.arange(n, dtype=np.int64)
        return every, every
    first = np.empty(len(uniques), dtype=np.int64)
    first[inverse[::-1]] = np.arange(n - 1, -1, -1, dtype=np.int64)   # the earliest position wins
    return first, inverse.astype(np.int64)


def distinct_rows(matrix: np.ndarray) -> DistinctInputs:
    """Group the rows of a matrix from :func:`input_matrix` by their values (see the module docstring)."""
    n = len(matrix)
    hashes = row_hashes(matrix) if n else np.zeros(0, dtype=np.uint64)
    first, inverse = _groups(hashes)
    if len(first) == n:
        return DistinctInputs(hashes, first, inverse, matrix)
    unique = matrix[first]
    is_first = np.zeros(n, dtype=bool)
    is_first[first] = True
    repeated = np.flatnonzero(~is_first)
    bits, unique_bits = matrix.view(np.uint32), unique.view(np.uint32)
    if not np.array_equal(bits[repeated], unique_bits[inverse[repeated]]):
        logger.warning("input hash collision among %d rows: grouping by exact values instead", n)
        rows = np.ascontiguousarray(bits).view(np.dtype((np.void, bits.shape[1] * 4))).reshape(-1)
        _, first, inverse = np.unique(rows, return_index=True, return_inverse=True)
        order = np.argsort(first, kind="stable")
        rank = np.empty_like(order)
        rank[order] = np.arange(len(order))
        first, inverse = first[order].astype(np.int64), rank[inverse.reshape(-1)].astype(np.int64)
        unique = matrix[first]
    return DistinctInputs(hashes, first, inverse, unique)


def distinct_inputs(frame: Any, columns: Sequence[str]) -> DistinctInputs:
    """Group the rows of ``frame`` by their input values in ``columns`` (deterministic for equal input)."""
    return distinct_rows(input_matrix(frame, columns))


def input_hashes(frame: Any, columns: Sequence[str]) -> np.ndarray:
    """The 64-bit hash of each row's input values in ``columns`` (that order), as uint64."""
    return row_hashes(input_matrix(frame, columns))
