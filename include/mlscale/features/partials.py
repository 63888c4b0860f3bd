"""Daily partials: per entity and *event* day, the mergeable aggregates every feature is built from.

A partial of event day E holds, per entity: counts, sums, min/max, predicate counts, the first event time,
HyperLogLog registers and KLL sketches. It is computed from the raw drops that can hold events of E (drop
days E .. E + lateness), so late events correct the partial of their own day on a later run.
"""

from __future__ import annotations

import datetime as dt
import logging

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mlscale.features.definitions import KEY_SEPARATOR, FeatureSet
from mlscale.lake import Lake, PartitionRef

logger = logging.getLogger(__name__)
UTC_TS = pa.timestamp("us", tz="UTC")


def event_day_rows(lake: Lake, fs: FeatureSet, event_day: dt.date, *, last_drop_day: dt.date,
                   lateness_days: int) -> tuple[pa.Table, list[str]]:
    """Raw rows whose event time falls on ``event_day``, from drops ``event_day .. last_drop_day``
    (at most ``lateness_days`` after it). Returns the rows and the raw partitions read."""
    start = dt.datetime.combine(event_day, dt.time(), dt.UTC)
    tables, read = [], []
    for offset in range(lateness_days + 1):
        drop = event_day + dt.timedelta(days=offset)
        if drop > last_drop_day:
            break
        ref = PartitionRef.of("raw", fs.source_dataset, drop)
        if lake.manifest(ref) is None:
            continue
        table = lake.read_table(ref, columns=fs.source_columns())
        ts = table.column(fs.event_time)
        mask = pc.and_(pc.greater_equal(ts, pa.scalar(start, UTC_TS)),
                       pc.less(ts, pa.scalar(start + dt.timedelta(days=1), UTC_TS)))
        tables.append(table.filter(mask))
        read.append(ref.key)
    if not tables:
        return pa.schema([]).empty_table(), read
    return pa.concat_tables(tables, promote_options="permissive"), read


def partial_columns(fs: FeatureSet) -> dict[str, str]:
    """The partial's aggregate columns and how they merge across days (sum, max, min, hll, kll)."""
    cols: dict[str, str] = {"n": "sum", "first_seen": "min"}
    for f in fs.features + fs.point_features:
        if f.kind in ("sum", "mean", "last_day_ratio"):
            cols[f"sum_{f.column}"] = "sum"
        elif f.kind == "max":
            cols[f"max_{f.column}"] = "max"
        elif f.kind == "min":
            cols[f"min_{f.column}"] = "min"
        elif f.kind == "share":
            cols[f"n_{f.predicate}"] = "sum"
        elif f.kind == "distinct":
            cols[f"hll_{f.column}"] = "hll"
        elif f.kind == "quantile":
            cols[f"kll_{f.column}"] = "kll"
        elif f.kind == "share_of_parent":
            cols[f"sum_{f.column}"] = "sum"
        elif f.kind == "category_share":
            for label in f.labels():
                cols[f"cat_{f.name}_{label}"] = "sum"
    return cols


def category_indicator(rows: pa.Table, feature, label: str) -> pa.Array:
    """1 where the row's category is ``label`` (one-hot) or hashes to bucket ``label`` (hash trick)."""
    values = rows.column(feature.column).combine_chunks()
    if feature.encoding == "onehot":
        hit = pc.equal(values, label)
    else:
        from mlscale.sketches import hash64_column

        hashes, valid = hash64_column(values)
        buckets = (hashes % np.uint64(feature.width)).astype(np.int64)
        bucket = np.where(valid, buckets, -1) if valid is not None else buckets
        hit = pa.array(bucket == int(label[1:]))
    return pc.cast(pc.fill_null(hit, False), pa.int64())


def with_entity(rows: pa.Table, fs: FeatureSet) -> pa.Table:
    """Add the composite entity column (``customer_id|merchant_category``) when the set declares one."""
    if not fs.entity_from or fs.entity in rows.column_names:
        return rows
    parts = [pc.cast(rows.column(c), pa.string()) for c in fs.entity_from]
    return rows.append_column(fs.entity, pc.binary_join_element_wise(*parts, KEY_SEPARATOR))


def daily_partials(rows: pa.Table, fs: FeatureSet) -> pa.Table:
    """Aggregate one event day's rows per entity (sorted by entity, deterministic)."""
    from mlscale.features import sketch_columns as sketches

    entity = fs.entity
    if rows.num_rows == 0:
        return _empty_partials(fs)
    rows = with_entity(rows, fs)
    rows = rows.filter(pc.is_valid(rows.column(entity)))
    derived = {"night": pc.less(pc.hour(rows.column(fs.event_time)), 6)}
    if "channel" in rows.column_names:
        derived["ecom"] = pc.equal(rows.column("channel"), "ecom")
    aggregations = [(fs.event_time, "count", "n"), (fs.event_time, "min", "first_seen")]
    work = rows
    for name, merge in partial_columns(fs).items():
        if merge in ("hll", "kll") or name in ("n", "first_seen"):
            continue
        kind, _, source = name.partition("_")
        if kind == "cat":
            feature_name, _, label = source.rpartition("_")
            feature = next(f for f in fs.features if f.name == feature_name)
            work = work.append_column(name, category_indicator(rows, feature, label))
            aggregations.append((name, "sum", name))
        elif kind == "n":
            work = work.append_column(name, pc.cast(derived[source], pa.int64()))
            aggregations.append((name, "sum", name))
        else:
            aggregations.append((source, {"sum": "sum", "max": "max", "min": "min"}[kind], name))
    grouped = work.group_by(entity, use_threads=False).aggregate([(c, f) for c, f, _ in aggregations])
    rename = {f"{c}_{f}": out for c, f, out in aggregations}
    grouped = grouped.rename_columns([rename.get(c, c) for c in grouped.column_names])
    grouped = grouped.sort_by(entity)
    keys = rows.column(entity).combine_chunks()
    for name, merge in partial_columns(fs).items():
        if merge not in ("hll", "kll"):
            continue
        values = rows.column(name.partition("_")[2]).combine_chunks()
        build = sketches.hll_blobs if merge == "hll" else sketches.kll_blobs
        ents, blobs = build(keys, values)
        grouped = grouped.append_column(name, _align(grouped.column(entity), ents, blobs))
    return grouped.select([entity, *partial_columns(fs)])


def _align(entities: pa.ChunkedArray, ents: pa.Array, blobs: pa.Array) -> pa.Array:
    index = pc.index_in(entities, value_set=ents)
    return pc.take(blobs, index)


def _empty_partials(fs: FeatureSet) -> pa.Table:
    types = {"sum": pa.float64(), "max": pa.float64(), "min": pa.float64(), "hll": pa.binary(), "kll": pa.binary()}
    fields = [pa.field(fs.entity, pa.string()), pa.field("n", pa.int64()), pa.field("first_seen", UTC_TS)]
    for name, merge in partial_columns(fs).items():
        if name in ("n", "first_seen"):
            continue
        fields.append(pa.field(name, pa.int64() if name.startswith(("n_", "cat_")) else types[merge]))
    return pa.schema(fields).empty_table()


__all__ = ["daily_partials", "event_day_rows", "partial_columns", "np"]
