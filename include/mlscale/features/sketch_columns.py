"""Sketch columns of feature partials: per-entity HyperLogLog and KLL blobs as Arrow binary columns.

A thin layer over :mod:`mlscale.sketches` that speaks Arrow in and out, so partials and windows can
align sketch columns with their other aggregates by entity.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from mlscale import sketches


def _keys(uniques: np.ndarray) -> pa.Array:
    return pa.array(uniques.tolist() if uniques.dtype == object else uniques, pa.string())


def hll_blobs(keys: pa.Array, values: pa.Array) -> tuple[pa.Array, pa.Array]:
    """(entities, HLL blob per entity) of the distinct non-null ``values`` each entity has."""
    uniques, blobs = sketches.hll_sketches(keys, values)
    return _keys(uniques), blobs


def hll_merge_blobs(keys: pa.Array, blobs: pa.Array) -> tuple[pa.Array, pa.Array]:
    uniques, merged = sketches.hll_merge_binary(keys, blobs)
    return _keys(uniques), merged


def hll_estimate_blobs(blobs: pa.Array) -> np.ndarray:
    """Distinct-count estimates; a missing sketch (entity absent from the window) counts 0."""
    return sketches.hll_estimate_binary(blobs)


def kll_blobs(keys: pa.Array, values: pa.Array) -> tuple[pa.Array, pa.Array]:
    uniques, blobs = sketches.kll_sketches(keys, values)
    return _keys(uniques), pa.array(blobs, pa.binary())


def kll_merge_blobs(keys: pa.Array, blobs: pa.Array) -> tuple[pa.Array, pa.Array]:
    uniques, merged = sketches.kll_group_merge(keys, blobs.to_pylist())
    return _keys(uniques), pa.array(merged, pa.binary())


def kll_quantile_blobs(blobs: pa.Array, q: float) -> np.ndarray:
    return sketches.kll_quantiles(blobs.to_pylist(), [q])[:, 0]
