"""Model inputs for events: point-in-time features from the feature store plus features of the event row.

The same function builds the inputs of training, scoring and drift monitoring, so a model always sees its
features computed one way. Feature columns are named ``<view>__<feature>`` where the view carries the
feature-set version (``customer_activity_v1a2b3c4d__spend_sum_30d``): a model trained on one version of a
definition never silently reads another.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pyarrow as pa

from mlscale.training.spec import ModelSpec

logger = logging.getLogger(__name__)


def feature_sets_of(spec: ModelSpec) -> list[Any]:
    from mlscale.features import load_feature_set

    return [load_feature_set(name) for name in spec.feature_sets]


def feature_columns(spec: ModelSpec) -> list[str]:
    """The model's input columns, in a fixed order: feature-store features, then event features."""
    columns = [f"{fs.table}__{name}" for fs in feature_sets_of(spec) for name in fs.feature_columns()]
    return columns + [c for f in spec.event_features for c in f.columns()]


def event_features(events: Any, spec: ModelSpec) -> Any:
    """The event-row features of ``events`` (a pandas DataFrame) as a float64 DataFrame."""
    import pandas as pd

    out = event_feature_columns(events, spec)  # one frame at the end: inserting column by column fragments it
    block = np.column_stack(list(out.values())) if out else np.empty((len(events), 0))
    return pd.DataFrame(block, columns=list(out), index=events.index, copy=False)  # one float64 block


def event_feature_columns(events: Any, spec: ModelSpec) -> dict[str, np.ndarray]:
    """The event-row features, column name -> float64 array, of ``events``: anything that answers
    ``events[column]`` with a pandas Series or a NumPy array (a DataFrame in batch; in online scoring, the
    request's columns as arrays, without building a frame). Vectorised on NumPy: the same function scores a
    day of a million events and a request of one."""
    out: dict[str, np.ndarray] = {}
    for f in spec.event_features:
        column = events[f.column]
        if f.kind == "numeric":
            out[f.name] = _numbers(column)
        elif f.kind == "log1p":
            out[f.name] = np.log1p(np.clip(_numbers(column), 0, None))
        elif f.kind == "ratio":  # the event's value relative to an entity feature (e.g. amount / 30-day mean)
            denominator = _numbers(events[_feature_column(f.over)])
            with np.errstate(divide="ignore", invalid="ignore"):
                out[f.name] = np.where(denominator > 0, _numbers(column) / denominator, np.nan)
        elif f.kind == "hour":
            out[f.name] = _hours(column)
        elif f.kind == "recent_count":
            out[f.name] = recent_count(column, events[spec.event_time], f.minutes)
        elif f.kind == "bucket_distinct":
            out[f.name] = bucket_distinct(column, events[f.of], events[spec.event_time], f.minutes)
        else:  # one_hot over the declared values; an unknown value is all zeros
            text = _texts(column)
            for value in f.values:
                out[f"{f.name}_{value}"] = (text == value).astype("float64")
    return out


def _texts(column: Any) -> np.ndarray:
    """Object array of strings (None where missing), as pandas' ``string`` dtype would give them."""
    import pandas as pd

    if isinstance(column, np.ndarray) and column.dtype == object and all(v is None or isinstance(v, str) for v in column):
        return column
    series = column if isinstance(column, pd.Series) else pd.Series(column)
    return series.astype("string").to_numpy(dtype=object, na_value=None)


def _numbers(column: Any) -> np.ndarray:
    """float64 values of a column (anything not a number: NaN)."""
    import pandas as pd

    if isinstance(column, np.ndarray) and column.dtype.kind in "fiu":
        return column.astype(np.float64)
    if isinstance(column, pd.Series) and pd.api.types.is_numeric_dtype(column.dtype) \
            and not pd.api.types.is_bool_dtype(column.dtype):
        return column.to_numpy(dtype="float64", na_value=np.nan)
    return pd.to_numeric(pd.Series(column), errors="coerce").astype("float64").to_numpy()


def _epoch_seconds(times: Any) -> np.ndarray:
    """UTC epoch seconds (``datetime64[s]``, NaT where missing) of a time column (a NumPy ``datetime64`` array
    is taken as UTC)."""
    import pandas as pd

    if isinstance(times, np.ndarray) and times.dtype.kind == "M":
        return times.astype("datetime64[s]")
    series = times if isinstance(times, pd.Series) else pd.Series(times)
    if not isinstance(series.dtype, pd.DatetimeTZDtype):
        series = pd.to_datetime(series, utc=True)
    return series.dt.tz_convert(None).to_numpy().astype("datetime64[s]")


def _hours(times: Any) -> np.ndarray:
    seconds = _epoch_seconds(times)
    hours = (seconds.astype(np.int64) // 3600 % 24).astype(np.float64)
    hours[np.isnat(seconds)] = np.nan
    return hours


def _keyed_seconds(keys: Any, times: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(key codes, epoch seconds, rows with both a key and a time): what the windowed event features group on."""
    import pandas as pd

    seconds = _epoch_seconds(times)
    values = keys if isinstance(keys, np.ndarray) else pd.Series(keys).to_numpy()
    code = pd.factorize(values, use_na_sentinel=True)[0].astype(np.int64)
    return code, seconds.astype(np.int64), ~np.isnat(seconds) & (code >= 0)


def recent_count(keys: Any, times: Any, minutes: int) -> np.ndarray:
    """Per row: the rows with the same key whose time lies in the ``minutes`` before this row's (this row
    included), among the given rows — a velocity feature (payments of the card in the last hour). NaN where the
    key or time is missing. Vectorised: one sort, one binary search."""
    code, seconds, valid = _keyed_seconds(keys, times)
    out = np.full(len(code), np.nan)
    if not valid.any():
        return out
    t = seconds[valid]
    t = t - t.min()
    span = int(t.max()) + minutes * 60 + 1
    key = code[valid] * span + t  # groups never overlap: a key's times stay inside its own span
    order = np.argsort(key, kind="stable")
    ordered = key[order]
    first = np.searchsorted(ordered, ordered - minutes * 60, side="left")
    last = np.searchsorted(ordered, ordered, side="right")  # rows at the very same second count too
    counts = np.empty(len(order), dtype=np.float64)
    counts[order] = last - first
    out[valid] = counts
    return out


def bucket_distinct(keys: Any, values: Any, times: Any, minutes: int) -> np.ndarray:
    """Per row: the distinct ``values`` of the rows with the same key in the same clock-aligned ``minutes`` bucket
    (e.g. the merchants a card paid within this clock hour: card testing), among the given rows — a batch's
    events are all known when it is scored. Missing values are not counted; NaN where the key or time is missing."""
    import pandas as pd

    code, seconds, valid = _keyed_seconds(keys, times)
    out = np.full(len(code), np.nan)
    if not valid.any():
        return out
    bucket = seconds[valid] // (minutes * 60)
    group = pd.factorize(code[valid] * (int(bucket.max() - bucket.min()) + 1) + (bucket - bucket.min()))[0]
    raw = values if isinstance(values, np.ndarray) else pd.Series(values).to_numpy()
    value = pd.factorize(raw[valid], use_na_sentinel=True)[0].astype(np.int64)
    known = value >= 0
    pairs = np.unique(group[known].astype(np.int64) * (int(value.max()) + 1) + value[known])
    distinct = np.bincount(pairs // (int(value.max()) + 1), minlength=int(group.max()) + 1) if len(pairs) \
        else np.zeros(int(group.max()) + 1, dtype=np.int64)
    out[valid] = distinct[group].astype(np.float64)
    return out


def _feature_column(ref: str) -> str:
    from mlscale.features import load_feature_set

    set_name, feature = ref.split(".", 1)
    return f"{load_feature_set(set_name).table}__{feature}"


def entity_frame(events: pa.Table, spec: ModelSpec) -> pa.Table:
    """``events`` with the composite entity columns the feature sets join on (``customer_id|merchant_category``)."""
    from mlscale.features.partials import with_entity

    for fs in feature_sets_of(spec):
        events = with_entity(events, fs)
    return events


def model_inputs(store: Any, events: pa.Table, spec: ModelSpec) -> Any:
    """One row per event (same order): the event's key, time, entity keys, and every model input column.

    Features are looked up point in time at the event's time: each row gets the latest as-of table
    published before the event (the table of the previous day), so nothing from the event's own day or
    later leaks in. As-of tables are stamped at midnight, so the lookup is made once per (entity, day)
    — the answer at the event's time equals the answer at the start of its day.
    """
    import pandas as pd

    from mlscale.feature_store import training_set

    frame = entity_frame(events, spec).to_pandas()
    features = feature_columns(spec)
    if frame.empty:
        return frame.assign(**{c: pd.Series([], dtype="float64") for c in features})
    times = pd.to_datetime(frame[spec.event_time], utc=True)
    sets = feature_sets_of(spec)
    if sets:
        keys = list(dict.fromkeys(fs.entity for fs in sets))
        lookup = pd.DataFrame({k: frame[k] for k in keys}).assign(_day=times.dt.floor("D"))
        distinct = lookup.drop_duplicates().reset_index(drop=True)
        found = training_set(store, distinct, sets, full_feature_names=True, timestamp_column="_day")
        logger.info("point-in-time lookup: %d events, %d distinct (entity, day) pairs", len(frame), len(distinct))
        joined = lookup.merge(found, on=[*keys, "_day"], how="left", validate="many_to_one")
        looked_up = looked_up_columns(spec)
        values = {column: joined[column].to_numpy(dtype="float64", na_value=np.nan) for column in looked_up}
        frame = pd.concat([frame.drop(columns=[c for c in looked_up if c in frame]),
                           pd.DataFrame(values, index=frame.index)], axis=1)
    return with_event_features(frame, spec)


def with_event_features(frame: Any, spec: ModelSpec) -> Any:
    """``frame`` (events with their looked-up feature-store columns) plus the event features: the last step of
    the model inputs, shared by batch (:func:`model_inputs`) and online scoring (:mod:`mlscale.serving`)."""
    import pandas as pd

    derived = event_features(frame, spec)
    # one block per call, not one insert per column (a frame built column by column is slow to sort and copy)
    return pd.concat([frame.drop(columns=[c for c in derived.columns if c in frame]), derived], axis=1)


def looked_up_columns(spec: ModelSpec) -> list[str]:
    """The model input columns that come from the feature store (``<view>__<feature>``), in input order."""
    features = feature_columns(spec)
    return features[: len(features) - sum(len(f.columns()) for f in spec.event_features)]
