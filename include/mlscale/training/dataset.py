"""Training sets: labelled events with point-in-time features, split by event time, committed to the lake.

``training/<model>/dt=D/split=train|validation|holdout/`` holds, for the labelled events of the
``history_days`` up to D, the event key and time, the label, the entity keys and every model input. Only
labels reported before the cut-off (D+1 00:00 UTC) are used, so a rerun for D reads exactly what was known
then. The split is by event time, oldest first (never random across time). The training set's identity is
its fingerprint: the committed files' checksums, the feature-set versions, the label cut-off and the model
specification's version. Rebuilding D with the same inputs commits the same rows and the same fingerprint.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mlscale.lake import Lake, Manifest, PartitionRef, parse_day
from mlscale.training.inputs import feature_columns, feature_sets_of, model_inputs
from mlscale.training.spec import SPLITS, ModelSpec

logger = logging.getLogger(__name__)

LABEL = "label"


class TrainingDataError(RuntimeError):
    """The training set cannot be built as asked (no labels, a split without positives...)."""


@dataclass(frozen=True)
class TrainingSet:
    partition: str
    fingerprint: str
    label_cutoff: str
    first_event_day: str
    last_event_day: str
    rows: dict[str, int]
    positives: dict[str, int]
    feature_set_versions: dict[str, str]
    spec_version: str
    inputs: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def training_ref(spec: ModelSpec, day: str | dt.date) -> PartitionRef:
    return PartitionRef.of("training", spec.name, parse_day(day))


def label_cutoff(day: str | dt.date) -> dt.datetime:
    """Labels reported before this instant (the end of day D, UTC) belong to the training set of D."""
    return dt.datetime.combine(parse_day(day) + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)


def latest_labels(lake: Lake, spec: ModelSpec, first: dt.date, last: dt.date) -> tuple[pa.Table, list[str]]:
    """The latest label per event reported before the cut-off of ``last``; and the label partitions read."""
    cutoff = label_cutoff(last)
    refs = lake.partition_days("raw", spec.label_dataset, first.isoformat(), last.isoformat())
    columns = [spec.label_key, spec.label_column, spec.label_time]
    tables = [lake.read_table(r, columns=columns) for r in refs]
    if not tables:
        return pa.table({c: pa.array([], pa.string()) for c in columns}), []
    labels = pa.concat_tables(tables, promote_options="permissive")
    labels = labels.filter(pc.less(labels.column(spec.label_time), pa.scalar(cutoff, labels.schema.field(spec.label_time).type)))
    return last_per_key(labels, spec.label_key, spec.label_time), [lake.uri(r.key) for r in refs]


def last_per_key(table: pa.Table, key: str, time: str) -> pa.Table:
    """The row of each ``key`` with the latest ``time`` (on a tie, the one read last): a later report corrects an
    earlier one. Ordered by ``(time, key)``."""
    # Arrow's sort is stable: equal (time, key) rows keep the order they were read in
    ordered = table.take(pc.sort_indices(table, sort_keys=[(time, "ascending"), (key, "ascending")]))
    ordered = ordered.append_column("_pos", pa.array(range(table.num_rows), pa.int64()))
    last = ordered.select([key, "_pos"]).group_by(key, use_threads=False).aggregate([("_pos", "max")])
    return ordered.take(pa.array(np.sort(last.column("_pos_max").to_numpy()))).drop_columns(["_pos"])


def labelled_events(lake: Lake, spec: ModelSpec, day: dt.date) -> tuple[Any, list[str]]:
    """Events of the history window joined with their labels (inner: unlabelled events are not used), ordered by
    event time and key."""
    first = day - dt.timedelta(days=spec.training.history_days - 1)
    # a label arrives after its event: read drops from the window's first day up to D
    labels, label_inputs = latest_labels(lake, spec, first, day)
    refs = lake.partition_days("raw", spec.events_dataset, first.isoformat(), day.isoformat())
    columns = spec.event_columns()
    events = pa.concat_tables([lake.read_table(r, columns=columns) for r in refs], promote_options="permissive") \
        if refs else None
    # one hash join (row order is not kept: the rows are ordered by event time and key below)
    found = labels.select([spec.label_key, spec.label_column]).rename_columns(["_label_key", LABEL])
    joined = events.join(found, keys=spec.event_key, right_keys="_label_key", join_type="inner") \
        if events is not None and labels.num_rows else None
    if joined is None or not joined.num_rows:
        raise TrainingDataError(f"{spec.name}: no labelled {spec.events_dataset} events between {first} and {day} "
                                f"({labels.num_rows} labels reported before {label_cutoff(day).isoformat()}): "
                                "ingest events and labels first")
    joined = joined.select([*columns, LABEL])
    # oldest first, deterministic: the order of the split (see split_bounds)
    joined = joined.take(pc.sort_indices(joined, sort_keys=[(spec.event_time, "ascending"),
                                                              (spec.event_key, "ascending")]))
    frame = joined.to_pandas()
    frame[LABEL] = frame[LABEL].astype("int8")
    logger.info("labelled events: %d events of %d raw partitions matched %d labels (%d positive)",
                len(frame), len(refs), labels.num_rows, int(frame[LABEL].sum()))
    return frame, label_inputs + [lake.uri(r.key) for r in refs]


def split_bounds(rows: int, spec: ModelSpec) -> list[tuple[str, int, int]]:
    """``(split, start, stop)`` row ranges of rows ordered by event time: oldest first, in the specification's
    proportions (deterministic)."""
    edges = [0, *(int(e) for e in np.ceil(np.cumsum(spec.training.split)[:-1] * rows)), rows]
    return [(split, edges[i], edges[i + 1]) for i, split in enumerate(SPLITS)]


def feature_inputs(lake: Lake, spec: ModelSpec, first: dt.date, last: dt.date) -> tuple[list[str], dict[str, str]]:
    """URIs of the as-of feature partitions a training set of these event days can read, and set versions."""
    uris, versions = [], {}
    for fs in feature_sets_of(spec):
        versions[fs.name] = fs.version
        uris += [lake.uri(r.key) for r in lake.partition_days("features", fs.table, (first - dt.timedelta(days=1)).isoformat(),
                                                              last.isoformat())]
    return uris, versions


def build_training_set(*, lake: Lake, spec: ModelSpec, dt_: str, run_id: str, store: Any) -> TrainingSet:
    """Build and commit the training set of day ``dt_`` (see the module docstring); idempotent."""
    day = parse_day(dt_)
    events, event_inputs = labelled_events(lake, spec, day)
    inputs = model_inputs(store, pa.Table.from_pandas(events.drop(columns=[LABEL]), preserve_index=False), spec)
    inputs[LABEL] = events[LABEL].to_numpy()
    bounds = split_bounds(len(inputs), spec)
    labels = inputs[LABEL].to_numpy()
    counts = {s: stop - start for s, start, stop in bounds}
    positives = {s: int(labels[start:stop].sum()) for s, start, stop in bounds}
    empty = [s for s in SPLITS if positives[s] == 0 or positives[s] == counts[s]]
    if empty:
        raise TrainingDataError(f"{spec.name} {day}: splits {empty} have only one class ({counts} rows, {positives} "
                                "positive): widen history_days or wait for more labels")
    times = inputs[spec.event_time]
    first_day, last_day = times.min().date(), times.max().date()
    feature_uris, versions = feature_inputs(lake, spec, first_day, last_day)
    columns = [spec.event_key, spec.event_time, *_entity_keys(spec), *feature_columns(spec), LABEL]
    ref = training_ref(spec, day)
    table = pa.Table.from_pandas(inputs[columns], preserve_index=False)
    del inputs
    with lake.writer(ref, run_id=run_id, schema=table.schema, inputs=sorted(set(event_inputs + feature_uris)),
                     extra={"model": spec.name, "spec_version": spec.version,
                            "label_cutoff": label_cutoff(day).isoformat(), "feature_sets": versions,
                            "rows": counts, "positives": positives}) as writer:
        for split, start, stop in bounds:
            writer.write(table.slice(start, stop - start), subdir=f"split={split}")
    manifest = writer.manifest
    assert manifest is not None
    result = TrainingSet(partition=ref.key, fingerprint=fingerprint(manifest, versions, label_cutoff(day), spec.version),
                         label_cutoff=label_cutoff(day).isoformat(), first_event_day=first_day.isoformat(),
                         last_event_day=last_day.isoformat(), rows=counts, positives=positives,
                         feature_set_versions=versions, spec_version=spec.version, inputs=manifest.inputs)
    logger.info("training set %s: rows %s, positives %s, events %s..%s, fingerprint %s", ref.key, counts, positives,
                first_day, last_day, result.fingerprint)
    return result


def _entity_keys(spec: ModelSpec) -> list[str]:
    return list(dict.fromkeys(fs.entity for fs in feature_sets_of(spec)))


def fingerprint(manifest: Manifest, versions: dict[str, str], cutoff: dt.datetime, spec_version: str) -> str:
    """The identity of a training set: same files, feature versions, label cut-off and spec → same value."""
    doc = {"files": sorted((f.path.split("/")[0], f.sha256, f.rows) for f in manifest.files),
           "feature_sets": dict(sorted(versions.items())), "label_cutoff": cutoff.isoformat(), "spec": spec_version}
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:16]


def read_split(lake: Lake, ref: PartitionRef, split: str, columns: list[str] | None = None) -> pa.Table:
    """One split of a committed training set (exactly the manifest's files of ``split=<split>``)."""
    import pyarrow.dataset as pds

    table = lake.read_table(ref, columns=columns, filter=pds.field("split") == split)
    return table.drop_columns(["split"]) if "split" in table.column_names else table


def split_files(lake: Lake, ref: PartitionRef, split: str) -> list[str]:
    """Filesystem paths of one split's files (for Dask readers on the same filesystem)."""
    manifest = lake.require_manifest(ref)
    return [lake.path(lake.file_key(ref, f.path)) for f in manifest.files if f.path.startswith(f"split={split}/")]
