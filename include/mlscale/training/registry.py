"""The model registry (MLflow): versions with lineage tags, and the ``champion`` / ``challenger`` aliases.

Embedded, the registry is a SQLite file with artifacts on the local disk; in docker-compose it is the MLflow
server (``tracking_uri`` = its URL). A new version gets the alias ``challenger``; only the promotion gate
moves ``champion``. Rolling back is moving ``champion`` to an earlier version (:func:`set_alias`).
Every version also gets a lineage record in ``_meta/lineage_refs/`` so the lifecycle DAG never deletes the
data it was trained on while the version is registered.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from dataclasses import dataclass
from typing import Any

from mlscale.lake import Lake, PartitionRef
from mlscale.layout import LINEAGE_REFS

logger = logging.getLogger(__name__)

CHAMPION = "champion"
CHALLENGER = "challenger"
EXPERIMENT_PREFIX = "mlscale"
REGISTRY_DIR = "_mlflow"   # the embedded registry, beside the zones of a local lake


@dataclass(frozen=True)
class RegistryConfig:
    tracking_uri: str
    artifact_root: str = ""     # where a new experiment stores artifacts (default: beside a SQLite file)

    @classmethod
    def default(cls, home: str) -> RegistryConfig:
        """The embedded registry under ``home`` (a local directory)."""
        os.makedirs(home, exist_ok=True)
        return cls(tracking_uri=f"sqlite:///{os.path.join(home, 'mlflow.db')}",
                   artifact_root=os.path.join(home, "artifacts"))

    @classmethod
    def for_lake(cls, lake: Lake, tracking_uri: str = "") -> RegistryConfig:
        """``tracking_uri`` when given (an MLflow server); else the embedded registry in ``<lake>/_mlflow``."""
        if tracking_uri:
            return cls(tracking_uri=tracking_uri)
        root = lake.uri("")
        if "://" in root and not root.startswith("file://"):
            raise ValueError(f"the lake {root} is not local: set the Variable mlscale_mlflow_tracking_uri "
                             "to an MLflow server for the model registry")
        return cls.default(os.path.join(lake.path(""), REGISTRY_DIR))


#: columns of the embedded registry (MLflow's SQLite schema) that hold artifact paths
PATH_COLUMNS = (("experiments", "artifact_location"), ("runs", "artifact_uri"),
                ("logged_models", "artifact_location"), ("model_versions", "storage_location"),
                ("model_versions", "source"))


def repoint_embedded_registry(config: RegistryConfig) -> int:
    """Make a copied or moved lake's embedded registry name its own artifact folder.

    MLflow stores absolute artifact paths (experiments, runs, logged models, model versions): in a lake copied
    elsewhere they still name the original's ``_mlflow/artifacts``, so new model artifacts would be written into
    the original and loading a version would read it. Paths under another ``_mlflow/artifacts`` folder are
    re-pointed to ``config.artifact_root`` (the folder's contents were copied with the lake). Returns the rows
    changed (0 for a lake where it has always been, or a registry that is not the embedded one)."""
    import sqlite3

    prefix = "sqlite:///"
    if not config.artifact_root or not config.tracking_uri.startswith(prefix):
        return 0
    db = config.tracking_uri[len(prefix):]
    if not os.path.exists(db):
        return 0
    marker, here = f"/{REGISTRY_DIR}/artifacts", config.artifact_root.rstrip("/")
    with sqlite3.connect(db, timeout=30) as con:
        tables = {row[0] for row in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        columns = [(t, c) for t, c in PATH_COLUMNS if t in tables]
        elsewhere: set[str] = set()
        for table, column in columns:
            for (value,) in con.execute(f"SELECT DISTINCT {column} FROM {table} WHERE {column} LIKE ?",  # noqa: S608
                                        (f"%{marker}%",)):
                old = value[: value.index(marker) + len(marker)]
                if old not in (here, f"file://{here}"):
                    elsewhere.add(old)
        changed = 0
        for old in sorted(elsewhere):
            for table, column in columns:
                changed += con.execute(
                    f"UPDATE {table} SET {column} = ? || substr({column}, ?) WHERE substr({column}, 1, ?) = ?",  # noqa: S608
                    (here, len(old) + 1, len(old), old)).rowcount
    if changed:
        logger.warning("the model registry %s named artifacts of a lake elsewhere (%s): %d paths re-pointed to %s "
                       "(the lake was copied or moved)", db, ", ".join(sorted(elsewhere)), changed, here)
    return changed


def client_for(config: RegistryConfig) -> Any:
    import mlflow
    from mlflow import MlflowClient

    repoint_embedded_registry(config)
    mlflow.set_tracking_uri(config.tracking_uri)
    mlflow.set_registry_uri(config.tracking_uri)
    return MlflowClient(tracking_uri=config.tracking_uri, registry_uri=config.tracking_uri)


def experiment_id(client: Any, config: RegistryConfig, model: str) -> str:
    name = f"{EXPERIMENT_PREFIX}/{model}"
    found = client.get_experiment_by_name(name)
    if found is not None:
        return str(found.experiment_id)
    location = f"{config.artifact_root.rstrip('/')}/{model}" if config.artifact_root else None
    return str(client.create_experiment(name, artifact_location=location))


def alias_version(client: Any, model: str, alias: str) -> str | None:
    """The version an alias points at, or None (no such model or alias)."""
    try:
        return str(client.get_model_version_by_alias(model, alias).version)
    except Exception:  # MlflowException: RESOURCE_DOES_NOT_EXIST for a missing model or alias
        return None


def version_or_alias(client: Any, model: str, version: str, *aliases: str) -> str:
    """``version`` when given, else the first of ``aliases`` that is set; LookupError naming what is missing."""
    for candidate in (version, *(alias_version(client, model, a) for a in aliases)):
        if candidate:
            return str(candidate)
    raise LookupError(f"model {model!r} has no {' or '.join(aliases)} in the registry: run train_model first")


def set_alias(client: Any, model: str, alias: str, version: str) -> str | None:
    """Point ``alias`` at ``version``; returns the version it pointed at before (for the audit trail)."""
    before = alias_version(client, model, alias)
    client.set_registered_model_alias(model, alias, str(version))
    logger.info("registry: %s@%s -> version %s (was %s)", model, alias, version, before)
    return before


def version_tags(client: Any, model: str, version: str) -> dict[str, str]:
    return dict(client.get_model_version(model, str(version)).tags)


def register_version(client: Any, config: RegistryConfig, *, model: str, algorithm: str, booster_bytes: bytes,
                     metrics: dict[str, float], params: dict[str, Any], tags: dict[str, str], run_name: str,
                     artifacts: dict[str, Any]) -> str:
    """Log a run with the booster, metrics, params and JSON artifacts, and register it as a new version."""
    import mlflow

    mlflow.set_tracking_uri(config.tracking_uri)
    mlflow.set_registry_uri(config.tracking_uri)
    with mlflow.start_run(experiment_id=experiment_id(client, config, model), run_name=run_name) as run:
        mlflow.log_params({k: str(v)[:500] for k, v in params.items()})
        mlflow.log_metrics({k: float(v) for k, v in metrics.items() if v == v})  # NaN is not logged
        mlflow.set_tags(tags)
        for name, doc in artifacts.items():
            mlflow.log_dict(doc, name)
        info = _log_booster(algorithm, booster_bytes)
        logger.info("mlflow run %s logged model %s", run.info.run_id, info.model_uri)
    version = client.create_model_version(model, info.model_uri, run_id=run.info.run_id, tags=tags) \
        if _ensure_model(client, model) else None
    assert version is not None
    return str(version.version)


def _ensure_model(client: Any, model: str) -> bool:
    try:
        client.get_registered_model(model)
    except Exception:  # not registered yet
        client.create_registered_model(model, description=f"mlscale model {model}")
    return True


def _log_booster(algorithm: str, raw: bytes) -> Any:
    from importlib.metadata import version

    if algorithm == "xgboost":
        import mlflow.xgboost
        import xgboost as xgb

        booster = xgb.Booster()
        booster.load_model(bytearray(raw))
        return mlflow.xgboost.log_model(booster, name="model", pip_requirements=[f"xgboost=={version('xgboost')}"])
    import lightgbm as lgb
    import mlflow.lightgbm

    return mlflow.lightgbm.log_model(lgb.Booster(model_str=raw.decode()), name="model",
                                     pip_requirements=[f"lightgbm=={version('lightgbm')}"])


def write_lineage_record(lake: Lake, *, model: str, version: str, references: list[str], artifacts: list[str]) -> str:
    """The lifecycle's protection record of a registered version (see :mod:`mlscale.lifecycle.lineage`)."""
    key = f"{LINEAGE_REFS}/{model}-{version}.json"
    lake.write_json(key, {"model": model, "version": version, "status": "registered",
                          "references": sorted(set(references)), "artifacts": artifacts,
                          "updated_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")})
    return key


def lake_artifact_prefixes(lake: Lake, client: Any, model: str, version: str) -> list[str]:
    """The registry's own artifact folders of a version (its run's and its logged model's) that lie inside the
    lake (the embedded registry), as lake prefixes: the lifecycle removes them with the version."""
    found = []
    try:
        entry = client.get_model_version(model, version)
        found.append(client.get_run(entry.run_id).info.artifact_uri)
        found.append(client.get_model_version_download_uri(model, version))
    except Exception as exc:  # noqa: BLE001 - a server that cannot say: the lake's own files are still recorded
        logger.warning("artifact folders of %s version %s not found in the registry (%s)", model, version, exc)
    root = lake.path("").rstrip("/") + "/"
    return sorted({f"{uri.removeprefix('file://')[len(root):].rstrip('/')}/" for uri in found
                   if uri and uri.removeprefix("file://").startswith(root)})


def delete_version(lake: Lake, client: Any, *, model: str, version: str, by: str, reason: str) -> dict[str, Any]:
    """Delete ``version`` from the registry and mark its lineage record ``deleted``: the lifecycle then removes
    its files (model files and the registry's artifacts) after the grace period, and stops protecting the data
    it was trained on. The version an alias points at is refused: move the alias first."""
    if not by.strip():
        raise ValueError("a deletion needs the name of who deletes")
    held = [a for a in (CHAMPION, CHALLENGER) if alias_version(client, model, a) == str(version)]
    if held:
        raise ValueError(f"{model} version {version} is the {' and '.join(held)}: point the alias at another version "
                         "first (champion: a rollback; challenger: a newer version)")
    client.delete_model_version(model, str(version))
    key = f"{LINEAGE_REFS}/{model}-{version}.json"
    doc = lake.read_json(key) if lake.exists(key) else {"model": model, "version": str(version), "references": []}
    doc.update(status="deleted", deleted_by=by, deletion_reason=reason,
               updated_at=dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
    lake.write_json(key, doc)
    logger.warning("%s version %s deleted from the registry by %s (%s); lineage record %s marked deleted", model,
                   version, by, reason, key)
    return doc


def lake_keys(lake: Lake, uris: list[str]) -> list[str]:
    """Lake keys (relative to the root) of lake URIs; partition keys stay partition keys."""
    root = lake.uri("").rstrip("/") + "/"
    keys = [u[len(root):] if u.startswith(root) else u for u in uris]
    out = []
    for key in keys:
        try:
            out.append(PartitionRef.from_key(key).key)
        except ValueError:
            out.append(key)
    return out
