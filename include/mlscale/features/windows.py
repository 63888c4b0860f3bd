"""As-of feature tables: merge the daily partials of each window, never re-reading raw history.

The as-of table of day X holds, per entity active in the largest window, every feature as of the end of
X; its ``event_timestamp`` is X + 1 day 00:00 UTC, the moment from which the values are known.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pyarrow as pa
import pyarrow.compute as pc

from mlscale.features.definitions import KEY_SEPARATOR, Feature, FeatureSet
from mlscale.features.partials import UTC_TS, partial_columns


def merge_window(partials: list[pa.Table], fs: FeatureSet) -> pa.Table:
    """Merge partials (one table per day) into one row per entity, with the partials' merge rules."""
    from mlscale.features import sketch_columns as sketches

    entity = fs.entity
    tables = [p for p in partials if p.num_rows]
    if not tables:
        return pa.table({entity: pa.array([], pa.string())})
    table = pa.concat_tables(tables, promote_options="permissive")
    rules = partial_columns(fs)
    plain = [(name, rule) for name, rule in rules.items() if rule in ("sum", "max", "min")]
    grouped = table.group_by(entity, use_threads=False).aggregate(plain)
    grouped = grouped.rename_columns([c.rsplit("_", 1)[0] if c != entity else c for c in grouped.column_names])
    grouped = grouped.sort_by(entity)
    keys = table.column(entity).combine_chunks()
    for name, rule in rules.items():
        if rule == "hll":
            ents, blobs = sketches.hll_merge_blobs(keys, table.column(name).combine_chunks())
        elif rule == "kll":
            ents, blobs = sketches.kll_merge_blobs(keys, table.column(name).combine_chunks())
        else:
            continue
        grouped = grouped.append_column(name, pc.take(blobs, pc.index_in(grouped.column(entity), value_set=ents)))
    return grouped


#: the tables whose merge covers the days first..last (daily partials, or tiles: mlscale.features.tiles)
WindowSource = Callable[[dt.date, dt.date], list[pa.Table]]


def daily_source(partials_by_day: dict[dt.date, pa.Table]) -> WindowSource:
    """A window source of daily partials only (one table per day that has one)."""
    def tables(first: dt.date, last: dt.date) -> list[pa.Table]:
        days = [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]
        return [partials_by_day[d] for d in days if d in partials_by_day]
    return tables


def as_of_table(partials_by_day: dict[dt.date, pa.Table] | WindowSource, fs: FeatureSet, day: dt.date,
                first_seen: pa.Table) -> pa.Table:
    """Features of every entity active in ``fs.max_window`` days up to ``day``, from the daily partials (a
    dict by day) or any window source (tiles).

    ``first_seen`` (entity, first_seen) covers every entity ever seen up to ``day``.
    """
    entity = fs.entity
    windows = _all_windows(fs)
    source = daily_source(partials_by_day) if isinstance(partials_by_day, dict) else partials_by_day
    merged = _merge_nested(source, fs, day, windows)
    base = merged[max(windows)].select([entity])
    columns: dict[str, pa.Array] = {entity: base.column(entity)}
    for w in windows:
        columns.update(_window_columns(merged, w, base.column(entity), fs))
    for f in fs.point_features:
        if f.kind == "days_since_first_seen":
            columns[f.name] = _days_since_first_seen(base.column(entity), first_seen, entity, day)
    stamp = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), dt.UTC)
    columns["event_timestamp"] = pa.array([stamp] * base.num_rows, UTC_TS)
    ordered = [entity, "event_timestamp", *fs.feature_columns()]
    return pa.table(columns).select(ordered)


def _all_windows(fs: FeatureSet) -> list[int]:
    """Every window the feature set needs merged, ascending; the 1-day one always (last-day ratios)."""
    return sorted(set(fs.windows) | {w for f in fs.features for w in f.windows}
                  | {f.baseline_window for f in fs.point_features if f.baseline_window} | {1})


def _merge_nested(source: WindowSource, fs: FeatureSet, day: dt.date, windows: list[int]) -> dict[int, pa.Table]:
    """Window -> the merged partials of its days up to ``day``."""
    merged: dict[int, pa.Table] = {}
    previous = 0
    for w in windows:  # nested: the 30-day merge reuses the 7-day one, and adds the days before it
        fresh = source(day - dt.timedelta(days=w - 1), day - dt.timedelta(days=previous))
        merged[w] = merge_window(([merged[previous]] if previous else []) + fresh, fs)
        previous = w
    return merged


def _window_columns(merged: dict[int, pa.Table], w: int, entities: pa.Array, fs: FeatureSet) -> dict[str, pa.Array]:
    """The feature columns computed over window ``w``, aligned with ``entities``."""
    m = merged[w]
    idx = pc.index_in(entities, value_set=m.column(fs.entity))

    def col(name: str) -> pa.Array:
        return pc.take(m.column(name), idx) if m.num_rows else pa.nulls(len(idx), pa.float64())

    n = pc.fill_null(pc.cast(col("n"), pa.float64()), 0.0)
    columns: dict[str, pa.Array] = {}
    for f in fs.features:
        if w in fs.windows_of(f):
            columns.update(_feature_columns(f, w, col, n, m, idx, fs))
    for f in fs.point_features:
        if f.kind == "last_day_ratio" and w == f.baseline_window:
            last = _column_of(merged[1], f"sum_{f.column}", entities, fs.entity)
            mean_daily = pc.divide(pc.fill_null(col(f"sum_{f.column}"), 0.0), float(w))
            columns[f.name] = _ratio(last, mean_daily)
    return columns


def _feature_columns(f: Feature, w: int, col: Callable[[str], pa.Array], n: pa.Array, m: pa.Table,
                     idx: pa.Array, fs: FeatureSet) -> dict[str, pa.Array]:
    """One windowed feature's column(s) over window ``w`` (``col`` reads a merged column per entity, ``n`` is
    the entities' event counts)."""
    from mlscale.features import sketch_columns as sketches

    out = f"{f.name}_{w}d"
    if f.kind == "category_share":
        return {f"{f.name}_{label}_{w}d": _ratio(pc.cast(col(f"cat_{f.name}_{label}"), pa.float64()), n)
                for label in f.labels()}
    if f.kind == "share_of_parent":
        return {out: pc.take(_share_of_parent(m, fs, f"sum_{f.column}"), idx) if m.num_rows else
                pa.nulls(len(idx), pa.float64())}
    if f.kind == "count":
        return {out: pc.cast(n, pa.int64())}
    if f.kind == "sum":
        return {out: pc.fill_null(col(f"sum_{f.column}"), 0.0)}
    if f.kind == "mean":
        return {out: _ratio(col(f"sum_{f.column}"), n)}
    if f.kind in ("max", "min"):
        return {out: col(f"{f.kind}_{f.column}")}
    if f.kind == "share":
        return {out: _ratio(pc.cast(col(f"n_{f.predicate}"), pa.float64()), n)}
    if f.kind == "distinct":
        return {out: pa.array(sketches.hll_estimate_blobs(col(f"hll_{f.column}")), pa.float64())}
    if f.kind == "quantile":
        return {out: pa.array(sketches.kll_quantile_blobs(col(f"kll_{f.column}"), float(f.q or 0.5)), pa.float64())}
    return {}


def _column_of(m: pa.Table, name: str, entities: pa.Array, entity: str) -> pa.Array:
    """``m``'s column ``name`` aligned with ``entities``, 0.0 where an entity has no row."""
    aligned = pc.take(m.column(name), pc.index_in(entities, value_set=m.column(entity))) if m.num_rows else \
        pa.nulls(len(entities), pa.float64())
    return pc.fill_null(aligned, 0.0)


def _days_since_first_seen(entities: pa.Array, first_seen: pa.Table, entity: str, day: dt.date) -> pa.Array:
    """Whole days from each entity's first event to the end of ``day``."""
    seen = pc.take(first_seen.column("first_seen"), pc.index_in(entities, value_set=first_seen.column(entity)))
    end = pa.scalar(dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), dt.UTC), UTC_TS)
    age_us = pc.cast(pc.subtract(end, seen), pa.int64())
    return pc.cast(pc.divide(age_us, 86_400_000_000), pa.int64())


def update_first_seen(previous: pa.Table | None, partial: pa.Table, fs: FeatureSet) -> pa.Table:
    """Every entity ever seen with its first event time: yesterday's table merged with today's partial."""
    today = partial.select([fs.entity, "first_seen"])
    if previous is not None and previous.num_rows:
        today = pa.concat_tables([previous.select([fs.entity, "first_seen"]), today])
    if today.num_rows == 0:
        return pa.table({fs.entity: pa.array([], pa.string()), "first_seen": pa.array([], UTC_TS)})
    out = today.group_by(fs.entity, use_threads=False).aggregate([("first_seen", "min")])
    return out.rename_columns([fs.entity, "first_seen"]).sort_by(fs.entity)


def _share_of_parent(merged: pa.Table, fs: FeatureSet, column: str) -> pa.Array:
    """Each composite entity's ``column`` total as a share of its parent's (the first key part), e.g. a
    customer's spend in one merchant category over the customer's spend in all categories."""
    parent = pc.list_element(pc.split_pattern(merged.column(fs.entity), KEY_SEPARATOR, max_splits=1), 0)
    values = pc.fill_null(merged.column(column), 0.0)
    totals = pa.table({"parent": parent, "v": values}).group_by("parent", use_threads=False).aggregate([("v", "sum")])
    parent_total = pc.take(totals.column("v_sum"), pc.index_in(parent, value_set=totals.column("parent")))
    return _ratio(values, parent_total)


def _ratio(num: pa.Array, den: pa.Array) -> pa.Array:
    den = pc.cast(den, pa.float64())
    safe = pc.if_else(pc.equal(den, 0.0), pa.scalar(None, pa.float64()), den)
    return pc.divide(pc.cast(num, pa.float64()), safe)
