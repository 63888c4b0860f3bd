"""Apply a lifecycle plan: re-check every deletion against holds and lineage, act, audit each outcome.

Holds and lineage are reloaded by the caller just before applying, and every deleting action is checked
again (a hold placed between plan and apply wins). Partitions are deleted through the manifest protocol
(manifest first, then files, cold copies included); orphans only if no manifest of their day directory
lists them now. A failed action does not stop the others: all outcomes go to the audit log and the run
fails at the end (:class:`ApplyFailed`), so a retry re-applies what is left (every action is idempotent).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from mlscale.lake import MANIFEST_NAME, Lake, Manifest, PartitionRef
from mlscale.lake.lake import COLD_ROOT, CommitError
from mlscale.lifecycle.actions import (
    ABSENT,
    APPLIED,
    DELETE_ORPHANS,
    DELETE_PARTITION,
    DELETE_PREFIX,
    FAILED,
    IDLE_ACTIONS,
    MOVE_COLD,
    PLANNED,
    PUT_LIFECYCLE,
    SKIPPED,
    TAG_OBJECTS,
    Action,
)
from mlscale.lifecycle.audit import AuditLog
from mlscale.lifecycle.holds import HoldSet, ObjectLockChecker
from mlscale.lifecycle.idle import act_on_idle
from mlscale.lifecycle.lineage import LineageRefs
from mlscale.lifecycle.listing import LakeLister
from mlscale.lifecycle.tiering import put_rules, tag_objects

logger = logging.getLogger(__name__)


class ApplyFailed(RuntimeError):
    """Some actions failed; the audit log has each one's error. A retry applies what is left."""


@dataclass(frozen=True)
class ApplyResult:
    run_id: str
    statuses: dict[str, dict[str, int]]
    bytes_deleted_hot: int = 0
    bytes_deleted_cold: int = 0
    bytes_moved_cold: int = 0
    objects_deleted: int = 0
    bytes_deleted_published: int = 0  # Feast's offline copies of deleted feature partitions
    requests: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    errors: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["errors"] = list(self.errors)
        return doc


class Applier:
    def __init__(self, lake: Lake, holds: HoldSet, lineage: LineageRefs, *, run_id: str, lister: LakeLister,
                 audit: AuditLog, ec2: Any = None, feast_root: str | None = None,
                 superseded_cutoff: float | None = None) -> None:
        self.lake, self.holds, self.lineage, self.run_id = lake, holds, lineage, run_id
        self.lister, self.audit, self.ec2, self.feast_root = lister, audit, ec2, feast_root
        self.superseded_cutoff = superseded_cutoff  # epoch s: files superseded after this are kept
        self.lock = (ObjectLockChecker(lister.s3, lister.bucket, lister.base, lister.counters)
                     if lister.is_s3 else None)
        self.freed = Counter[str]()
        self.statuses: dict[str, Counter[str]] = defaultdict(Counter)
        self.errors: list[str] = []

    def protected(self, target: str, lock_keys: Iterable[str] = ()) -> str | None:
        hold = self.holds.find(target)
        if hold is not None:
            return f"legal_hold:{hold.id}"
        record = self.lineage.protecting(target)
        if record is not None:
            return f"lineage:{record.label}"
        if self.lock is not None and self.lock.held(lock_keys) is not None:
            return "object_lock_legal_hold"
        return None

    def done(self, action: Action, status: str, reason: str = "", **detail: Any) -> None:
        self.statuses[action.action][status] += 1
        self.audit.record(action, status=status, reason=reason or action.reason, **detail)

    def apply(self, action: Action) -> None:
        handler = {
            DELETE_PARTITION: self._delete_partition, DELETE_PREFIX: self._delete_prefix,
            DELETE_ORPHANS: self._delete_orphans, MOVE_COLD: self._move_cold, TAG_OBJECTS: self._tag,
            PUT_LIFECYCLE: self._put_lifecycle,
        }.get(action.action)
        if action.action in IDLE_ACTIONS.values():
            handler = self._idle
        if handler is None:
            raise ValueError(f"unknown action {action.action!r} in the plan")
        try:
            handler(action)
        except Exception as exc:  # noqa: BLE001 - one failure must not stop (or hide) the other actions
            logger.exception("%s %s failed", action.action, action.target)
            self.errors.append(f"{action.action} {action.target}: {exc}")
            self.done(action, FAILED, f"{type(exc).__name__}: {exc}"[:500])

    # -- handlers ----------------------------------------------------------------------------
    def _delete_partition(self, action: Action) -> None:
        ref = PartitionRef.from_key(action.target)
        manifest = self.lake.manifest(ref)
        if manifest is None:
            self.done(action, ABSENT)
            return
        keys = manifest.file_keys()
        why = self.protected(ref.key, [f"{ref.key}/{MANIFEST_NAME}", *keys])
        if why:
            self.done(action, SKIPPED, why)
            return
        cold = sum(f.bytes for f in manifest.files if f.key_in(ref.key).startswith(f"{COLD_ROOT}/"))
        count = self.lake.delete_partition(ref)
        self.lister.counters["delete_requests"] += count + 1
        if ref.zone == "features":
            self.freed["published"] += self._delete_published_copy(ref)
        self._prune(ref.key)
        if cold:
            self._prune(f"{COLD_ROOT}/{ref.key}")
        self.freed["hot"] += manifest.bytes - cold
        self.freed["cold"] += cold
        self.freed["objects"] += count + 1
        self.done(action, APPLIED, bytes_freed=manifest.bytes, attempt=manifest.attempt)

    def _delete_prefix(self, action: Action) -> None:
        why = self.protected(action.target, action.keys)
        if why:
            self.done(action, SKIPPED, why)
            return
        self.lister.delete_keys(action.keys)
        self._prune(action.target)
        self.freed["hot"] += action.bytes
        self.freed["objects"] += len(action.keys)
        self.done(action, APPLIED)

    def _delete_orphans(self, action: Action) -> None:
        partition_dir = action.detail.get("partition_dir", action.target)
        listed = self._listed(partition_dir)
        recent = self._recently_superseded(partition_dir)
        keys, kept = [], Counter[str]()
        for key in action.keys:
            if key in listed:
                kept["listed now"] += 1
                continue
            if key in recent:  # a commit superseded it after the plan was made: it waits for the grace period
                kept["superseded within the grace period"] += 1
                continue
            why = self.protected(key, [key])
            if why:
                kept[why] += 1
                continue
            keys.append(key)
        if kept:
            self.done(Action(**{**action.as_dict(), "keys": tuple(k for k in action.keys if k not in keys)}), SKIPPED,
                      "; ".join(f"{n} {r}" for r, n in sorted(kept.items())))
        if not keys:
            return
        self.lister.delete_keys(keys)
        sizes = dict(zip(action.keys, _sizes(action), strict=False))
        freed = sum(sizes.get(k, 0) for k in keys)
        cold = sum(sizes.get(k, 0) for k in keys if k.startswith(f"{COLD_ROOT}/"))
        self.freed["hot"] += freed - cold
        self.freed["cold"] += cold
        self.freed["objects"] += len(keys)
        self._prune(action.target)
        self.done(Action(**{**action.as_dict(), "keys": tuple(keys)}), APPLIED, objects_deleted=len(keys))

    def _recently_superseded(self, partition_dir: str) -> set[str]:
        """Files a commit recorded as superseded less than the grace period before the run's logical time."""
        if self.superseded_cutoff is None:
            return set()
        return {key for key, when in self.lake.superseded(partition_dir).items()
                if not when or dt.datetime.fromisoformat(when).timestamp() >= self.superseded_cutoff}

    def _listed(self, partition_dir: str) -> set[str]:
        listed: set[str] = set()
        for stored in self.lake.list_files(partition_dir):
            if stored.key.endswith("/" + MANIFEST_NAME):
                listed.update(Manifest.from_json(self.lake.read_bytes(stored.key), stored.key).file_keys())
        return listed

    def _move_cold(self, action: Action) -> None:
        ref = PartitionRef.from_key(action.target)
        hold = self.holds.find(ref.key)
        if hold is not None:
            self.done(action, SKIPPED, f"legal_hold:{hold.id}")
            return
        manifest = self.lake.manifest(ref)
        if manifest is None:
            self.done(action, ABSENT)
            return
        if manifest.attempt != action.detail.get("attempt", manifest.attempt):
            self.done(action, SKIPPED, "partition rewritten since the plan; the next run decides again")
            return
        try:
            moved = self.lake.move_partition(ref, COLD_ROOT, run_id=self.run_id)
        except CommitError as exc:
            self.done(action, SKIPPED, str(exc))
            return
        self._prune(ref.key)
        before = {f.path: f for f in manifest.files}
        self.freed["moved"] += sum(f.bytes for f in moved.files if f.path not in before)
        self.done(action, APPLIED)

    def _tag(self, action: Action) -> None:
        tags = dict(action.detail.get("tags", {}))
        n = tag_objects(self.lister.s3, self.lister.bucket, (self.lister.s3_key(k) for k in action.keys), tags,
                        self.lister.counters)
        self.done(action, APPLIED, objects_tagged=n)

    def _put_lifecycle(self, action: Action) -> None:
        rules = put_rules(self.lister.s3, self.lister.bucket, list(action.detail["rules"]), self.lister.counters)
        self.done(action, APPLIED, rules=len(rules))

    def _idle(self, action: Action) -> None:
        if self.ec2 is None:
            self.done(action, SKIPPED, "no EC2 client (aws_default not configured)")
            return
        act_on_idle(self.ec2, action)
        self.done(action, APPLIED)

    def _prune(self, prefix: str) -> None:
        """Remove directories emptied below (and including) ``prefix`` (S3: empty directory markers)."""
        if self.lister.is_s3:
            markers = [o.key for o in self.lister.iter_objects(prefix) if o.key.endswith("/") and o.size == 0]
            if markers:
                self.lister.delete_keys(markers)
            return
        top = self.lake.path(prefix)
        for path, _dirs, _files in os.walk(top, topdown=False):
            try:
                os.rmdir(path)
            except OSError:
                pass


    def _delete_published_copy(self, ref: PartitionRef) -> int:
        """A deleted as-of table's copy in Feast's offline directory goes with it (else Feast would keep serving
        it to training sets); returns its bytes. No Feast directory for this lake: nothing to do."""
        from mlscale.feature_store.config import FeatureStoreConfigError, feast_paths

        try:
            path = feast_paths(self.lake, root=self.feast_root).offline_file(ref.dataset, ref.dt)
        except FeatureStoreConfigError:  # an S3 lake without a Feast directory given: nothing was published here
            return 0
        if not os.path.exists(path):
            return 0
        size = os.path.getsize(path)
        os.remove(path)
        logger.info("deleted the published copy of %s: %s (%d bytes)", ref.key, path, size)
        return size


def _sizes(action: Action) -> list[int]:
    sizes = action.detail.get("sizes")
    if sizes:
        return list(sizes)
    each = action.bytes // max(len(action.keys), 1)
    return [each] * len(action.keys)


def apply_plan(lake: Lake, plan: dict[str, Any], holds: HoldSet, lineage: LineageRefs, *, audit: AuditLog,
               lister: LakeLister | None = None, ec2: Any = None, feast_root: str | None = None) -> ApplyResult:
    """Apply the planned actions of ``plan`` (a plan document as written by the plan step).

    Deletions are re-checked against ``holds`` and ``lineage`` (reload them just before calling). A deleted
    feature partition's published copy in Feast's offline directory (``feast_root``, default ``<lake>/_feast``)
    is deleted with it. Raises :class:`ApplyFailed` after auditing everything if any action failed.
    """
    started = time.perf_counter()
    lister = lister or LakeLister(lake)
    cutoff = None
    if plan.get("logical_time") and plan.get("grace_hours") is not None:
        cutoff = (dt.datetime.fromisoformat(plan["logical_time"])
                  - dt.timedelta(hours=float(plan["grace_hours"]))).timestamp()
    applier = Applier(lake, holds, lineage, run_id=plan["run_id"], lister=lister, audit=audit, ec2=ec2,
                      feast_root=feast_root, superseded_cutoff=cutoff)
    actions = [Action.from_dict(a) for a in plan["actions"]]
    for action in actions:
        if action.status == PLANNED:
            applier.apply(action)
    audit.flush()
    result = ApplyResult(
        run_id=plan["run_id"], statuses={k: dict(v) for k, v in sorted(applier.statuses.items())},
        bytes_deleted_hot=applier.freed["hot"], bytes_deleted_cold=applier.freed["cold"],
        bytes_moved_cold=applier.freed["moved"], objects_deleted=applier.freed["objects"],
        bytes_deleted_published=applier.freed["published"],
        requests=dict(lister.counters), seconds=round(time.perf_counter() - started, 3), errors=tuple(applier.errors),
    )
    logger.info("lifecycle applied for %s: %s; freed %d hot + %d cold bytes, moved %d to cold",
                plan["run_day"], result.statuses, result.bytes_deleted_hot, result.bytes_deleted_cold,
                result.bytes_moved_cold)
    if applier.errors:
        raise ApplyFailed(f"{len(applier.errors)} lifecycle actions failed (see _meta/lifecycle_audit): "
                          + "; ".join(applier.errors[:5]))
    return result
