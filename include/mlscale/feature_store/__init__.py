"""The feature store: a Feast repository over the lake's as-of feature tables.

Offline: Feast's file (Dask) offline store over per-day copies of the committed as-of tables
(:func:`publish_offline`); online: SQLite (embedded) or Redis (docker-compose); registry: SQL on SQLite, all
below ``<lake root>/_feast/`` (:mod:`mlscale.feature_store.config`). One Feast project, one feature view per
feature-set version (:mod:`mlscale.feature_store.definitions`), with permissions that restrict reading
sensitive views.

Typical use::

    store = feature_store_for(lake)
    publish_offline(lake, fs, "2026-11-04"); apply_definitions(store, [fs])   # root=<local dir> for an S3 lake
    materialize(store, [fs], event_timestamp("2026-11-01"), event_timestamp("2026-11-04"))
    train = training_set(store, labels_df, [fs])          # point in time: as of each label's time
    live = online_features(store, [{"customer_id": "C1"}], [fs])

The ``build_features`` DAG runs :func:`sync_feature_store` for its day.
"""

from mlscale.feature_store.config import (
    FEAST_PREFIX,
    PROJECT,
    FeastPaths,
    FeatureStoreConfigError,
    FeatureStoreError,
    feast_paths,
    feature_store_for,
    feature_store_yaml,
    offline_key,
    repo_config_for,
)
from mlscale.feature_store.definitions import (
    PLATFORM_ROLE,
    READER_ROLE,
    SENSITIVE_FEATURE_SETS,
    SENSITIVE_READER_ROLE,
    apply_definitions,
    check_access,
    feature_view_for,
    is_sensitive,
    platform_permissions,
    view_ttl,
)
from mlscale.feature_store.local_dask import local_dask
from mlscale.feature_store.offline import PublishResult, committed_days, event_timestamp, publish_offline
from mlscale.feature_store.serving import (
    feature_refs,
    materialize,
    materialize_incremental,
    online_features,
    training_set,
)
from mlscale.feature_store.sync import FeatureStoreSync, sync_feature_store

__all__ = [
    "FEAST_PREFIX", "PLATFORM_ROLE", "PROJECT", "READER_ROLE", "SENSITIVE_FEATURE_SETS", "SENSITIVE_READER_ROLE",
    "FeastPaths", "FeatureStoreConfigError", "FeatureStoreError", "FeatureStoreSync", "PublishResult",
    "apply_definitions", "check_access", "committed_days", "event_timestamp", "feast_paths", "feature_refs",
    "feature_store_for", "feature_store_yaml", "feature_view_for", "is_sensitive", "local_dask", "materialize",
    "materialize_incremental", "offline_key", "online_features", "platform_permissions", "publish_offline",
    "repo_config_for", "sync_feature_store", "training_set", "view_ttl",
]
