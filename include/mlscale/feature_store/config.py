"""Where the Feast repository of a lake lives, and the ``RepoConfig`` built from it in code.

One Feast project (:data:`PROJECT`) per lake. For a local lake everything sits below
``<lake root>/_feast/``::

    _feast/registry.db                          SQL registry (SQLAlchemy on SQLite)
    _feast/online.db                            SQLite online store (the embedded default)
    _feast/offline/<fs.table>/<YYYY-MM-DD>.parquet   published as-of tables (the FileSource directories)

(or below the directory given as ``root``). ``_feast`` is not a lake zone: nothing in it is a partition
and no manifest governs it. The offline files are *copies* of committed as-of tables, written atomically by :func:`mlscale.feature_store.publish_offline`;
Feast reads these directories, never the lake's ``features/`` zone (which can hold uncommitted attempts).
The day files are named ``<day>.parquet`` rather than ``dt=<day>.parquet`` so that nothing mistakes them
for lake partitions (``Lake.orphans`` treats any file under a ``/dt=`` path as a partition file).

Online store: ``sqlite`` (default) or ``redis`` with a Feast connection string (``redis:6379``, optionally
``,password=…,ssl=true``), as in docker-compose.

For an S3 lake (docker-compose) the Feast directory must be given (``root``, a local directory of the
machine that runs the tasks, e.g. a volume): the committed tables are read from S3 through their manifests
and published there. Keeping the offline files on S3 itself would need ``s3fs`` (Feast's file offline store
reads through fsspec; not in the lock), and sharing the registry between machines a server database (the
compose Postgres, ``postgresql+psycopg://…``) instead of SQLite; with Redis as the online store.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from mlscale.errors import NotRetryable
from mlscale.lake import Lake
from mlscale.lake.storage import is_local

PROJECT = "mlscale"
FEAST_PREFIX = "_feast"
ONLINE_STORES = ("sqlite", "redis")
REGISTRY_CACHE_TTL_S = 60


class FeatureStoreError(RuntimeError):
    """The feature store cannot do what was asked (nothing published, unknown view, wrong input...)."""


class FeatureStoreConfigError(FeatureStoreError, ValueError, NotRetryable):
    """The feature store cannot be configured for this lake or these settings."""


@dataclass(frozen=True)
class FeastPaths:
    """Absolute local paths of a lake's Feast repository."""

    root: str

    @property
    def registry(self) -> str:
        return os.path.join(self.root, "registry.db")

    @property
    def online(self) -> str:
        return os.path.join(self.root, "online.db")

    @property
    def offline(self) -> str:
        return os.path.join(self.root, "offline")

    def offline_dir(self, table: str) -> str:
        """The FileSource directory of one feature view (one Parquet file per published day)."""
        return os.path.join(self.offline, table)

    def offline_file(self, table: str, day: str) -> str:
        """The published offline file of ``table`` for ``day`` (``YYYY-MM-DD``)."""
        return os.path.join(self.offline_dir(table), f"{day}.parquet")

    def storage(self) -> Lake:
        """The Feast directory as a (local) :class:`Lake`, for atomic writes (temporary name, then rename)."""
        return Lake(self.root)


def offline_key(table: str, day: str) -> str:
    """The key of a published offline file relative to the Feast directory."""
    return f"offline/{table}/{day}.parquet"


def feast_paths(lake: Lake, root: str | None = None) -> FeastPaths:
    """The Feast directory: ``root`` if given, else ``<lake root>/_feast`` for a local lake."""
    if root:
        if "://" in root and not root.startswith("file://"):
            raise FeatureStoreConfigError(f"the Feast directory {root!r} must be local (SQLite files, Dask reads)")
        return FeastPaths(os.path.abspath(root.removeprefix("file://")).rstrip("/"))
    if not is_local(lake.fs):
        raise FeatureStoreConfigError(
            f"{lake!r} is not local: give the Feast directory (root=, a local path such as a volume of the task "
            "machine). Keeping Feast's offline files on S3 would need s3fs in the lock (Feast's file offline store "
            "reads through fsspec) and a shared registry a server database (the compose Postgres).")
    return FeastPaths(lake.path(FEAST_PREFIX))


def repo_config_for(lake: Lake, *, root: str | None = None, online_store: str = "sqlite",
                    redis_connection_string: str = "", redis_password: str = "", project: str = PROJECT) -> Any:
    """The Feast ``RepoConfig`` of ``lake``: local provider, file (Dask) offline store, SQL registry on SQLite.

    ``online_store="redis"`` uses ``redis_connection_string`` (``host:port[,ssl=true]``); a password is
    appended from ``redis_password`` so that it can come from a secret, not a template.
    """
    from feast.infra.offline_stores.dask import DaskOfflineStoreConfig
    from feast.infra.registry.sql import SqlRegistryConfig
    from feast.repo_config import RepoConfig

    paths = feast_paths(lake, root)
    os.makedirs(paths.root, exist_ok=True)
    online_store = online_store or "sqlite"
    if online_store == "sqlite":
        from feast.infra.online_stores.sqlite import SqliteOnlineStoreConfig

        online: Any = SqliteOnlineStoreConfig(path=paths.online)
    elif online_store == "redis":
        if not redis_connection_string:
            raise FeatureStoreConfigError("online_store='redis' needs redis_connection_string (e.g. 'redis:6379')")
        from feast.infra.online_stores.redis import RedisOnlineStoreConfig

        connection = redis_connection_string
        if redis_password:
            connection += f",password={redis_password}"
        online = RedisOnlineStoreConfig(connection_string=connection)
    else:
        raise FeatureStoreConfigError(f"online_store {online_store!r} is not one of {ONLINE_STORES}")
    registry = SqlRegistryConfig(
        registry_type="sql", path=f"sqlite:///{paths.registry}", cache_ttl_seconds=REGISTRY_CACHE_TTL_S,
        # materialize() flips a view to MATERIALIZING in the shared registry; keep serving the last values meanwhile
        serve_features_while_materializing=True,
    )
    return RepoConfig(project=project, provider="local", registry=registry, online_store=online,
                      offline_store=DaskOfflineStoreConfig(), repo_path=paths.root,
                      entity_key_serialization_version=3)


def feature_store_for(lake: Lake, *, root: str | None = None, online_store: str = "sqlite",
                      redis_connection_string: str = "", redis_password: str = "", project: str = PROJECT) -> Any:
    """A ``feast.FeatureStore`` over ``lake``'s Feast repository (see :func:`repo_config_for`)."""
    from feast import FeatureStore

    config = repo_config_for(lake, root=root, online_store=online_store,
                             redis_connection_string=redis_connection_string, redis_password=redis_password,
                             project=project)
    return FeatureStore(repo_path=str(config.repo_path), config=config)


def store_paths(store: Any) -> FeastPaths:
    """The paths of a store built by :func:`feature_store_for` (its ``repo_path`` is the ``_feast`` directory)."""
    if store.config.repo_path is None:
        raise FeatureStoreConfigError("this FeatureStore has no repo_path: build it with feature_store_for(lake)")
    return FeastPaths(str(store.config.repo_path))


def feature_store_yaml(lake: Lake, **settings: Any) -> str:
    """The ``feature_store.yaml`` equivalent of :func:`repo_config_for`, for the Feast CLI and UI.

    Write it to a directory and run e.g. ``feast -c <dir> feature-views list`` or ``feast -c <dir> ui``.
    Never commit the rendered file: its paths come from the lake root.
    """
    import yaml

    config = repo_config_for(lake, **settings)
    online = config.online_store.model_dump(mode="json", exclude_none=True)
    if online.get("type") == "redis" and "password=" in online.get("connection_string", ""):
        online["connection_string"] = online["connection_string"].split(",password=")[0] + ",password=${REDIS_PASSWORD}"
    doc = {
        "project": config.project,
        "provider": config.provider,
        "registry": {"registry_type": "sql", "path": config.registry.path,
                     "cache_ttl_seconds": config.registry.cache_ttl_seconds,
                     "serve_features_while_materializing": True},
        "online_store": online,
        "offline_store": {"type": "file"},
        "entity_key_serialization_version": config.entity_key_serialization_version,
    }
    return yaml.safe_dump(doc, sort_keys=False)
