"""The pipeline step: after a day's features are built and validated, publish them and materialise the day.

:func:`sync_feature_store` is what the ``build_features`` DAG runs for day D, after the build tasks (which
validate, and quarantine instead of committing a failing table). Per feature set it

1. publishes the committed as-of tables of D-L..D+1 (L = the source contract's lateness, the days a build of
   D may have rebuilt; D+1 because its tombstones depend on D), skipping days whose source is unchanged;
2. registers the views and permissions (idempotent);
3. materialises incrementally with explicit bounds: from the view's last materialised end (or the first
   republished day, if earlier) to D's event timestamp. That is what ``materialize_incremental`` does on a
   store that follows the schedule, without its fresh-store start at now − ttl, which skips backfilled days.
   When the online store already holds a day after D (a backfill of an older day), it is left alone: the
   online store keeps the latest values and the offline store gets the corrected past.

Reruns give the same offline files and the same online values.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from typing import Any

from mlscale.feature_store.config import FeatureStoreError, feature_store_for
from mlscale.feature_store.definitions import apply_definitions
from mlscale.feature_store.offline import committed_days, event_timestamp, publish_offline
from mlscale.feature_store.serving import _utc, materialize
from mlscale.lake import Lake, parse_day

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FeatureStoreSync:
    dt: str
    project: str
    views: list[str]
    published: dict[str, list[str]] = field(default_factory=dict)      # view -> days rewritten
    unchanged: dict[str, list[str]] = field(default_factory=dict)      # view -> days already published
    tombstones: dict[str, int] = field(default_factory=dict)
    materialized: dict[str, dict[str, str]] = field(default_factory=dict)  # view -> {start, end}
    online_skipped: dict[str, str] = field(default_factory=dict)        # view -> why
    seconds: dict[str, float] = field(default_factory=dict)  # publish / apply (with opening the store) / materialize / total

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def asset_extra(self) -> dict[str, Any]:
        return {"dt": self.dt, "views": self.views, "published": self.published,
                "materialized": sorted(self.materialized)}


def sync_feature_store(*, lake: Lake, dt: str, feature_sets: list[str] | None = None, online_store: str = "sqlite",
                       redis_connection_string: str = "", redis_password: str = "",
                       lookback_days: int | None = None, feast_root: str | None = None) -> FeatureStoreSync:
    """Publish, register and materialise day ``dt`` of ``feature_sets`` (default: every defined set).

    ``feast_root``: the Feast directory (default ``<lake root>/_feast``; required for an S3 lake).
    """
    from mlscale.contracts import load_contract
    from mlscale.features import all_feature_sets, load_feature_set

    started = time.perf_counter()
    day = parse_day(dt)
    sets = [load_feature_set(n) for n in feature_sets] if feature_sets else all_feature_sets()
    published: dict[str, list[str]] = {}
    unchanged: dict[str, list[str]] = {}
    tombstones: dict[str, int] = {}
    first_changed: dict[str, date] = {}
    for fs in sets:
        committed = committed_days(lake, fs.table)
        if day not in committed:
            raise FeatureStoreError(f"features/{fs.table} has no committed as-of table for {day}: build_features "
                                    "must succeed (and pass validation) before the feature store is synced")
        lateness = lookback_days if lookback_days is not None else \
            int(load_contract(fs.source_dataset).max_lateness_days or 0)
        later = [d for d in committed if d > day]
        # the next committed day is republished too: its leavers were computed against the table before it
        window = [day - _days(k) for k in range(lateness, -1, -1)] + later[:1]
        results = [publish_offline(lake, fs, d, committed=committed, root=feast_root) for d in window if d in committed]
        published[fs.table] = [r.day for r in results if r.changed]
        unchanged[fs.table] = [r.day for r in results if not r.changed]
        tombstones[fs.table] = sum(r.tombstones for r in results if r.changed)
        changed_days = [parse_day(r.day) for r in results if r.changed and parse_day(r.day) <= day]
        first_changed[fs.table] = min(changed_days, default=day)
    publish_s = time.perf_counter() - started

    t = time.perf_counter()
    store = feature_store_for(lake, root=feast_root, online_store=online_store,
                              redis_connection_string=redis_connection_string, redis_password=redis_password)
    views = apply_definitions(store, sets)
    apply_s = time.perf_counter() - t

    t = time.perf_counter()
    materialized: dict[str, dict[str, str]] = {}
    skipped: dict[str, str] = {}
    end = event_timestamp(day)
    for fs in sets:
        online_end = store.get_feature_view(fs.table).most_recent_end_time
        online_end = _utc(online_end) if online_end else None
        if online_end is not None and online_end > end:
            skipped[fs.table] = (f"the online store holds {online_end.isoformat()}, after {end.isoformat()}: "
                                 "not rolled back (offline store updated)")
            logger.info("%s: %s", fs.table, skipped[fs.table])
            continue
        start = event_timestamp(first_changed[fs.table])
        if online_end is not None:
            start = min(start, online_end)
        materialize(store, [fs.table], start, end)
        materialized[fs.table] = {"start": start.isoformat(), "end": end.isoformat()}
    materialize_s = time.perf_counter() - t
    return FeatureStoreSync(
        dt=day.isoformat(), project=store.project, views=views, published=published, unchanged=unchanged,
        tombstones=tombstones, materialized=materialized, online_skipped=skipped,
        seconds={"publish": round(publish_s, 3), "apply": round(apply_s, 3), "materialize": round(materialize_s, 3),
                 "total": round(time.perf_counter() - started, 3)})


def _days(n: int) -> timedelta:
    return timedelta(days=n)
