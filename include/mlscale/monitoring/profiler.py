"""Build :class:`~mlscale.monitoring.profile.FeatureProfile` s from Arrow/pandas tables and Dask DataFrames.

``profile_table`` is vectorised: per column one pass of pyarrow/NumPy kernels (null mask, histogram on
the edges, moments, ``pyarrow.compute.value_counts``) and one batch update of the KLL sketch; no Python
loop runs per row. ``profile_dask`` runs ``profile_table`` on each partition on the workers and merges
the partition profiles in a tree, so the client only ever holds profiles (a few KiB per column).

Reference and current profiles must share bin edges for PSI: profile the reference with ``edges=None``
(edges at the 0, 5, ..., 100 % quantiles of the reference, from its sketch) and the current data with
``edges=reference_edges(reference)``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from datasketches import kll_doubles_sketch

from mlscale.monitoring.profile import (
    DEFAULT_BINS,
    DEFAULT_KLL_K,
    DEFAULT_MAX_CATEGORIES,
    CategoricalSummary,
    ColumnSummary,
    FeatureProfile,
    NumericSummary,
    cap_categories,
    edges_from_sketch,
    merge_profiles,
    merge_sketches,
)

if TYPE_CHECKING:
    import dask.dataframe as dd
    from distributed import Client

logger = logging.getLogger(__name__)

Kind = Literal["numeric", "categorical"]
TableLike: TypeAlias = pa.Table | pd.DataFrame
Edges: TypeAlias = Mapping[str, Sequence[float]]


class UnsupportedColumnError(TypeError):
    """A requested column has a type that cannot be profiled (neither numeric nor categorical)."""


def _arrow_kind(dtype: pa.DataType) -> Kind | None:
    if pa.types.is_dictionary(dtype):
        return "categorical"
    if pa.types.is_integer(dtype) or pa.types.is_floating(dtype) or pa.types.is_decimal(dtype):
        return "numeric"
    if pa.types.is_string(dtype) or pa.types.is_large_string(dtype) or pa.types.is_boolean(dtype):
        return "categorical"
    return None


def _pandas_kind(dtype: Any) -> Kind | None:
    if pd.api.types.is_bool_dtype(dtype) or isinstance(dtype, pd.CategoricalDtype):
        return "categorical"
    if pd.api.types.is_numeric_dtype(dtype):
        return "numeric"
    if pd.api.types.is_string_dtype(dtype) or pd.api.types.is_object_dtype(dtype):
        return "categorical"
    return None


def resolve_kinds(schema: Mapping[str, Any], columns: Sequence[str] | None, categorical: Sequence[str],
                  edges: Edges | None, kind_of: Any) -> dict[str, Kind]:
    """Kind of each monitored column, in table order (``columns=None``: every supported column)."""
    forced = set(categorical)
    kinds: dict[str, Kind] = {}
    for name in (columns if columns is not None else list(schema)):
        if name not in schema:
            raise KeyError(f"column {name!r} is not in the table (has {list(schema)[:20]})")
        kind: Kind | None = "categorical" if name in forced else kind_of(schema[name])
        if kind is None and edges is not None and name in edges:
            kind = "numeric"
        if kind is None:
            if columns is not None:
                raise UnsupportedColumnError(f"column {name!r} has type {schema[name]}, neither numeric nor "
                                             "categorical; cast it or leave it out of columns=")
            logger.debug("profile: skipping column %r of type %s", name, schema[name])
            continue
        kinds[name] = kind
    return kinds


def _as_table(data: TableLike) -> pa.Table:
    return data if isinstance(data, pa.Table) else pa.Table.from_pandas(data, preserve_index=False)


def _numeric_values(column: pa.ChunkedArray) -> np.ndarray:
    """Non-null float64 values (nulls and NaN removed)."""
    arr = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    if arr.type != pa.float64():
        arr = pc.cast(arr, pa.float64())
    if arr.null_count:
        arr = pc.drop_null(arr)
    values = np.asarray(arr.to_numpy(zero_copy_only=False), dtype=np.float64)
    nan = np.isnan(values)
    return values[~nan] if nan.any() else values


def _sketch(values: np.ndarray, k: int) -> bytes:
    sketch = kll_doubles_sketch(k)
    if len(values):  # the binding accepts only writable contiguous float64 (Arrow buffers are read-only)
        sketch.update(values if values.flags.writeable and values.flags.c_contiguous else values.copy())
    return bytes(sketch.serialize())


def _numeric_summary(column: pa.ChunkedArray, edges: Sequence[float] | None, k: int, bins: int) -> NumericSummary:
    values = _numeric_values(column)
    blob = _sketch(values, k)
    inner = tuple(float(e) for e in edges) if edges is not None else edges_from_sketch(blob, bins)
    if any(b <= a for a, b in zip(inner, inner[1:], strict=False)) or not all(np.isfinite(inner)):
        raise ValueError(f"bin edges must be finite and strictly increasing, got {inner[:10]}...")
    bounds = np.concatenate([[-np.inf], np.asarray(inner, dtype=np.float64), [np.inf]])
    hist = np.histogram(values, bounds)[0]
    finite = values[np.isfinite(values)] if len(values) else values
    n = int(len(finite))
    mean = float(finite.mean()) if n else None
    m2 = float(np.square(finite - mean).sum()) if n else None
    return NumericSummary(count=int(len(values)), nulls=len(column) - int(len(values)), edges=inner,
                          hist=tuple(int(c) for c in hist), kll=blob, finite=n, mean=mean, m2=m2,
                          min=float(values.min()) if len(values) else None,
                          max=float(values.max()) if len(values) else None)


def _categorical_summary(column: pa.ChunkedArray, max_categories: int) -> CategoricalSummary:
    nulls = int(column.null_count)
    counts = pc.value_counts(column.combine_chunks() if column.num_chunks != 1 else column.chunk(0))
    values, freq = counts.field("values"), counts.field("counts")
    if pa.types.is_dictionary(values.type):
        values = values.dictionary_decode()
    valid = pc.is_valid(values)
    values, freq = pc.filter(values, valid), pc.filter(freq, valid)
    if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
        values = pc.cast(values, pa.string())
    # top max_categories + 1 by count (ties by value), vectorised, before anything becomes Python objects
    order = pc.sort_indices(pa.table({"n": freq, "v": values}),
                            sort_keys=[("n", "descending"), ("v", "ascending")])
    top = order[: max_categories + 1]
    kept, dropped = cap_categories(zip(pc.take(values, top).to_pylist(), pc.take(freq, top).to_pylist(),
                                       strict=True), max_categories)
    total = int(pc.sum(freq).as_py() or 0)
    return CategoricalSummary(count=total, nulls=nulls, values=kept,
                              other=total - sum(n for _, n in kept))


def _profile_kinds(table: pa.Table, kinds: Mapping[str, Kind], edges: Edges | None, *, kll_k: int,
                   max_categories: int, bins: int) -> FeatureProfile:
    summaries: dict[str, ColumnSummary] = {}
    for name, kind in kinds.items():
        column = table.column(name)
        if kind == "numeric":
            summaries[name] = _numeric_summary(column, None if edges is None else edges.get(name), kll_k, bins)
        else:
            summaries[name] = _categorical_summary(column, max_categories)
    return FeatureProfile(rows=table.num_rows, columns=summaries, kll_k=kll_k, max_categories=max_categories)


def profile_table(data: TableLike, columns: Sequence[str] | None = None, edges: Edges | None = None, *,
                  categorical: Sequence[str] = (), kll_k: int = DEFAULT_KLL_K,
                  max_categories: int = DEFAULT_MAX_CATEGORIES, bins: int = DEFAULT_BINS) -> FeatureProfile:
    """Profile ``data`` (a pyarrow Table or pandas DataFrame) in one vectorised pass per column.

    Parameters
    ----------
    columns
        Columns to monitor, in this order; ``None``: every numeric, string, boolean and dictionary column.
    edges
        Inner bin edges per numeric column (usually ``reference_edges(reference)``). A numeric column
        missing here gets edges at the ``0, 1/bins, ..., 1`` quantiles of its own sketch.
    categorical
        Columns to treat as categorical whatever their type (e.g. integer codes).

    Returns a profile whose ``rows`` is ``len(data)``; each column's ``count + nulls == rows``.
    """
    table = _as_table(data)
    kinds = resolve_kinds({f.name: f.type for f in table.schema}, columns, categorical, edges, _arrow_kind)
    return _profile_kinds(table, kinds, edges, kll_k=kll_k, max_categories=max_categories, bins=bins)


def _partition_profile(part: pd.DataFrame, kinds: Mapping[str, Kind], edges: Edges | None, kll_k: int,
                       max_categories: int, bins: int) -> FeatureProfile:
    table = pa.Table.from_pandas(part[list(kinds)], preserve_index=False)
    return _profile_kinds(table, kinds, edges, kll_k=kll_k, max_categories=max_categories, bins=bins)


def _partition_sketches(part: pd.DataFrame, names: Sequence[str], kll_k: int) -> dict[str, bytes]:
    table = pa.Table.from_pandas(part[list(names)], preserve_index=False)
    return {name: _sketch(_numeric_values(table.column(name)), kll_k) for name in names}


def _merge_sketch_maps(*maps: dict[str, bytes], kll_k: int) -> dict[str, bytes]:
    return {name: merge_sketches([m[name] for m in maps], kll_k) for name in maps[0]}


def _tree_reduce(items: list[Any], fn: Any, split_every: int, **kwargs: Any) -> Any:
    from dask import delayed

    while len(items) > 1:
        items = [delayed(fn)(*items[i:i + split_every], **kwargs) for i in range(0, len(items), split_every)]
    return items[0]


def _compute(obj: Any, client: Client | None) -> Any:
    import dask

    return client.compute(obj).result() if client is not None else dask.compute(obj)[0]


def profile_dask(ddf: dd.DataFrame, columns: Sequence[str] | None = None, edges: Edges | None = None, *,
                 categorical: Sequence[str] = (), kll_k: int = DEFAULT_KLL_K,
                 max_categories: int = DEFAULT_MAX_CATEGORIES, bins: int = DEFAULT_BINS,
                 client: Client | None = None, split_every: int = 8) -> FeatureProfile:
    """Profile a Dask DataFrame on its workers; equal to ``profile_table`` of the whole frame.

    Counts (rows, nulls, histogram, categories below the cap) are exactly those of ``profile_table`` on
    the concatenated data; sketches agree within KLL's rank error. Numeric columns without ``edges``
    take one extra pass: partition sketches are merged first and the edges derived from the merged
    sketch, so every partition bins on the same edges. Runs on ``client`` if given, else on Dask's
    current scheduler.
    """
    from dask import delayed

    kinds = resolve_kinds(dict(ddf._meta.dtypes.items()), columns, categorical, edges, _pandas_kind)
    parts = ddf[list(kinds)].to_delayed()
    full_edges: dict[str, Sequence[float]] = dict(edges or {})
    missing = [n for n, kind in kinds.items() if kind == "numeric" and n not in full_edges]
    if missing:
        maps = [delayed(_partition_sketches)(p, missing, kll_k) for p in parts]
        merged = _compute(_tree_reduce(maps, _merge_sketch_maps, split_every, kll_k=kll_k), client)
        full_edges.update({name: edges_from_sketch(blob, bins) for name, blob in merged.items()})
    profiles = [delayed(_partition_profile)(p, kinds, full_edges, kll_k, max_categories, bins) for p in parts]
    result: FeatureProfile = _compute(_tree_reduce(profiles, merge_profiles, split_every), client)
    logger.info("profile_dask: %d partitions, %d rows, %d columns", len(parts), result.rows, len(kinds))
    return result
