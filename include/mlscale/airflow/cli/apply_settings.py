"""Apply an Astro-format ``airflow_settings.yaml`` to the local Airflow metadata database, idempotently."""

from __future__ import annotations

import json
import logging
import secrets
from pathlib import Path
from typing import Any

import yaml

logger = logging.getLogger(__name__)
GENERATE = "generate"


class SettingsError(ValueError):
    """The settings file is malformed."""


def load_settings(path: str | Path) -> dict[str, list[dict[str, Any]]]:
    doc = yaml.safe_load(Path(path).read_text()) or {}
    section = doc.get("airflow", {}) or {}
    if not isinstance(section, dict):
        raise SettingsError(f"{path}: top-level 'airflow' must be a mapping")
    result = {}
    for kind, key in (("connections", "conn_id"), ("pools", "pool_name"), ("variables", "variable_name")):
        items = section.get(kind) or []
        for i, item in enumerate(items):
            if not isinstance(item, dict) or not item.get(key):
                raise SettingsError(f"{path}: airflow.{kind}[{i}] needs '{key}'")
        result[kind] = items
    return result


def apply_settings(path: str | Path) -> dict[str, int]:
    """Create or update every connection, pool and variable; re-applying changes nothing.

    A connection password ``generate`` is replaced by a random secret once; later applies keep it.
    """
    # the metadata-database models (this is an admin command, not task code)
    from airflow.models.connection import Connection
    from airflow.models.pool import Pool
    from airflow.models.variable import Variable
    from airflow.utils.session import create_session

    settings = load_settings(path)
    with create_session() as session:
        for item in settings["connections"]:
            conn_id = item["conn_id"]
            existing = session.query(Connection).filter(Connection.conn_id == conn_id).one_or_none()
            password = item.get("conn_password")
            if password == GENERATE:
                password = existing.password if existing and existing.password else secrets.token_hex(32)
            extra = item.get("conn_extra")
            fields: dict[str, Any] = {
                "conn_type": item.get("conn_type") or "generic",
                "host": item.get("conn_host"),
                "schema": item.get("conn_schema"),
                "login": item.get("conn_login"),
                "password": password,
                "port": item.get("conn_port"),
                "extra": json.dumps(extra) if isinstance(extra, dict) else extra,
            }
            if existing is None:
                session.add(Connection(conn_id=conn_id, **fields))
            else:
                for name, value in fields.items():
                    setattr(existing, name, value)
        for item in settings["pools"]:
            pool = session.query(Pool).filter(Pool.pool == item["pool_name"]).one_or_none()
            if pool is None:
                session.add(Pool(pool=item["pool_name"], slots=int(item.get("pool_slot", 1)),
                                 description=item.get("pool_description", ""), include_deferred=False))
            else:
                pool.slots = int(item.get("pool_slot", 1))
                pool.description = item.get("pool_description", "")
    for item in settings["variables"]:
        Variable.set(item["variable_name"], item.get("variable_value"),
                     description=item.get("variable_description"))
    counts = {kind: len(items) for kind, items in settings.items()}
    logger.info("applied %s from %s", counts, path)
    return counts
