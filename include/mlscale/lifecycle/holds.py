"""Legal holds: records (``include/policies/legal_holds.yaml``, ``_meta/legal_holds/*.json``) and S3 Object Lock.

A hold record has ``id``, ``scope`` (``prefix``, or ``zone`` with optional ``dataset`` and inclusive day
range ``from``/``to``), ``reason``, ``who``, ``since`` and optionally ``released`` (a released hold no
longer applies). Whatever any retention rule says, nothing a hold covers is deleted or moved. A hold is
matched against home keys (a cold file is held when its partition is), and in both directions: deleting
a directory that contains held data is refused too.

On S3 buckets with Object Lock enabled, a legal hold on any object of a partition (``get_object_legal_hold``)
holds the whole partition. These are per-object requests, so they are made only for objects about to be
deleted.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pydantic import Field

from mlscale.config_schema import StrictModel, validated
from mlscale.layout import LEGAL_HOLDS, config_dir
from mlscale.lifecycle.keys import day_of, home_key, overlaps

logger = logging.getLogger(__name__)

HOLDS_PREFIX = LEGAL_HOLDS


class HoldError(ValueError):
    """A legal-hold record is incomplete or unreadable: the lifecycle refuses to run without it."""


# The shape of a hold record: its keys and nesting. Values are checked by parse_hold (hence ``Any``).
class ScopeDoc(StrictModel):
    prefix: Any = None
    zone: Any = None
    dataset: Any = None
    from_: Any = Field(None, alias="from")
    to: Any = None


class HoldDoc(StrictModel):
    id: Any = None
    scope: ScopeDoc | None = None
    reason: Any = None
    who: Any = None
    since: Any = None
    released: Any = None


@dataclass(frozen=True)
class LegalHold:
    id: str
    reason: str
    who: str
    since: str
    prefix: str = ""
    zone: str = ""
    dataset: str = ""
    first_day: str = ""
    last_day: str = ""
    released: str = ""
    source: str = ""

    def covers(self, key: str) -> bool:
        """True when deleting ``key`` (file, partition or directory) could remove held data."""
        if self.prefix:
            return overlaps(key, self.prefix)
        parts = home_key(key).rstrip("/").split("/")
        if parts[0] != self.zone:
            return False
        if len(parts) < 2 or not self.dataset or self.dataset == "*":
            return True
        if parts[1] != self.dataset:
            return False
        day = day_of(key)
        if day is None:  # a whole dataset, or a layout without days: held
            return True
        return ((not self.first_day or day.isoformat() >= self.first_day)
                and (not self.last_day or day.isoformat() <= self.last_day))

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class HoldSet:
    holds: tuple[LegalHold, ...] = ()

    def find(self, key: str) -> LegalHold | None:
        """The first active hold covering ``key``."""
        for hold in self.holds:
            if hold.covers(key):
                return hold
        return None

    def __len__(self) -> int:
        return len(self.holds)


def _day(value: Any, what: str, where: str) -> str:
    if value in (None, ""):
        return ""
    try:
        return dt.date.fromisoformat(str(value)[:10]).isoformat()
    except ValueError as exc:
        raise HoldError(f"{where}: {what} {value!r} is not YYYY-MM-DD") from exc


def parse_hold(doc: Any, where: str) -> LegalHold:
    """Validate one hold record; raise :class:`HoldError` naming it."""
    if not isinstance(doc, Mapping):
        raise HoldError(f"{where}: a hold must be a mapping, got {doc!r}")
    hold_id = str(doc.get("id") or "")
    where = f"{where} hold {hold_id or '<no id>'!r}"
    validated(HoldDoc, doc, where, HoldError)
    missing = [f for f in ("id", "reason", "who", "since") if not doc.get(f)]
    if missing:
        raise HoldError(f"{where}: missing {', '.join(missing)} (a hold must say why, who placed it and since when)")
    scope = doc.get("scope")
    if not isinstance(scope, Mapping) or not (scope.get("prefix") or scope.get("zone")):
        raise HoldError(f"{where}: `scope` needs a `prefix` or a `zone` (with optional dataset, from, to)")
    first, last = _day(scope.get("from"), "from", where), _day(scope.get("to"), "to", where)
    if first and last and first > last:
        raise HoldError(f"{where}: scope from {first} is after to {last}")
    return LegalHold(
        id=hold_id, reason=str(doc["reason"]), who=str(doc["who"]), since=_day(doc["since"], "since", where),
        prefix=str(scope.get("prefix") or "").lstrip("/"), zone=str(scope.get("zone") or ""),
        dataset=str(scope.get("dataset") or ""), first_day=first, last_day=last,
        released=_day(doc.get("released"), "released", where), source=where.split(" hold ")[0],
    )


def _records(doc: Any) -> list[Any]:
    if isinstance(doc, Mapping) and "holds" in doc:
        return list(doc.get("holds") or [])
    if isinstance(doc, list):
        return doc
    return [doc]


def default_holds_path() -> Path:
    return config_dir("policies") / "legal_holds.yaml"


DEFAULT_HOLDS_FILE = "default"


def load_holds(path: str | Path | None = DEFAULT_HOLDS_FILE, lake: Any = None,
               extra: Iterable[Mapping[str, Any]] = ()) -> HoldSet:
    """Active holds from the YAML file, the lake's ``_meta/legal_holds/*.json`` and ``extra`` records.

    ``path``: the holds file (by default ``policies/legal_holds.yaml`` of the configuration folder; None: no
    file).

    Raises :class:`HoldError` on any malformed record: deleting data while a hold cannot be read is worse
    than a failed run.
    """
    import yaml

    holds: list[LegalHold] = []
    if path == DEFAULT_HOLDS_FILE:
        path = default_holds_path()
    if path is not None and Path(path).exists():
        try:
            doc = yaml.safe_load(Path(path).read_text()) or {}
        except yaml.YAMLError as exc:
            raise HoldError(f"{path} is not valid YAML: {exc}") from exc
        holds += [parse_hold(r, str(path)) for r in _records(doc)]
    if lake is not None:
        for stored in lake.list_files(HOLDS_PREFIX):
            if not stored.key.endswith((".json", ".yaml", ".yml")):
                continue
            try:
                data = lake.read_bytes(stored.key)
                doc = json.loads(data) if stored.key.endswith(".json") else yaml.safe_load(data)
            except (ValueError, yaml.YAMLError) as exc:
                raise HoldError(f"{lake.uri(stored.key)} is unreadable ({exc}); fix or remove it") from exc
            holds += [parse_hold(r, lake.uri(stored.key)) for r in _records(doc)]
    holds += [parse_hold(r, "<extra>") for r in extra]
    active = tuple(h for h in holds if not h.released)
    ids = [h.id for h in active]
    logger.info("legal holds: %d active (%s), %d released", len(active), ", ".join(ids) or "none",
                len(holds) - len(active))
    return HoldSet(active)


class ObjectLockChecker:
    """Object Lock legal holds of one bucket, checked per object (only for objects about to be deleted)."""

    def __init__(self, s3: Any, bucket: str, base: str, counters: Any = None) -> None:
        self.s3, self.bucket, self.base = s3, bucket, base
        self.counters = counters
        self._enabled: bool | None = None

    def _count(self) -> None:
        if self.counters is not None:
            self.counters["get_requests"] += 1

    @property
    def enabled(self) -> bool:
        if self._enabled is None:
            from botocore.exceptions import ClientError

            self._count()
            try:
                conf = self.s3.get_object_lock_configuration(Bucket=self.bucket)
                self._enabled = conf.get("ObjectLockConfiguration", {}).get("ObjectLockEnabled") == "Enabled"
            except ClientError:
                self._enabled = False
            logger.info("s3://%s: Object Lock %s", self.bucket, "enabled" if self._enabled else "not enabled")
        return self._enabled

    def held(self, keys: Iterable[str]) -> str | None:
        """The first lake key among ``keys`` whose object has a legal hold ON (None if none, or no lock)."""
        if not self.enabled:
            return None
        from botocore.exceptions import ClientError

        for key in keys:
            self._count()
            try:
                status = self.s3.get_object_legal_hold(Bucket=self.bucket, Key=f"{self.base}{key}")
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "")
                if code in ("NoSuchKey", "NoSuchObjectLockConfiguration", "404", "InvalidRequest"):
                    continue
                raise
            if status.get("LegalHold", {}).get("Status") == "ON":
                return key
        return None
