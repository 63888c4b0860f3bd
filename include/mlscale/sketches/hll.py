"""Per-entity HyperLogLog registers, built for a whole column at once and interchangeable with ``datasketch``.

Guarantees:

* **Same registers as datasketch.** For precision ``p`` the registers of an entity equal those of
  ``datasketch.HyperLogLog(p=p, hashfunc=hll_hash)`` updated with the entity's values one by one: the
  register index is the low ``p`` bits of the 32-bit hash, the rank is ``32 - p - bit_length(hash >> p) + 1``.
  Registers are int8, datasketch's own dtype, so ``HyperLogLog(reg=registers[i], hashfunc=hll_hash)``
  works as is (uint8 would wrap in its ``2.0 ** -reg``).
* **Same estimate as datasketch.** :func:`hll_estimate` is ``HyperLogLog.count()`` (raw estimate, linear
  counting at or below ``2.5 m``, large-range correction above ``2**32 / 30``), vectorised. The register
  sum is exact in float64, so estimates agree to the last bit. Where datasketch would divide by zero
  (linear-counting range with no empty register) the raw estimate is returned.
* **Merging is exact.** The registers of a union equal the elementwise max of the parts' registers, so
  day partials merged over any window equal the sketch of the window.
* **Accuracy.** Relative standard error about ``1.04 / sqrt(2**p)``: 1.6 % at the default ``p = 12``
  (``datasketch`` defaults to 8: 6.5 %). Dense registers cost ``2**p`` bytes per entity in memory (4 KiB at
  ``p = 12``); for millions of entities use :mod:`mlscale.sketches.hll_binary`, which never materialises
  the dense matrix and stores small sketches sparsely.

Null values are skipped (``COUNT(DISTINCT)`` semantics); an entity whose values are all null is still
listed, with empty registers. Null keys are an error.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from mlscale.sketches._columns import ColumnLike, encode_keys, factorize_keys, group_bounds, sorted_codes
from mlscale.sketches.hashing import hash64_column

logger = logging.getLogger(__name__)

DEFAULT_P = 12
MIN_P, MAX_P = 4, 16  # datasketch's range; register indices fit in uint16
_RANK_BITS = 5  # ranks are at most 33 - p <= 29 < 2**5
_PAGE_BYTES = 4096


def check_p(p: int) -> int:
    if not isinstance(p, (int, np.integer)) or not MIN_P <= int(p) <= MAX_P:
        raise ValueError(f"HyperLogLog precision p={p!r} must be an integer in [{MIN_P}, {MAX_P}]")
    return int(p)


def max_rank(p: int) -> int:
    """The largest register value at precision ``p`` (a hash whose rank bits are all zero)."""
    return 33 - p


def alpha(p: int) -> float:
    """datasketch's bias constant, same expression so the estimates agree bit for bit."""
    if p == 4:
        return 0.673
    if p == 5:
        return 0.697
    if p == 6:
        return 0.709
    return 0.7213 / (1.0 + 1.079 / (1 << p))


def index_rank(hashes: np.ndarray, p: int) -> tuple[np.ndarray, np.ndarray]:
    """Register index (int64) and rank (int8) of each 64-bit hash, from its low 32 bits as datasketch."""
    low = hashes & np.uint64(0xFFFFFFFF)
    index = (low & np.uint64((1 << p) - 1)).astype(np.int64)
    # bit_length(x) is frexp's exponent, exact for integers below 2**53
    _, bit_length = np.frexp((low >> np.uint64(p)).astype(np.float64))
    rank = (max_rank(p) - bit_length).astype(np.int8)
    return index, rank


@dataclass(frozen=True)
class SparseRegisters:
    """The non-zero registers of ``n`` sketches as triples, sorted by (entity, index), one per pair."""

    n: int
    p: int
    entity: np.ndarray  # int64
    index: np.ndarray  # int64
    value: np.ndarray  # int8, >= 1

    @classmethod
    def reduce(cls, entity: np.ndarray, index: np.ndarray, rank: np.ndarray, n: int, p: int) -> SparseRegisters:
        """Max ``rank`` per (entity, index): one sort of packed int64 keys, the rank in the low bits."""
        keep = rank > 0
        if not keep.all():
            entity, index, rank = entity[keep], index[keep], rank[keep]
        packed = ((entity.astype(np.int64) << p | index) << _RANK_BITS) | rank.astype(np.int64)
        packed.sort()
        cell = packed >> _RANK_BITS
        last = np.ones(len(packed), dtype=bool)
        last[:-1] = cell[1:] != cell[:-1]  # the last of each run holds the max rank
        cell, top = cell[last], packed[last] & ((1 << _RANK_BITS) - 1)
        return cls(n=n, p=p, entity=cell >> p, index=cell & ((1 << p) - 1), value=top.astype(np.int8))

    @classmethod
    def from_dense(cls, registers: np.ndarray) -> SparseRegisters:
        registers = as_registers(registers)
        entity, index = np.nonzero(registers)
        p = check_p(registers.shape[1].bit_length() - 1)
        return cls(n=registers.shape[0], p=p, entity=entity.astype(np.int64), index=index.astype(np.int64),
                   value=registers[entity, index])

    def to_dense(self) -> np.ndarray:
        registers = np.zeros((self.n, 1 << self.p), dtype=np.int8)
        registers[self.entity, self.index] = self.value
        return registers

    def nonzero_counts(self) -> np.ndarray:
        return np.bincount(self.entity, minlength=self.n)

    def estimate(self) -> np.ndarray:
        """:func:`hll_estimate` of the dense form, computed from the triples alone."""
        m = 1 << self.p
        num_zero = m - self.nonzero_counts()
        inv_sum = num_zero + np.bincount(self.entity, weights=np.ldexp(1.0, -self.value.astype(np.int32)),
                                         minlength=self.n)
        return _estimate(inv_sum, num_zero, self.p)


def as_registers(registers: np.ndarray) -> np.ndarray:
    """Validate a ``[n, 2**p]`` register matrix (a single sketch may be 1-D) and return it as int8 2-D."""
    registers = np.asarray(registers)
    if registers.ndim == 1:
        registers = registers[None, :]
    if registers.ndim != 2:
        raise ValueError(f"registers must be [n, 2**p], got shape {registers.shape}")
    m = registers.shape[1]
    check_p(m.bit_length() - 1)
    if m & (m - 1):
        raise ValueError(f"register count {m} is not a power of two")
    if registers.dtype != np.int8:
        registers = registers.astype(np.int8)
    return registers


def _estimate(inv_sum: np.ndarray, num_zero: np.ndarray, p: int) -> np.ndarray:
    m = 1 << p
    e = alpha(p) * float(m**2) / inv_sum
    small = e <= (5.0 / 2.0) * m
    with np.errstate(divide="ignore", invalid="ignore"):
        linear = m * np.log(m / num_zero.astype(np.float64))
        large = -(1 << 32) * np.log(1.0 - e / (1 << 32))
    out = np.where(small & (num_zero > 0), linear, e)
    return np.where(~small & (e > (1.0 / 30.0) * (1 << 32)), large, out)


def entity_index_rank(keys: ColumnLike, values: ColumnLike, p: int, *,
                      prepare: Callable[[int], Any] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                                            np.ndarray, Any]:
    """``(entity codes, sorted unique keys, register index, rank, prepared)`` of every non-null value, hashed
    at once; ``prepared`` is ``prepare(number of entities)`` (``None`` without ``prepare``).

    The keys are factorised on a second thread while the values are hashed: both are vectorised kernels that
    release the GIL (Arrow's hash table, NumPy's uint64 arithmetic), so two cores take about the longer of
    the two instead of their sum; ``prepare`` runs here once the keys are encoded, while they are sorted
    (measured in ``benchmarks/bench_sketches.py``)."""
    entities: Future[int] = Future()

    def factorized() -> tuple[np.ndarray, np.ndarray]:
        try:
            encoded = encode_keys(keys)
        except BaseException as exc:
            entities.set_exception(exc)
            raise
        entities.set_result(len(encoded.dictionary))
        return sorted_codes(encoded)

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="hll-keys") as pool:
        keyed = pool.submit(factorized)
        hashes, valid = hash64_column(values)
        index, rank = index_rank(hashes if valid is None else hashes[valid], p)
        prepared = prepare(entities.result()) if prepare else None
        codes, uniques = keyed.result()
    if len(hashes) != len(codes):
        raise ValueError(f"keys ({len(codes)}) and values ({len(hashes)}) differ in length")
    return (codes if valid is None else codes[valid]), uniques, index, rank, prepared


def _zeroed_registers(n: int, p: int) -> np.ndarray:
    """A zero ``int8[n, 2**p]`` matrix with its pages already faulted in (the kernel zeroes a page on first
    touch: done while the keys are sorted, it is off the critical path)."""
    registers = np.zeros((n, 1 << p), dtype=np.int8)
    registers.reshape(-1)[::_PAGE_BYTES] = 0
    return registers


def hll_registers(keys: ColumnLike, values: ColumnLike, p: int = DEFAULT_P) -> tuple[np.ndarray, np.ndarray]:
    """``(unique_keys, registers int8[n_entities, 2**p])``: one HyperLogLog per distinct key, row-aligned.

    ``unique_keys`` is sorted. The whole value column is hashed at once and ranks are max-scattered into
    the matrix (``np.maximum.at``); no Python loop per row.
    """
    p = check_p(p)
    codes, uniques, index, rank, registers = entity_index_rank(keys, values, p,
                                                               prepare=lambda n: _zeroed_registers(n, p))
    np.maximum.at(registers.reshape(-1), (codes << p) | index, rank)  # the dense matrix is the output anyway
    logger.debug("hll_registers: %d rows, %d entities (p=%d)", len(codes), len(uniques), p)
    return uniques, registers


def hll_registers_single(values: ColumnLike, p: int = DEFAULT_P) -> np.ndarray:
    """Registers ``int8[2**p]`` of one sketch of all ``values`` (nulls skipped)."""
    p = check_p(p)
    hashes, valid = hash64_column(values)
    if valid is not None:
        hashes = hashes[valid]
    index, rank = index_rank(hashes, p)
    registers = np.zeros(1 << p, dtype=np.int8)
    np.maximum.at(registers, index, rank)
    return registers


def hll_merge(*registers: np.ndarray) -> np.ndarray:
    """Elementwise max of equally shaped register arrays: the sketch of the union, exactly."""
    if not registers:
        raise ValueError("hll_merge needs at least one register array")
    arrays = [np.asarray(r) for r in registers]
    if any(a.shape != arrays[0].shape for a in arrays):
        raise ValueError(f"cannot merge registers of shapes {sorted({a.shape for a in arrays})}")
    return np.maximum.reduce([a.astype(np.int8, copy=False) for a in arrays])


def hll_group_merge(keys: ColumnLike, registers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(unique_keys, registers)``: rows of ``registers`` with equal key max-merged (e.g. days -> window)."""
    registers = as_registers(registers)
    codes, uniques = factorize_keys(keys)
    if len(codes) != registers.shape[0]:
        raise ValueError(f"{len(codes)} keys for {registers.shape[0]} register rows")
    if len(codes) == 0:
        return uniques, registers[:0]
    order, offsets = group_bounds(codes, len(uniques))
    return uniques, np.maximum.reduceat(registers[order], offsets[:-1], axis=0)


def hll_estimate(registers: np.ndarray) -> np.ndarray:
    """Cardinality estimate ``float64[n]`` per row, equal to ``datasketch.HyperLogLog(reg=row).count()``."""
    registers = as_registers(registers)
    p = registers.shape[1].bit_length() - 1
    num_zero = registers.shape[1] - np.count_nonzero(registers, axis=1)
    inv_sum = np.ldexp(1.0, -registers.astype(np.int32)).sum(axis=1)
    return _estimate(inv_sum, num_zero, p)
