"""Feast objects for mlscale feature sets, the platform's permissions, and applying them.

Per feature set: an ``Entity`` (``fs.entity``, string join key), a ``FileSource`` over the set's published
offline directory and a ``FeatureView`` named ``fs.table`` (``<name>_v<version>``: the version is part of the
name, so a new definition is a new view and old versions stay queryable). The view's schema comes from the
columns of the published as-of table (integer → ``Int64``, floating → ``Float64``); its ttl is the set's
largest window (:func:`view_ttl`).

Sensitivity: a feature set is sensitive when its name is in :data:`SENSITIVE_FEATURE_SETS` (a platform
decision, kept out of the definition YAMLs so that changing it does not create a new version). Its views are
tagged ``sensitive=true`` (others ``sensitive=false``) and :func:`platform_permissions` restricts reading them
online and offline to :data:`SENSITIVE_READER_ROLE`.

Feast 0.67 matches a permission's ``required_tags`` against ``resource.required_tags``, an attribute feature
views do not have, so a tags-only permission matches *every* view (checked: it logs "has no
`required_tags` attribute" and matches). The permissions therefore select views by ``name_patterns`` built
from :data:`SENSITIVE_FEATURE_SETS`; ``required_tags`` is kept as the declared intent.

Enforcement: Feast checks permissions only where a security manager is installed, i.e. in its servers
(feature server, offline server, registry server) started with an ``auth`` section (``oidc`` or
``kubernetes``) and used by clients through the ``remote`` stores. An in-process ``FeatureStore`` on the
local files (this module, Airflow tasks, notebooks on the same disk) is not checked: whoever can read
``_feast/`` or the lake can read every feature. :func:`check_access` evaluates the registered permissions
with Feast's own enforcer (the servers' code path), to test what the policy allows.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
from collections.abc import Iterable
from typing import Any

from mlscale.feature_store.config import FeatureStoreError, store_paths
from mlscale.feature_store.local_dask import local_dask

logger = logging.getLogger(__name__)

SENSITIVE_FEATURE_SETS: frozenset[str] = frozenset({"merchant_risk"})
"""Feature sets whose views only :data:`SENSITIVE_READER_ROLE` may read (merchant risk signals)."""

PLATFORM_ROLE = "feature-platform"     # the pipelines: manage definitions, materialise (read offline, write online)
READER_ROLE = "ml-engineer"            # training and scoring: read non-sensitive views
SENSITIVE_READER_ROLE = "risk-analyst"  # may also read sensitive views
TIMESTAMP_FIELD = "event_timestamp"


def is_sensitive(feature_set: Any, sensitive: Iterable[str] | None = None) -> bool:
    return feature_set.name in (SENSITIVE_FEATURE_SETS if sensitive is None else frozenset(sensitive))


def view_ttl(feature_set: Any) -> dt.timedelta:
    """How far back a point-in-time lookup may reach: the set's largest window.

    The as-of table of a day holds every entity active in that window, and the published offline files carry
    an explicit empty row for an entity that left it (see :mod:`mlscale.feature_store.offline`), so the ttl
    only matters when the pipeline stops: lookups more than this after the last published day return nothing.
    """
    return dt.timedelta(days=int(feature_set.max_window))


def _pattern(names: Iterable[str]) -> str:
    alternatives = "|".join(sorted(re.escape(n) for n in names))
    return f"(?:{alternatives})_v[0-9a-f]+" if alternatives else r"(?!)"


def platform_permissions(sensitive: Iterable[str] | None = None) -> list[Any]:
    """The Feast permissions of the platform (applied with the views; see the module notes on enforcement).

    - ``mlscale-describe``: every role may list and describe every object;
    - ``mlscale-manage``: :data:`PLATFORM_ROLE` creates, updates, deletes objects and writes features;
    - ``mlscale-materialize``: :data:`PLATFORM_ROLE` reads every view offline (to materialise it);
    - ``mlscale-read-features``: :data:`READER_ROLE` and :data:`SENSITIVE_READER_ROLE` read non-sensitive views;
    - ``mlscale-read-sensitive-features``: only :data:`SENSITIVE_READER_ROLE` reads sensitive views.
    """
    from feast.feast_object import ALL_RESOURCE_TYPES
    from feast.feature_view import FeatureView
    from feast.permissions.action import CRUD, READ, WRITE, AuthzedAction
    from feast.permissions.permission import Permission
    from feast.permissions.policy import RoleBasedPolicy

    names = SENSITIVE_FEATURE_SETS if sensitive is None else frozenset(sensitive)
    sensitive_views = _pattern(names)
    everyone = [PLATFORM_ROLE, READER_ROLE, SENSITIVE_READER_ROLE]
    views: list[Any] = [FeatureView]  # Feast annotates `types` as instances; it takes the classes
    return [
        Permission(name="mlscale-describe", types=list(ALL_RESOURCE_TYPES), actions=[AuthzedAction.DESCRIBE],
                   policy=RoleBasedPolicy(roles=everyone)),
        Permission(name="mlscale-manage", types=list(ALL_RESOURCE_TYPES), actions=CRUD + WRITE,
                   policy=RoleBasedPolicy(roles=[PLATFORM_ROLE])),
        Permission(name="mlscale-materialize", types=views, actions=[AuthzedAction.READ_OFFLINE],
                   policy=RoleBasedPolicy(roles=[PLATFORM_ROLE])),
        Permission(name="mlscale-read-features", types=views, name_patterns=[f"(?!{sensitive_views}$).*"],
                   actions=READ, policy=RoleBasedPolicy(roles=[READER_ROLE, SENSITIVE_READER_ROLE])),
        Permission(name="mlscale-read-sensitive-features", types=views, name_patterns=[sensitive_views],
                   required_tags={"sensitive": "true"}, actions=READ,
                   policy=RoleBasedPolicy(roles=[SENSITIVE_READER_ROLE]),
                   tags={"purpose": "restrict reading sensitive feature views"}),
    ]


def published_schema(store: Any, table: str) -> Any:
    """The Arrow schema of the latest published offline file of ``table`` (what Feast will read)."""
    import pyarrow.parquet as pq

    directory = store_paths(store).offline_dir(table)
    days = sorted(f for f in os.listdir(directory) if f.endswith(".parquet")) if os.path.isdir(directory) else []
    if not days:
        raise FeatureStoreError(f"{table}: nothing is published under {directory}; publish_offline() a day "
                                "before apply_definitions() (the view's schema comes from the published table)")
    return pq.read_schema(os.path.join(directory, days[-1])).remove_metadata()


def feature_view_for(store: Any, feature_set: Any, *, sensitive: Iterable[str] | None = None) -> tuple[Any, ...]:
    """``(entity, source, view)`` of one feature set; the schema is read from its published offline table."""
    import pyarrow as pa
    from feast import Entity, FeatureView, Field, FileSource, ValueType
    from feast.data_format import ParquetFormat
    from feast.types import Float64, Int64

    fs = feature_set
    schema = published_schema(store, fs.table)
    fields = []
    for name in fs.feature_columns():
        if name not in schema.names:
            raise FeatureStoreError(f"{fs.table}: the published table has no column {name!r}; republish it")
        typ = schema.field(name).type
        if pa.types.is_integer(typ):
            fields.append(Field(name=name, dtype=Int64))
        elif pa.types.is_floating(typ):
            fields.append(Field(name=name, dtype=Float64))
        else:
            raise FeatureStoreError(f"{fs.table}.{name} has type {typ}: only integer and floating features are served")
    entity = Entity(name=fs.entity, join_keys=[fs.entity], value_type=ValueType.STRING,
                    description=f"join key of {fs.name}")
    source = FileSource(name=fs.table, path=store_paths(store).offline_dir(fs.table), file_format=ParquetFormat(),
                        timestamp_field=TIMESTAMP_FIELD,
                        description=f"published as-of tables of features/{fs.table} (one file per day)")
    view = FeatureView(
        name=fs.table, entities=[entity], ttl=view_ttl(fs), schema=fields, source=source, online=True,
        description=fs.description or fs.name,
        tags={"feature_set": fs.name, "version": fs.version, "sensitive": str(is_sensitive(fs, sensitive)).lower(),
              "lake_table": f"features/{fs.table}"},
    )
    return entity, source, view


def apply_definitions(store: Any, feature_sets: Iterable[Any], *, sensitive: Iterable[str] | None = None) -> list[str]:
    """Register the views of ``feature_sets`` and the platform permissions; idempotent.

    Nothing is deleted: views of other sets and older versions stay registered (and queryable). Each set
    must have at least one published day (:func:`mlscale.feature_store.publish_offline`). Returns the view
    names.
    """
    objects: list[Any] = []
    entities: dict[str, Any] = {}
    views = []
    for fs in feature_sets:
        entity, source, view = feature_view_for(store, fs, sensitive=sensitive)
        entities.setdefault(entity.name, entity)
        objects += [source, view]
        views.append(view.name)
    objects = list(entities.values()) + objects + platform_permissions(sensitive)
    with local_dask():
        store.apply(objects, partial=True)
    logger.info("feast project %s: applied views %s and %d permissions", store.project, views,
                len(platform_permissions(sensitive)))
    return views


def check_access(store: Any, roles: Iterable[str], view_name: str, action: str = "read_online") -> bool:
    """Would Feast's servers let a user with ``roles`` do ``action`` (an ``AuthzedAction`` value) on a view?

    Evaluates the permissions registered in ``store`` with Feast's enforcer; in-process reads are not checked
    (see the module notes).
    """
    from feast.errors import FeastPermissionError
    from feast.permissions.action import AuthzedAction
    from feast.permissions.enforcer import enforce_policy
    from feast.permissions.user import User

    view = store.get_feature_view(view_name)
    permissions = store.list_permissions()
    # Feast logs every tag mismatch (the proto of the view) at WARNING/INFO: keep task logs readable
    matcher_log = logging.getLogger("feast.permissions.matcher")
    level = matcher_log.level
    matcher_log.setLevel(logging.ERROR)
    enforcer_log = logging.getLogger("feast.permissions.enforcer")
    enforcer_level = enforcer_log.level
    enforcer_log.setLevel(logging.CRITICAL)
    try:
        enforce_policy(permissions, User("check", list(roles)), [view], [AuthzedAction(action)])
        return True
    except FeastPermissionError:
        return False
    finally:
        matcher_log.setLevel(level)
        enforcer_log.setLevel(enforcer_level)
