"""Reading features: point-in-time-correct training sets, online lookups, and materialisation.

Training sets (:func:`training_set`) come from Feast's offline store over the published as-of tables: for an
entity row at time t, the values of the latest as-of table whose ``event_timestamp`` <= t (a table of day D
is valid from D+1 00:00 UTC), never a later one; nothing (NaN) before the first table or more than the
view's ttl after the last. On Feast's file offline store the join is made straight from the published daily
files with the same semantics (:mod:`mlscale.feature_store.daily_files`: about 5 s less per view for 20,000 rows);
other offline stores answer through Feast. Three gaps of Feast 0.67's file (Dask) offline store are closed on
that path: it fails
("Divisions calculation failed") when an entity has no row at all in a view (such entities are not sent;
they get NaN); it silently drops entity rows that have no feature row at or before their time (they come
back with NaN); and it collapses duplicate (entity, time) rows and reorders rows (the result keeps the
caller's rows, order, index and extra columns such as labels). Each view is queried on its own.

Online lookups (:func:`online_features`) read what was last materialised. Materialisation copies, per
entity, the latest row of a time range into the online store and overwrites what is there: a range that
ends before what the online store holds rolls it back (see :func:`mlscale.feature_store.sync`).

Why explicit ranges (:func:`materialize`) and not ``materialize_incremental`` for backfills: Feast starts
an incremental run at the view's last materialised end, or, on a fresh store, at now − ttl. Backfilled days
older than that are silently skipped (and then count as materialised). :func:`materialize_incremental` is
kept for a scheduled "catch the online store up to now" path on a store that has been materialised before.

Feast's Dask computations run on a local thread pool (:func:`local_dask`), even inside a task that holds a
distributed client: the offline files are local to this machine.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from mlscale.feature_store.config import FeatureStoreError, feature_store_for
from mlscale.feature_store.definitions import TIMESTAMP_FIELD
from mlscale.feature_store.local_dask import local_dask

logger = logging.getLogger(__name__)


def _store(lake_or_store: Any) -> Any:
    from feast import FeatureStore

    return lake_or_store if isinstance(lake_or_store, FeatureStore) else feature_store_for(lake_or_store)


def feature_refs(features: Any) -> list[str]:
    """Feast feature references (``view:feature``) for feature sets, set names or references.

    Accepts one item or a list of: a :class:`mlscale.features.FeatureSet` (all its features, this version),
    a feature-set name (``"customer_activity"``: the current definition's version), or a reference
    ``"<view>:<feature>"`` as it is.
    """
    from mlscale.features import load_feature_set

    items = [features] if isinstance(features, str) or not isinstance(features, Iterable) else list(features)
    refs: list[str] = []
    for item in items:
        if isinstance(item, str) and ":" in item:
            refs.append(item)
            continue
        fs = load_feature_set(item) if isinstance(item, str) else item
        refs += [f"{fs.table}:{name}" for name in fs.feature_columns()]
    if not refs:
        raise FeatureStoreError("no features requested")
    return list(dict.fromkeys(refs))


def _views_of(refs: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(ref.split(":", 1)[0] for ref in refs))


def _full_names(refs: Sequence[str], full_feature_names: bool | None) -> bool:
    return len(_views_of(refs)) > 1 if full_feature_names is None else full_feature_names


def _column_names(refs: Sequence[str], full: bool) -> list[str]:
    return [ref.replace(":", "__", 1) if full else ref.split(":", 1)[1] for ref in refs]


def _join_keys(store: Any, views: Sequence[str]) -> list[str]:
    keys: list[str] = []
    for name in views:
        try:
            view = store.get_feature_view(name)
        except Exception as exc:  # FeatureViewNotFoundException and friends
            raise FeatureStoreError(f"feature view {name!r} is not registered in project {store.project!r}: "
                                    "publish and apply it first (sync_feature_store)") from exc
        keys += [c.name for c in view.entity_columns]
    return list(dict.fromkeys(keys))


def _view_names(store: Any, feature_sets: Any) -> list[str] | None:
    """View names for feature sets, set names or registered view names (None stays None: every view)."""
    if feature_sets is None:
        return None
    from mlscale.features import load_feature_set

    items = [feature_sets] if isinstance(feature_sets, str) or not isinstance(feature_sets, Iterable) else feature_sets
    names = []
    for item in items:
        if not isinstance(item, str):
            names.append(item.table)
        elif _is_view(store, item):
            names.append(item)
        else:
            names.append(load_feature_set(item).table)
    return names


def _is_view(store: Any, name: str) -> bool:
    try:
        store.get_feature_view(name)
        return True
    except Exception:  # FeatureViewNotFoundException
        return False


def _utc(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def materialize(store: Any, feature_sets: Any, start: dt.datetime, end: dt.datetime) -> dict[str, Any]:
    """Load, per entity, the latest row with ``start`` <= event_timestamp <= ``end`` into the online store.

    ``feature_sets``: feature sets, set names or view names (None: every view). To materialise the as-of
    tables of days A..B pass ``start=event_timestamp(A)``, ``end=event_timestamp(B)`` (both inclusive in
    Feast's file offline store). Naive datetimes are UTC.
    """
    import time

    from mlscale.feature_store.daily_files import daily_files_of, materialize_daily

    views = _view_names(store, feature_sets)
    started = time.perf_counter()
    names = views if views is not None else [v.name for v in store.list_feature_views()]
    direct = {name: directory for name in names if (directory := daily_files_of(store, name)) is not None}
    for name, directory in direct.items():  # Feast's file store over the daily files: written directly
        materialize_daily(store, name, directory, _utc(start), _utc(end))
    through_feast = [name for name in names if name not in direct]
    if through_feast:
        with local_dask():
            store.materialize(start_date=_utc(start), end_date=_utc(end), feature_views=through_feast)
    seconds = round(time.perf_counter() - started, 3)
    logger.info("materialized %s from %s to %s in %.2fs", views or "all views", start, end, seconds)
    return {"views": views, "start": _utc(start).isoformat(), "end": _utc(end).isoformat(), "seconds": seconds}


def materialize_incremental(store: Any, end: dt.datetime, feature_sets: Any = None) -> dict[str, Any]:
    """Feast's incremental materialisation up to ``end`` (from each view's last materialised end).

    For a store that has been materialised before; on a fresh store Feast starts at now − ttl and skips older
    days: use :func:`materialize` with an explicit range for backfills.
    """
    import time

    views = _view_names(store, feature_sets)
    started = time.perf_counter()
    with local_dask():
        store.materialize_incremental(end_date=_utc(end), feature_views=views)
    return {"views": views, "end": _utc(end).isoformat(), "seconds": round(time.perf_counter() - started, 3)}


def training_set(lake_or_store: Any, entity_df: Any, features: Any, *, full_feature_names: bool | None = None,
                 timestamp_column: str = TIMESTAMP_FIELD) -> Any:
    """Point-in-time-correct features for each row of ``entity_df`` (a pandas DataFrame).

    ``entity_df`` has the join key of every requested view (``customer_id``, ``merchant_id``...) and
    ``timestamp_column`` (the label time; naive values are UTC); other columns (labels) are kept. Each row
    gets the values of the latest as-of table valid at its time (event_timestamp <= t), NaN where none is.
    ``features``: see :func:`feature_refs`. Feature columns are named ``<view>__<feature>`` when more than one
    view is requested (``full_feature_names=None``), else by feature. Integer features come back as float
    when some row has no value. The result has ``entity_df``'s index, row order and columns first.
    """
    import pandas as pd

    store = _store(lake_or_store)
    refs = feature_refs(features)
    views = _views_of(refs)
    keys = _join_keys(store, views)
    missing = [c for c in keys + [timestamp_column] if c not in entity_df.columns]
    if missing:
        raise FeatureStoreError(f"entity_df lacks {missing}: it needs the join keys {keys} and {timestamp_column!r}")
    full = _full_names(refs, full_feature_names)
    columns = _column_names(refs, full)
    clash = [c for c in columns if c in entity_df.columns]
    if clash:
        raise FeatureStoreError(f"entity_df already has columns named like features: {clash}")
    times = pd.to_datetime(entity_df[timestamp_column], utc=True).astype("datetime64[ns, UTC]").reset_index(drop=True)
    values = pd.DataFrame(index=range(len(entity_df)))
    for view in views:
        view_refs = [r for r in refs if r.split(":", 1)[0] == view]
        key = _join_keys(store, [view])[0]
        rows = pd.DataFrame({key: entity_df[key].reset_index(drop=True), TIMESTAMP_FIELD: times})
        found = _historical(store, view, key, rows, view_refs, full)
        merged = rows.merge(found, on=[key, TIMESTAMP_FIELD], how="left", validate="many_to_one")
        for column in _column_names(view_refs, full):
            values[column] = merged[column].to_numpy()
    values = values[columns].set_axis(entity_df.index)
    return pd.concat([entity_df, values], axis=1)


def _historical(store: Any, view: str, key: str, rows: Any, refs: list[str], full: bool) -> Any:
    """The point-in-time join for one view, on the distinct (key, time) pairs it can answer: straight from the
    published daily files when the store is Feast's file store over them (:mod:`mlscale.feature_store.daily_files`),
    else through Feast.
    """
    from mlscale.feature_store.daily_files import asof_lookup, daily_files_of

    directory = daily_files_of(store, view)
    if directory is not None:  # Feast's file store over the published daily files: the same answer, directly
        ttl = store.get_feature_view(view).ttl
        features = [r.split(":", 1)[1] for r in refs]
        return asof_lookup(directory, key=key, query=rows.dropna().drop_duplicates(), features=features,
                           columns=_column_names(refs, full), ttl=ttl or None)
    return _feast_historical(store, view, key, rows, refs, full)


def _feast_historical(store: Any, view: str, key: str, rows: Any, refs: list[str], full: bool) -> Any:
    """Feast's own point-in-time retrieval (any offline store).

    Feast's Dask store fails ("Divisions calculation failed for non-numeric column '__event_timestamp'") when
    an entity has no row at all in the view, so only known entities are sent; one row known to match (an
    entity of the latest published file, at its time) keeps the join from being empty.
    """
    import pandas as pd
    import pyarrow.compute as pc
    import pyarrow.dataset as pds

    files = _published_files(store, view)
    known = pc.unique(pds.dataset(files, format="parquet").to_table(columns=[key]).column(key).combine_chunks())
    query = rows.dropna().drop_duplicates()
    query = query[query[key].isin(known.to_pandas())].reset_index(drop=True)
    columns = _column_names(refs, full)
    if query.empty:
        return pd.DataFrame({key: pd.Series([], dtype=rows[key].dtype),
                             TIMESTAMP_FIELD: pd.Series([], dtype="datetime64[ns, UTC]"),
                             **{c: pd.Series([], dtype="float64") for c in columns}})
    import pyarrow.parquet as pq

    first = pq.ParquetFile(files[-1]).read_row_group(0, columns=[key, TIMESTAMP_FIELD])
    sentinel = pd.DataFrame({key: [first.column(key)[0].as_py()],
                             TIMESTAMP_FIELD: [pd.Timestamp(first.column(TIMESTAMP_FIELD)[0].as_py())]})
    sentinel[TIMESTAMP_FIELD] = sentinel[TIMESTAMP_FIELD].astype("datetime64[ns, UTC]")
    # its answer is as correct as any other: the merge on (key, time) simply ignores it if nobody asked
    query = pd.concat([query, sentinel.astype(query.dtypes.to_dict())], ignore_index=True).drop_duplicates()
    with local_dask():
        found = store.get_historical_features(entity_df=query, features=refs, full_feature_names=full).to_df()
    found[TIMESTAMP_FIELD] = pd.to_datetime(found[TIMESTAMP_FIELD], utc=True).astype("datetime64[ns, UTC]")
    found[key] = found[key].astype(rows[key].dtype)
    return found[[key, TIMESTAMP_FIELD, *columns]].drop_duplicates(subset=[key, TIMESTAMP_FIELD], keep="last")


def _published_files(store: Any, view: str) -> list[str]:
    from mlscale.feature_store.config import store_paths

    directory = store_paths(store).offline_dir(view)
    files = sorted(f for f in os.listdir(directory) if f.endswith(".parquet")) if os.path.isdir(directory) else []
    if not files:
        raise FeatureStoreError(f"{view}: nothing is published under {directory} (publish_offline first)")
    return [os.path.join(directory, f) for f in files]


def online_features(store: Any, entity_rows: Any, features: Any, *, full_feature_names: bool | None = None) -> Any:
    """The online values of ``features`` for ``entity_rows`` (a DataFrame, a list of dicts, or a dict of lists).

    Returns a DataFrame with the entity columns and one column per feature (named as in
    :func:`training_set`), rows in the order given; None/NaN where the online store holds nothing.
    """
    import pandas as pd

    refs = feature_refs(features)
    if isinstance(entity_rows, pd.DataFrame):
        rows = entity_rows.to_dict("records")
    elif isinstance(entity_rows, Mapping):
        rows = pd.DataFrame(dict(entity_rows)).to_dict("records")
    else:
        rows = [dict(r) for r in entity_rows]
    if not rows:
        raise FeatureStoreError("no entity rows")
    full = _full_names(refs, full_feature_names)
    response = store.get_online_features(features=refs, entity_rows=rows, full_feature_names=full).to_dict()
    columns = _column_names(refs, full)
    keys = [c for c in response if c not in columns]
    return pd.DataFrame({c: response[c] for c in keys + columns})
