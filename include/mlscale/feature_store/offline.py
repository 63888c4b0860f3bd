"""Publish committed as-of tables to the Feast offline directories.

Feast's file source reads a directory; the lake's ``features/<table>/dt=D/`` directories may hold files of
uncommitted attempts, and readers in this project read manifests, never globs. So each committed as-of
table is copied, through its manifest (:meth:`Lake.read_table`), to one file per day,
``<Feast directory>/offline/<fs.table>/<D>.parquet`` (``<lake root>/_feast`` for a local lake), written
atomically (temporary name, then rename: :meth:`Lake.write_bytes`). A rerun replaces the day exactly. Feast (Dask) only reads files ending in
``.parquet``, so it never sees a half-written temporary file.

Point-in-time semantics. The as-of table of day D holds one row per entity active in the set's largest
window, with ``event_timestamp`` = D+1 00:00 UTC; a lookup at time t must return the latest *table* whose
event_timestamp <= t. Feast returns the latest *row* of the entity (within the view's ttl), which differs
when an entity is in an earlier table and not in the latest one (it left the window): Feast would serve its
stale values. The published file of D therefore adds a *tombstone* (the entity and D's timestamp, every
feature null) for each entity of the previous committed table that D's table lacks. Offline lookups then
return nulls, and materialisation overwrites the online row with nulls, exactly as the table says.

The file records where it came from (schema metadata ``mlscale.feast_source``: the manifests of D and of
the previous table); :func:`publish_offline` skips a day whose source is unchanged unless forced.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from mlscale.feature_store.config import FeatureStoreError, feast_paths, offline_key
from mlscale.feature_store.definitions import TIMESTAMP_FIELD
from mlscale.lake import Lake, Manifest, PartitionRef, parse_day

logger = logging.getLogger(__name__)
SOURCE_KEY = b"mlscale.feast_source"
PUBLISH_FORMAT = 1


def event_timestamp(day: str | dt.date) -> dt.datetime:
    """The time from which the as-of table of ``day`` is valid: the next day, 00:00 UTC."""
    return dt.datetime.combine(parse_day(day) + dt.timedelta(days=1), dt.time(), dt.UTC)


@dataclass(frozen=True)
class PublishResult:
    table: str
    day: str
    path: str
    changed: bool
    rows: int = 0
    tombstones: int = 0
    previous_day: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _source(manifest: Manifest) -> dict[str, Any]:
    return {"partition": manifest.partition, "attempt": manifest.attempt, "run_id": manifest.run_id,
            "files": sorted(f.sha256 for f in manifest.files)}


def committed_days(lake: Lake, table: str) -> list[dt.date]:
    """Days with a committed as-of table (from the manifests)."""
    return [ref.day for ref in lake.partitions("features", table) if not ref.keys]


def published_source(path: str) -> dict[str, Any] | None:
    """The source record of a published file, or None if absent or unreadable."""
    try:
        with open(path, "rb") as src:
            metadata = pq.ParquetFile(src).schema_arrow.metadata or {}
        return json.loads(metadata[SOURCE_KEY])
    except (OSError, KeyError, ValueError, pa.ArrowException):
        return None


def publish_offline(lake: Lake, feature_set: Any, day: str | dt.date, *, force: bool = False,
                    committed: Iterable[dt.date] | None = None, root: str | None = None) -> PublishResult:
    """Copy the committed as-of table of ``day`` (plus tombstones) to the Feast offline directory.

    ``root``: the Feast directory (default ``<lake root>/_feast``, required for an S3 lake; see
    :func:`mlscale.feature_store.feast_paths`). ``committed`` (the set's committed days, from :func:`committed_days`) saves a listing when publishing
    many days. Raises :class:`mlscale.lake.PartitionNotFound` if the day has no committed table.
    """
    fs = feature_set
    day = parse_day(day)
    ref = PartitionRef.of("features", fs.table, day)
    manifest = lake.require_manifest(ref)
    earlier = [d for d in (committed if committed is not None else committed_days(lake, fs.table)) if d < day]
    previous_day = max(earlier) if earlier else None
    previous_ref = PartitionRef.of("features", fs.table, previous_day) if previous_day else None
    previous = lake.require_manifest(previous_ref) if previous_ref else None
    source = {"format": PUBLISH_FORMAT, "table": fs.table, "day": day.isoformat(), "source": _source(manifest),
              "previous": _source(previous) if previous else None}
    paths = feast_paths(lake, root)
    path = paths.offline_file(fs.table, day.isoformat())
    if not force and published_source(path) == source:
        logger.info("%s %s: already published from attempt %s, kept", fs.table, day, manifest.attempt)
        return PublishResult(fs.table, day.isoformat(), path, changed=False, rows=manifest.rows,
                             previous_day=previous_day.isoformat() if previous_day else None)

    columns = [fs.entity, TIMESTAMP_FIELD, *fs.feature_columns()]
    table = lake.read_table(ref, columns=columns)
    stamp = event_timestamp(day)
    ts = table.column(TIMESTAMP_FIELD)
    if table.num_rows and (pc.min(ts).as_py() != stamp or pc.max(ts).as_py() != stamp):
        raise FeatureStoreError(f"{ref.key}: event_timestamp must be {stamp.isoformat()} on every row (the as-of "
                                f"time of the table), found {pc.min(ts).as_py()}..{pc.max(ts).as_py()}")
    if table.column(fs.entity).null_count or pc.count_distinct(table.column(fs.entity)).as_py() != table.num_rows:
        raise FeatureStoreError(f"{ref.key}: {fs.entity} must be unique and not null (one row per entity)")
    tombstones = 0
    if previous_ref is not None:
        before = lake.read_table(previous_ref, columns=[fs.entity]).column(fs.entity)
        gone = pc.filter(before, pc.invert(pc.is_in(before, value_set=table.column(fs.entity).combine_chunks())))
        tombstones = len(gone)
        if tombstones:
            empty = {c: pa.nulls(tombstones, table.schema.field(c).type) for c in fs.feature_columns()}
            rows = pa.table({fs.entity: gone.cast(table.schema.field(fs.entity).type),
                             TIMESTAMP_FIELD: pa.array([stamp] * tombstones, table.schema.field(TIMESTAMP_FIELD).type),
                             **empty}).select(columns)
            table = pa.concat_tables([table, rows])
    table = table.sort_by(fs.entity).combine_chunks()
    table = table.replace_schema_metadata({SOURCE_KEY: json.dumps(source, sort_keys=True).encode()})
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    paths.storage().write_bytes(offline_key(fs.table, day.isoformat()), sink.getvalue())  # temporary name + rename
    logger.info("%s %s: published %d rows (%d tombstones) from attempt %s to %s", fs.table, day, table.num_rows,
                tombstones, manifest.attempt, path)
    return PublishResult(fs.table, day.isoformat(), path, changed=True, rows=table.num_rows, tombstones=tombstones,
                         previous_day=previous_day.isoformat() if previous_day else None)
