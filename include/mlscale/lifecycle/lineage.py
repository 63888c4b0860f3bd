"""Lineage references of registered model versions: what the lifecycle must never delete.

The model registry writes (and the lifecycle DAG only reads) one JSON record per model version under
``_meta/lineage_refs/`` (any file name ending in ``.json``; a file may also hold a list of records)::

    {
      "model": "fraud_xgb",                      # registered model name
      "version": "7",                            # registry version (string or number)
      "status": "registered",                    # anything but "deleted" protects the references
      "references": [                            # lake partition keys or key prefixes
        "training/fraud_xgb/dt=2026-11-24",
        "features/customer_7d/dt=2026-11"        # a string prefix: every day of November
      ],
      "artifacts": ["models/fraud_xgb/7/"],      # optional; default models/<model>/<version>/
      "updated_at": "2026-11-25T03:00:00Z"       # optional, informational
    }

While a version is registered, nothing that overlaps its references or artifacts (see
:func:`mlscale.lifecycle.keys.overlaps`) is deleted, cold or hot. When the registry deletes a version it sets
``"status": "deleted"`` (or removes the record); the version's artifacts are then removed after the
orphan grace period (a version without any record is only reported, unless the policy's
``models.delete_unrecorded`` is true). An unreadable record fails the run: guessing is not safe.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from mlscale.layout import LINEAGE_REFS
from mlscale.lifecycle.keys import overlaps

logger = logging.getLogger(__name__)

LINEAGE_PREFIX = LINEAGE_REFS
RELEASED_STATUSES = ("deleted",)


class LineageError(ValueError):
    """A lineage record is malformed; the message names the file."""


@dataclass(frozen=True)
class LineageRecord:
    model: str
    version: str
    status: str = "registered"
    references: tuple[str, ...] = ()
    artifacts: tuple[str, ...] = ()
    source: str = ""

    @property
    def registered(self) -> bool:
        return self.status.lower() not in RELEASED_STATUSES

    @property
    def label(self) -> str:
        return f"{self.model}:{self.version}"

    def protects(self, key: str) -> bool:
        return self.registered and any(overlaps(key, ref) for ref in (*self.references, *self.artifacts))

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class LineageRefs:
    records: tuple[LineageRecord, ...] = ()

    def protecting(self, key: str) -> LineageRecord | None:
        """The first registered version whose lineage overlaps ``key``."""
        for record in self.records:
            if record.protects(key):
                return record
        return None

    def record_for(self, model: str, version: str) -> LineageRecord | None:
        found = [r for r in self.records if r.model == model and r.version == str(version)]
        registered = [r for r in found if r.registered]
        return (registered or found)[0] if found else None

    def __len__(self) -> int:
        return len(self.records)


def parse_record(doc: Any, where: str) -> LineageRecord:
    if not isinstance(doc, Mapping) or not doc.get("model") or doc.get("version") in (None, ""):
        raise LineageError(f"{where}: a lineage record needs `model` and `version`, got {doc!r}")
    refs = doc.get("references") or []
    artifacts = doc.get("artifacts")
    if isinstance(refs, str) or not all(isinstance(r, str) and r for r in refs):
        raise LineageError(f"{where}: `references` must be a list of lake keys or prefixes")
    model, version = str(doc["model"]), str(doc["version"])
    if artifacts is None:
        artifacts = [f"models/{model}/{version}/"]
    if isinstance(artifacts, str) or not all(isinstance(a, str) and a for a in artifacts):
        raise LineageError(f"{where}: `artifacts` must be a list of lake prefixes")
    return LineageRecord(model=model, version=version, status=str(doc.get("status") or "registered"),
                         references=tuple(r.lstrip("/") for r in refs),
                         artifacts=tuple(a.lstrip("/") for a in artifacts), source=where)


def load_lineage(lake: Any, extra: Iterable[Mapping[str, Any]] = ()) -> LineageRefs:
    """Every record under ``_meta/lineage_refs/`` (plus ``extra``); raises :class:`LineageError` on a bad one."""
    records: list[LineageRecord] = []
    for stored in lake.list_files(LINEAGE_PREFIX):
        if not stored.key.endswith(".json"):
            continue
        where = lake.uri(stored.key)
        try:
            doc = json.loads(lake.read_bytes(stored.key))
        except ValueError as exc:
            raise LineageError(f"{where} is not JSON ({exc}); the registry must rewrite it") from exc
        for item in doc if isinstance(doc, list) else [doc]:
            records.append(parse_record(item, where))
    records += [parse_record(r, "<extra>") for r in extra]
    live = sum(r.registered for r in records)
    logger.info("lineage: %d records (%d registered versions protect their references)", len(records), live)
    return LineageRefs(tuple(records))
