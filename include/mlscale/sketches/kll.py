"""Per-entity KLL quantile sketches (Apache DataSketches ``kll_doubles_sketch``) as serialised blobs.

Guarantees (those of the KLL sketch, Karnin-Lang-Liberty 2016, as implemented by DataSketches):

* Exact while an entity has at most ``k`` values: quantiles are then the exact inverse-CDF quantiles
  (``numpy.quantile(..., method="inverted_cdf")``).
* Beyond that, a returned quantile's true normalised rank is within :func:`kll_rank_error` of the asked
  rank with 99 % confidence (1.33 % at the default ``k = 200``), for every sketch, including merged ones.
* Merging sketches of day partials gives a sketch of the union with the same error bound.

Values are float64 (nulls and NaN are ignored). Grouping rows by entity is vectorised (one stable
argsort); building, merging and querying loop per entity (not per value): the library has no batch
API across independent sketches. Blobs are DataSketches' own serialisation, readable from Java/C++ too.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TypeAlias

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from datasketches import kll_doubles_sketch

from mlscale.sketches._columns import ColumnLike, factorize_keys, group_bounds, to_arrow

logger = logging.getLogger(__name__)

DEFAULT_K = 200
Blob: TypeAlias = bytes | None
Blobs: TypeAlias = Sequence[Blob] | pa.Array | pa.ChunkedArray


def kll_rank_error(k: int = DEFAULT_K) -> float:
    """Normalised rank error of a single quantile query, 99 % confidence (DataSketches' figure)."""
    return float(kll_doubles_sketch.get_normalized_rank_error(k, False))


def _as_float64(values: ColumnLike) -> np.ndarray:
    arr = to_arrow(values)
    if not (pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type) or pa.types.is_decimal(arr.type)
            or pa.types.is_null(arr.type) or pa.types.is_boolean(arr.type)):
        raise TypeError(f"KLL values must be numeric, not {arr.type}")
    return np.asarray(pc.cast(arr, pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64)


def _blob_list(blobs: Blobs) -> list[Blob]:
    if isinstance(blobs, (pa.Array, pa.ChunkedArray)):
        return blobs.to_pylist()
    return list(blobs)


def kll_sketches(keys: ColumnLike, values: ColumnLike, k: int = DEFAULT_K) -> tuple[np.ndarray, list[bytes]]:
    """``(unique_keys, blobs)``: one serialised KLL sketch per distinct key (sorted), row-aligned."""
    codes, uniques = factorize_keys(keys)
    data = _as_float64(values)
    if len(data) != len(codes):
        raise ValueError(f"keys ({len(codes)}) and values ({len(data)}) differ in length")
    order, offsets = group_bounds(codes, len(uniques))
    grouped = data[order]
    blobs = []
    for lo, hi in zip(offsets[:-1].tolist(), offsets[1:].tolist(), strict=True):  # per entity
        sketch = kll_doubles_sketch(k)
        sketch.update(grouped[lo:hi])
        blobs.append(sketch.serialize())
    logger.debug("kll_sketches: %d rows, %d entities (k=%d)", len(data), len(uniques), k)
    return uniques, blobs


def _merge_all(blobs: Sequence[Blob], k: int) -> bytes:
    merged = kll_doubles_sketch(k)
    for blob in blobs:
        if blob is not None:
            merged.merge(kll_doubles_sketch.deserialize(bytes(blob)))
    return merged.serialize()


def kll_merge(blob_lists: Sequence[Blobs], k: int = DEFAULT_K) -> list[bytes]:
    """Elementwise merge of row-aligned blob lists (e.g. each day's sketches of the same entities).

    ``None`` (an entity absent that day) counts as an empty sketch. Each result is a fresh ``k`` sketch
    with every input merged into it.
    """
    lists = [_blob_list(b) for b in blob_lists]
    if not lists:
        return []
    if any(len(b) != len(lists[0]) for b in lists):
        raise ValueError(f"blob lists differ in length: {[len(b) for b in lists]}")
    return [_merge_all(column, k) for column in zip(*lists, strict=True)]


def kll_group_merge(keys: ColumnLike, blobs: Blobs, k: int = DEFAULT_K) -> tuple[np.ndarray, list[bytes]]:
    """``(unique_keys, blobs)``: blobs with equal key merged, e.g. stacked daily partials -> one window."""
    codes, uniques = factorize_keys(keys)
    items = _blob_list(blobs)
    if len(items) != len(codes):
        raise ValueError(f"{len(codes)} keys for {len(items)} blobs")
    order, offsets = group_bounds(codes, len(uniques))
    ordered = [items[i] for i in order.tolist()]
    return uniques, [_merge_all(ordered[lo:hi], k)
                     for lo, hi in zip(offsets[:-1].tolist(), offsets[1:].tolist(), strict=True)]


def kll_quantiles(blobs: Blobs, ranks: Sequence[float] = (0.5, 0.95)) -> np.ndarray:
    """``float64[n, len(ranks)]``: inclusive quantiles (smallest value whose rank >= r) per sketch.

    Empty sketches and null blobs give NaN.
    """
    ranks = [float(r) for r in ranks]
    if any(not 0.0 <= r <= 1.0 for r in ranks):
        raise ValueError(f"ranks must lie in [0, 1], got {ranks}")
    items = _blob_list(blobs)
    out = np.full((len(items), len(ranks)), np.nan)
    for row, blob in enumerate(items):  # per entity: DataSketches has no batch query over sketches
        if blob is None:
            continue
        sketch = kll_doubles_sketch.deserialize(bytes(blob))
        if not sketch.is_empty():
            out[row] = sketch.get_quantiles(ranks, inclusive=True)
    return out


def kll_counts(blobs: Blobs) -> np.ndarray:
    """``int64[n]``: values summarised by each sketch (0 for null blobs)."""
    return np.array([0 if b is None else kll_doubles_sketch.deserialize(bytes(b)).n for b in _blob_list(blobs)],
                    dtype=np.int64)
