"""Mergeable per-entity sketches for incremental features: distinct counts (HyperLogLog) and quantiles (KLL).

Daily partials are built per entity from a day's rows, stored as a binary Parquet column, and merged over
1/7/30/90-day windows; merging is exact for HyperLogLog and keeps the error bound for KLL.

* :mod:`~mlscale.sketches.hashing`: the 64-bit value hash, vectorised, and its scalar twin ``hll_hash``.
* :mod:`~mlscale.sketches.hll`: dense registers, interchangeable with ``datasketch.HyperLogLog``.
* :mod:`~mlscale.sketches.hll_binary`: the blob format (dense or sparse) and blob-to-blob merging.
* :mod:`~mlscale.sketches.kll`: DataSketches KLL quantile sketches per entity.
"""

from mlscale.sketches.hashing import hash64_column, hll_hash, hll_hash64, hll_hash_array
from mlscale.sketches.hll import (
    DEFAULT_P,
    SparseRegisters,
    hll_estimate,
    hll_group_merge,
    hll_merge,
    hll_registers,
    hll_registers_single,
)
from mlscale.sketches.hll_binary import (
    hll_estimate_binary,
    hll_merge_binary,
    hll_sketches,
    registers_from_binary,
    registers_to_binary,
)
from mlscale.sketches.kll import (
    DEFAULT_K,
    kll_counts,
    kll_group_merge,
    kll_merge,
    kll_quantiles,
    kll_rank_error,
    kll_sketches,
)

__all__ = [
    "DEFAULT_K", "DEFAULT_P", "SparseRegisters", "hash64_column", "hll_estimate", "hll_estimate_binary",
    "hll_group_merge", "hll_hash", "hll_hash64", "hll_hash_array", "hll_merge", "hll_merge_binary",
    "hll_registers", "hll_registers_single", "hll_sketches", "kll_counts", "kll_group_merge", "kll_merge",
    "kll_quantiles", "kll_rank_error", "kll_sketches", "registers_from_binary", "registers_to_binary",
]
