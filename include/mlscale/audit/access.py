"""The sensitive-data access log: who read what, why, and when.

Pipeline code reads sensitive partitions (see :mod:`mlscale.audit.sensitivity`) through
:func:`read_sensitive`, which reads through the partition's manifest like :meth:`Lake.read_table` and
appends one record to the log. Reads done by other means (Spark, DuckDB, a notebook) are recorded with
:func:`log_access`. Every read needs a purpose from :data:`PURPOSES`; anything else is refused before any
data is read.

The log is append-only and works the same on local and S3 lakes: each record is one small JSON-lines
object with a name of its own, ``_meta/access_log/dt=<UTC day>/<HHMMSSffffff>-<uuid>.jsonl``. Objects are
never rewritten or deleted by this module, so concurrent writers cannot lose each other's records.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.dataset as pds

from mlscale.audit.sensitivity import SensitivityPolicy, is_sensitive, load_policy, sensitive_columns
from mlscale.lake import MANIFEST_NAME, Lake, PartitionRef
from mlscale.layout import ACCESS_LOG
from mlscale.lineage.locate import LakeLocator
from mlscale.lineage.node import key_parts

logger = logging.getLogger(__name__)

ACCESS_LOG_PREFIX = ACCESS_LOG
PURPOSES: dict[str, str] = {
    "bias_audit": "fairness metrics by protected attribute (audit_bias)",
    "model_training": "building a training set or fitting a model (train_model)",
    "scoring": "batch scoring with the champion model (score_batch)",
    "shadow_comparison": "comparing champion and challenger predictions",
    "drift_monitoring": "feature and prediction drift against the training reference (monitor_drift)",
    "quarantine_review": "inspecting rejected rows to fix a source or a contract",
    "debugging": "an engineer investigating an incident",
    "deletion_request": "finding a data subject's rows to honour an erasure request",
    "regulatory_inquiry": "answering a regulator or an internal audit",
}

__all__ = [
    "ACCESS_LOG_PREFIX", "PURPOSES", "AccessLogError", "AccessRecord", "Actor", "UnknownPurpose", "is_sensitive",
    "log_access", "read_sensitive", "sensitive_columns",
]


class UnknownPurpose(ValueError):
    """A read named no purpose, or one outside :data:`PURPOSES`."""


class AccessLogError(RuntimeError):
    """A record could not be written; the data read is not returned."""


@dataclass(frozen=True)
class Actor:
    """A task instance reading data. Build one from a task's context with :meth:`from_context`."""

    dag_id: str
    task_id: str
    run_id: str

    @classmethod
    def from_context(cls, context: Mapping[str, Any]) -> Actor:
        """From an Airflow task context (its ``ti``); no Airflow import needed."""
        ti = context["ti"]
        return cls(dag_id=str(ti.dag_id), task_id=str(ti.task_id), run_id=str(ti.run_id))

    def as_dict(self) -> dict[str, str]:
        return {"dag_id": self.dag_id, "task_id": self.task_id, "run_id": self.run_id}


ActorLike = Actor | Mapping[str, Any] | str


def actor_dict(actor: ActorLike) -> dict[str, str]:
    """``{dag_id, task_id, run_id}`` for a task, ``{name}`` for a person or a service; else an error."""
    if isinstance(actor, Actor):
        return actor.as_dict()
    if isinstance(actor, str):
        if not actor.strip():
            raise ValueError("actor is empty: name who reads (a user, a service) or pass the task's context")
        return {"name": actor.strip()}
    if "ti" in actor:
        return Actor.from_context(actor).as_dict()
    missing = [k for k in ("dag_id", "task_id", "run_id") if not actor.get(k)]
    if missing:
        raise ValueError(f"actor {dict(actor)!r} lacks {missing}: give dag_id, task_id and run_id, or a name")
    return {k: str(actor[k]) for k in ("dag_id", "task_id", "run_id")}


def check_purpose(purpose: str | None) -> str:
    if not purpose or purpose not in PURPOSES:
        known = ", ".join(sorted(PURPOSES))
        raise UnknownPurpose(f"purpose {purpose!r} is not a declared purpose for reading sensitive data; use one "
                             f"of: {known} (add a new one to mlscale.audit.access.PURPOSES with a review)")
    return purpose


@dataclass(frozen=True)
class AccessRecord:
    """One read of lake data: who (``actor``), what (``uri``, ``columns``, ``rows``), why (``purpose``), when."""

    id: str
    at: str
    actor: dict[str, str]
    purpose: str
    uri: str
    key: str
    zone: str
    dataset: str
    dt: str
    columns: tuple[str, ...]
    sensitive_columns: tuple[str, ...]
    rows: int
    filters: str | None = None
    via: str = "read_sensitive"
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def sensitive(self) -> bool:
        return bool(self.sensitive_columns)

    @property
    def day(self) -> str:
        return self.at[:10]

    @property
    def actor_label(self) -> str:
        """The DAG for a task, else the name given (what reports group by)."""
        return self.actor.get("dag_id") or self.actor.get("name") or "?"

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "at": self.at, "actor": dict(self.actor), "purpose": self.purpose, "uri": self.uri,
                "key": self.key, "zone": self.zone, "dataset": self.dataset, "dt": self.dt,
                "columns": list(self.columns), "sensitive_columns": list(self.sensitive_columns),
                "sensitive": self.sensitive, "rows": self.rows, "filters": self.filters, "via": self.via,
                "note": self.note, "extra": dict(self.extra)}

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> AccessRecord:
        return cls(id=str(doc["id"]), at=str(doc["at"]), actor={str(k): str(v) for k, v in doc["actor"].items()},
                   purpose=str(doc["purpose"]), uri=str(doc["uri"]), key=str(doc["key"]), zone=str(doc["zone"]),
                   dataset=str(doc["dataset"]), dt=str(doc.get("dt", "")), columns=tuple(doc["columns"]),
                   sensitive_columns=tuple(doc.get("sensitive_columns", ())), rows=int(doc["rows"]),
                   filters=doc.get("filters"), via=str(doc.get("via", "")), note=str(doc.get("note", "")),
                   extra=dict(doc.get("extra") or {}))


def read_sensitive(lake: Lake, ref_or_key: PartitionRef | str, *, columns: Sequence[str] | None, purpose: str,
                   actor: ActorLike, filters: pds.Expression | None = None, note: str = "",
                   at: dt.datetime | None = None, policy: SensitivityPolicy | None = None) -> pa.Table:
    """Read a committed partition through its manifest and record the read in the access log.

    ``ref_or_key`` is a :class:`PartitionRef`, a partition key or its lake URI. ``columns`` must be given
    (``None`` reads every column, and the log then lists them all). The purpose and the actor are checked
    before anything is read; the record is written before the table is returned, and if it cannot be
    written the read fails (:class:`AccessLogError`): no sensitive data leaves unrecorded. One call, one
    record. ``at`` (UTC) is the time recorded, now by default.
    """
    check_purpose(purpose)
    who = actor_dict(actor)
    ref = _partition_ref(lake, ref_or_key)
    table = lake.read_table(ref, columns=list(columns) if columns is not None else None, filter=filters)
    read = list(columns) if columns is not None else list(table.column_names)
    _append(lake, ref.key, columns=read, rows=table.num_rows, purpose=purpose, who=who,
            filters=None if filters is None else str(filters), via="read_sensitive", note=note, at=at,
            policy=policy)
    return table


def log_access(lake: Lake, uri_or_key: str | PartitionRef, *, columns: Sequence[str], rows: int, purpose: str,
               actor: ActorLike, filters: str | None = None, via: str = "external", note: str = "",
               at: dt.datetime | None = None, policy: SensitivityPolicy | None = None) -> AccessRecord:
    """Record a read done by other means (Spark, DuckDB, a notebook); same checks as :func:`read_sensitive`.

    ``uri_or_key`` may name a partition, a file or a directory of the lake; ``via`` says what read it.
    """
    check_purpose(purpose)
    who = actor_dict(actor)
    key = uri_or_key.key if isinstance(uri_or_key, PartitionRef) else LakeLocator.of(lake).key_of(uri_or_key)
    if rows < 0:
        raise ValueError(f"rows {rows} < 0 for {key}")
    return _append(lake, key, columns=list(columns), rows=rows, purpose=purpose, who=who, filters=filters,
                   via=via, note=note, at=at, policy=policy)


def _partition_ref(lake: Lake, ref_or_key: PartitionRef | str) -> PartitionRef:
    if isinstance(ref_or_key, PartitionRef):
        return ref_or_key
    key = LakeLocator.of(lake).key_of(ref_or_key)
    if key.endswith("/" + MANIFEST_NAME):
        key = key[: -len(MANIFEST_NAME) - 1]
    return PartitionRef.from_key(key)


def _append(lake: Lake, key: str, *, columns: list[str], rows: int, purpose: str, who: dict[str, str],
            filters: str | None, via: str, note: str, at: dt.datetime | None,
            policy: SensitivityPolicy | None) -> AccessRecord:
    when = _utc(at)
    zone, dataset, day = key_parts(key)
    record = AccessRecord(
        id=uuid.uuid4().hex, at=when.isoformat(timespec="microseconds"), actor=who, purpose=purpose,
        uri=lake.uri(key), key=key, zone=zone, dataset=dataset, dt=day, columns=tuple(columns),
        sensitive_columns=sensitive_columns(key, columns, policy or load_policy()), rows=rows, filters=filters,
        via=via, note=note)
    log_key = f"{ACCESS_LOG_PREFIX}/dt={when.date().isoformat()}/{when.strftime('%H%M%S%f')}-{record.id}.jsonl"
    try:
        if lake.exists(log_key):  # names are unique by construction; never overwrite a record regardless
            raise AccessLogError(f"{lake.uri(log_key)} already exists; refusing to overwrite an access record")
        lake.write_bytes(log_key, (json.dumps(record.as_dict(), sort_keys=True) + "\n").encode())
    except AccessLogError:
        raise
    except Exception as exc:
        raise AccessLogError(f"could not append to the access log at {lake.uri(ACCESS_LOG_PREFIX)} ({exc}); "
                             f"the read of {lake.uri(key)} is refused until the log is writable") from exc
    logger.info("access log: %s read %s (%s columns, %s sensitive, %d rows) for %s",
                record.actor_label, record.uri, len(columns), len(record.sensitive_columns), rows, purpose)
    return record


def _utc(at: dt.datetime | None) -> dt.datetime:
    if at is None:
        return dt.datetime.now(dt.UTC)
    return at.replace(tzinfo=dt.UTC) if at.tzinfo is None else at.astimezone(dt.UTC)
