"""Plan the lifecycle of a lake for one run: what to delete, move, tag or leave alone, and why.

The plan pages through the lake one dataset at a time (see :mod:`mlscale.lifecycle.listing`), groups
objects by day directory (``<zone>/<dataset>/dt=D``), reads the manifests of each batch of groups, and
decides with the policy (:mod:`mlscale.lifecycle.policy`):

* **retention** — a committed partition older than ``delete_after_days`` (and ``min_keep_days``) by its
  ``dt=`` day relative to the run's day is deleted through :meth:`Lake.delete_partition`; landing drops
  (no manifests) by day directory; finished checkpoints ``checkpoints/<job>/<run>/`` (marker
  ``_finished.json`` ``{"status": …, "finished_at": ISO time}`` or ``_SUCCESS``) ``delete_after_days``
  after they finished; artifacts ``models/<model>/<version>/`` of versions the registry deleted (see
  :mod:`mlscale.lifecycle.lineage`) after the grace period, with the other artifact prefixes their lineage
  record lists (the embedded MLflow registry's run and logged-model folders under ``_mlflow/artifacts/``);
* **cold tier** — older than ``cold_after_days``: moved to ``cold/`` (local) or tagged for the bucket's
  lifecycle transitions (S3, see :mod:`mlscale.lifecycle.tiering`);
* **orphans** — files of a day directory that no manifest lists (crashed attempts, ``_staging``
  leftovers, temporary files, files a later commit superseded), and unlisted files under ``cold/``, once older
  than the grace period (mtime vs the run's logical time; a superseded file ages from the time its commit
  recorded, so a reader still on the previous version keeps its files for the whole grace period).

Nothing a legal hold covers, or that a registered model version's lineage references, is ever in the
delete set: such actions are recorded as ``skipped`` with the hold or version that stopped them. A day
directory whose manifest cannot be read is left alone entirely. The plan itself deletes nothing.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import posixpath
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from mlscale.lake import MANIFEST_NAME, Lake, Manifest, ManifestError, PartitionRef
from mlscale.lake.lake import COLD_ROOT, SUPERSEDED_DIR
from mlscale.lake.manifest import VERSIONS_DIR
from mlscale.lifecycle.actions import (
    DELETE_ORPHANS,
    DELETE_PARTITION,
    DELETE_PREFIX,
    MOVE_COLD,
    PLANNED,
    PUT_LIFECYCLE,
    SKIPPED,
    TAG_OBJECTS,
    Action,
    LifecyclePlan,
    plan_key_for,
)
from mlscale.lifecycle.holds import HoldSet, ObjectLockChecker
from mlscale.lifecycle.keys import day_of, group_of
from mlscale.lifecycle.lineage import LineageRefs
from mlscale.lifecycle.listing import LakeLister, ObjectInfo
from mlscale.lifecycle.policy import DROP_ZONES, MANAGED_ZONES, PARTITIONED_ZONES, Policy, Rule
from mlscale.lifecycle.tiering import current_rules, lifecycle_rules, needs_update, object_tags

logger = logging.getLogger(__name__)

FINISHED_MARKERS = ("_finished.json", "_SUCCESS")
BATCH_GROUPS = 128
HOT_CLASSES = ("", "STANDARD")


class PlanError(ValueError):
    """The plan's inputs are unusable (unknown zone, run day in the future...)."""


@dataclass
class _Group:
    key: str
    objects: list[ObjectInfo] = field(default_factory=list)


def iter_groups(objects: Iterable[ObjectInfo], depth: int) -> Iterator[_Group]:
    """Consecutive objects sharing their first ``depth`` key components (listings are in key order)."""
    current: _Group | None = None
    for obj in objects:
        key = group_of(obj.key, depth)
        if key is None:
            continue
        if current is None or current.key != key:
            if current is not None:
                yield current
            current = _Group(key)
        current.objects.append(obj)
    if current is not None:
        yield current


def _batches(groups: Iterator[_Group], size: int) -> Iterator[list[_Group]]:
    while batch := list(islice(groups, size)):
        yield batch


def orphan_kind(key: str) -> str:
    if key.endswith("/"):
        return "directory_marker"  # an empty object S3 clients leave to keep a "directory"
    if "/_staging/" in key:
        return "staging"
    if ".tmp-" in posixpath.basename(key):
        return "temporary"
    return "unlisted"


class Planner:
    """Decisions for one run; see the module docstring. Use :func:`build_plan`."""

    def __init__(self, lake: Lake, policy: Policy, holds: HoldSet, lineage: LineageRefs, *, run_day: dt.date,
                 logical_time: dt.datetime, grace_hours: float, lister: LakeLister,
                 object_lock: ObjectLockChecker | None = None) -> None:
        self.lake, self.policy, self.holds, self.lineage = lake, policy, holds, lineage
        self.run_day, self.logical_time = run_day, logical_time
        self.grace_hours = grace_hours
        self.cutoff = (logical_time - dt.timedelta(hours=grace_hours)).timestamp()
        self.lister = lister
        self.object_lock = object_lock
        self.actions: list[Action] = []
        self.inventory: dict[str, dict[str, int]] = defaultdict(lambda: {"objects": 0, "bytes": 0})
        self.notes: Counter[str] = Counter()

    # -- protection --------------------------------------------------------------------------
    def guard(self, target: str, lock_keys: Iterable[str] = (), *, lineage: bool = True) -> tuple[str, dict[str, Any]] | None:
        """Why ``target`` must not be deleted (a legal hold, a registered model's lineage), or None."""
        hold = self.holds.find(target)
        if hold is not None:
            return f"legal_hold:{hold.id}", {"hold": hold.as_dict()}
        if lineage:
            record = self.lineage.protecting(target)
            if record is not None:
                return f"lineage:{record.label}", {"lineage": record.as_dict()}
        if self.object_lock is not None:
            held = self.object_lock.held(lock_keys)
            if held is not None:
                return "object_lock_legal_hold", {"object": held}
        return None

    def add(self, action: Action) -> None:
        self.actions.append(action)

    def _guarded(self, action: Action, lock_keys: Iterable[str]) -> Action:
        why = self.guard(action.target, lock_keys)
        if why is None:
            return action
        reason, detail = why
        return Action(action.action, action.target, action.rule, SKIPPED, reason, action.bytes, action.cold_bytes,
                      action.objects, action.keys, {**action.detail, **detail, "would": action.reason})

    def _counted(self, objects: Iterable[ObjectInfo], zone: str) -> Iterator[ObjectInfo]:
        stats = self.inventory[zone]
        for obj in objects:
            stats["objects"] += 1
            stats["bytes"] += obj.size
            yield obj

    # -- zones -------------------------------------------------------------------------------
    def plan(self, zones: Iterable[str]) -> list[Action]:
        for zone in zones:
            if zone in PARTITIONED_ZONES:
                self._partitioned(zone)
            elif zone in DROP_ZONES:
                self._drops(zone)
            elif zone == "checkpoints":
                self._checkpoints()
            elif zone == "models":
                self._models()
            else:
                raise PlanError(f"zone {zone!r} is not managed by the lifecycle ({', '.join(MANAGED_ZONES)})")
        return self.actions

    def _partitioned(self, zone: str) -> None:
        cold_listed: set[str] = set()
        for dataset in self.lister.children(zone):
            rule = self.policy.rule_for(zone, dataset)
            if rule is None:
                self.notes[f"{zone}/{dataset}: no rule, kept"] += 1
            objects = self._counted(self.lister.iter_objects(f"{zone}/{dataset}"), zone)
            for batch in _batches(iter_groups(objects, 3), BATCH_GROUPS):
                manifests = [o.key for g in batch for o in g.objects if o.key.endswith("/" + MANIFEST_NAME)]
                bodies = self.lister.read_many(manifests)
                for group in batch:
                    self._partition_group(rule, group, bodies, cold_listed)
        cold_zone = f"{COLD_ROOT}/{zone}"
        for group in iter_groups(self._counted(self.lister.iter_objects(cold_zone), COLD_ROOT), 4):
            unlisted = [o for o in group.objects if o.key not in cold_listed]
            if unlisted:
                self._orphans(group.key, unlisted, home=group.key[len(COLD_ROOT) + 1:])

    def _partition_group(self, rule: Rule | None, group: _Group, bodies: dict[str, bytes | None],
                         cold_listed: set[str]) -> None:
        if day_of(group.key) is None:
            self.notes[f"{group.key}: not a YYYY-MM-DD day, left alone"] += 1
            return
        listed: set[str] = set()
        manifests: dict[str, Manifest] = {}
        for obj in group.objects:
            if not obj.key.endswith("/" + MANIFEST_NAME):
                continue
            body = bodies.get(obj.key)
            if body is None:
                continue  # deleted since it was listed
            try:
                manifest = Manifest.from_json(body, self.lake.uri(obj.key))
            except ManifestError as exc:
                logger.error("%s", exc)
                self.add(Action(DELETE_ORPHANS, group.key, "orphans", SKIPPED, "unreadable_manifest",
                                detail={"manifest": obj.key, "error": str(exc)[:300]}))
                return  # which files are listed is unknown: touch nothing here
            manifests[obj.key[: -len(MANIFEST_NAME) - 1]] = manifest
            keys = manifest.file_keys()
            listed.update(keys)
            cold_listed.update(k for k in keys if k.startswith(f"{COLD_ROOT}/"))
        listing = {o.key: o for o in group.objects}
        if rule is not None:
            for part, manifest in sorted(manifests.items()):
                self._retention(rule, PartitionRef.from_key(part), manifest, listing)
        versions = {f"{part}/{VERSIONS_DIR}/" for part in manifests}  # a live partition's committed versions
        unlisted = [o for o in group.objects if o.key not in listed and not o.key.endswith("/" + MANIFEST_NAME)
                    and not any(o.key.startswith(v) for v in versions)]
        if unlisted:
            self._orphans(group.key, unlisted, home=group.key)

    def _retention(self, rule: Rule, ref: PartitionRef, manifest: Manifest, listing: dict[str, ObjectInfo]) -> None:
        age = (self.run_day - ref.day).days
        keys = manifest.file_keys()
        cold_bytes = sum(f.bytes for f in manifest.files if f.key_in(ref.key).startswith(f"{COLD_ROOT}/"))
        detail = {"day": ref.dt, "age_days": age, "attempt": manifest.attempt, "run_id": manifest.run_id}
        keep = max(rule.delete_after_days or 0, rule.min_keep_days)
        if rule.delete_after_days is not None and age > keep:
            action = Action(DELETE_PARTITION, ref.key, rule.name, PLANNED,
                            f"age {age} d > delete_after_days {rule.delete_after_days}", manifest.bytes,
                            cold_bytes, len(keys) + 1, detail=detail)
            self.add(self._guarded(action, [f"{ref.key}/{MANIFEST_NAME}", *keys]))
        elif rule.cold_after_days is not None and age > rule.cold_after_days:
            reason = f"age {age} d > cold_after_days {rule.cold_after_days}"
            if self.lister.is_s3:
                hot = [k for k in keys if k in listing and listing[k].storage_class in HOT_CLASSES]
                if hot:
                    self.add(Action(TAG_OBJECTS, ref.key, rule.name, PLANNED, reason,
                                    sum(listing[k].size for k in hot), 0, len(hot), tuple(hot),
                                    {**detail, "tags": object_tags(rule)}))
            else:
                hot_files = [f for f in manifest.files if not f.key_in(ref.key).startswith(f"{COLD_ROOT}/")]
                if hot_files:
                    action = Action(MOVE_COLD, ref.key, rule.name, PLANNED, reason, sum(f.bytes for f in hot_files),
                                    0, len(hot_files), detail=detail)
                    hold = self.holds.find(ref.key)  # a held partition is not touched at all
                    if hold is not None:
                        action = Action(MOVE_COLD, ref.key, rule.name, SKIPPED, f"legal_hold:{hold.id}",
                                        action.bytes, 0, action.objects, detail={**detail, "hold": hold.as_dict()})
                    self.add(action)

    def _superseded_at(self, group_key: str, home: str, objects: list[ObjectInfo]) -> dict[str, float]:
        """When each superseded file of day directory ``home`` was superseded (its records, see
        :mod:`mlscale.lake.lake`): such a file ages from then, not from when it was written. A hot group holds its
        records among ``objects``; a cold group's are read from its home."""
        marker = f"/{SUPERSEDED_DIR}/"
        records = [o.key for o in objects if marker in o.key] if group_key == home \
            else [f.key for f in self.lake.list_files(home) if marker in f.key]
        times: dict[str, float] = {}
        for body in self.lister.read_many([k for k in records if k.endswith(".json")]).values():
            if body is None:
                continue
            try:
                doc = json.loads(body)
                when = dt.datetime.fromisoformat(doc["superseded_at"]).timestamp()
            except (ValueError, KeyError, TypeError):
                continue  # an unreadable record: its files age by their own time
            for file_key in doc.get("files", []):
                times[file_key] = max(times.get(file_key, 0.0), when)
        return times

    def _orphans(self, group_key: str, objects: list[ObjectInfo], *, home: str) -> None:
        superseded = self._superseded_at(group_key, home, objects)

        def aged(o: ObjectInfo) -> bool:
            if o.mtime is None:
                return False
            return max(o.mtime, superseded.get(o.key, 0.0)) < self.cutoff

        old = [o for o in objects if aged(o)]
        self.notes["orphans within grace"] += len(objects) - len(old)
        by_reason: dict[tuple[str, str], list[ObjectInfo]] = defaultdict(list)
        for obj in old:
            why = self.guard(obj.key, [obj.key])
            by_reason[(PLANNED, "") if why is None else (SKIPPED, why[0])].append(obj)
        for (status, reason), objs in sorted(by_reason.items()):
            kinds = Counter(orphan_kind(o.key) for o in objs)
            cold = sum(o.size for o in objs if o.key.startswith(f"{COLD_ROOT}/"))
            self.add(Action(DELETE_ORPHANS, group_key, "orphans", status,
                            reason or f"listed by no manifest, older than {self.grace_hours:g} h",
                            sum(o.size for o in objs), cold, len(objs), tuple(o.key for o in objs),
                            {"kinds": dict(kinds), "partition_dir": home, "sizes": [o.size for o in objs]}))

    def _drops(self, zone: str) -> None:
        for dataset in self.lister.children(zone):
            rule = self.policy.rule_for(zone, dataset)
            for group in iter_groups(self._counted(self.lister.iter_objects(f"{zone}/{dataset}"), zone), 3):
                day = day_of(group.key)
                if rule is None or rule.delete_after_days is None or day is None:
                    continue
                age = (self.run_day - day).days
                if age > max(rule.delete_after_days, rule.min_keep_days):
                    keys = tuple(o.key for o in group.objects)
                    action = Action(DELETE_PREFIX, group.key, rule.name, PLANNED,
                                    f"age {age} d > delete_after_days {rule.delete_after_days}",
                                    sum(o.size for o in group.objects), 0, len(keys), keys,
                                    {"day": day.isoformat(), "age_days": age})
                    self.add(self._guarded(action, keys))

    def _checkpoints(self) -> None:
        for job in self.lister.children("checkpoints"):
            rule = self.policy.rule_for("checkpoints", job)
            if rule is None or rule.delete_after_days is None:
                continue
            limit = self.logical_time - dt.timedelta(days=rule.delete_after_days)
            for group in iter_groups(self._counted(self.lister.iter_objects(f"checkpoints/{job}"), "checkpoints"), 3):
                finished = self._finished_at(group)
                if finished is None:
                    self.notes["checkpoints of unfinished runs"] += 1
                    continue
                if finished < limit:
                    keys = tuple(o.key for o in group.objects)
                    action = Action(DELETE_PREFIX, group.key, rule.name, PLANNED,
                                    f"run finished {finished:%Y-%m-%d %H:%M}, > {rule.delete_after_days} d before "
                                    "the run's logical time", sum(o.size for o in group.objects), 0, len(keys), keys,
                                    {"finished_at": finished.isoformat()})
                    self.add(self._guarded(action, keys))

    def _finished_at(self, group: _Group) -> dt.datetime | None:
        for obj in group.objects:
            name = posixpath.basename(obj.key)
            if name not in FINISHED_MARKERS or obj.key.count("/") != 3:
                continue
            if name == "_finished.json":
                body = self.lister.read_bytes(obj.key)
                try:
                    doc = json.loads(body or b"{}")
                    if doc.get("finished_at"):
                        stamp = dt.datetime.fromisoformat(str(doc["finished_at"]).replace("Z", "+00:00"))
                        return stamp if stamp.tzinfo else stamp.replace(tzinfo=dt.UTC)
                except ValueError:
                    logger.warning("%s: unreadable marker, using its modification time", self.lake.uri(obj.key))
            if obj.mtime is not None:
                return dt.datetime.fromtimestamp(obj.mtime, dt.UTC)
        return None

    def _models(self) -> None:
        for model in self.lister.children("models"):
            rule = self.policy.rule_for("models", model)
            if rule is None:
                continue
            for group in iter_groups(self._counted(self.lister.iter_objects(f"models/{model}"), "models"), 3):
                version = group.key.split("/")[2]
                record = self.lineage.record_for(model, version)
                if record is not None and record.registered:
                    self.notes["model versions registered"] += 1
                    continue
                if record is None and not self.policy.delete_unrecorded_models:
                    self.notes["model versions without a lineage record (kept)"] += 1
                    continue
                # the registry's own copies (an embedded registry's run and logged-model artifacts) go with them
                objects = list(group.objects) + [o for prefix in (record.artifacts if record else ())
                                                 if not prefix.startswith(f"{group.key}/") and prefix != group.key
                                                 for o in self.lister.iter_objects(prefix)]
                newest = max((o.mtime or float("inf")) for o in objects)
                if newest >= self.cutoff:
                    continue
                keys = tuple(o.key for o in objects)
                why = "deleted in the registry" if record is not None else "no lineage record"
                action = Action(DELETE_PREFIX, group.key, rule.name, PLANNED,
                                f"version {why}, files older than {self.grace_hours:g} h",
                                sum(o.size for o in objects), 0, len(keys), keys,
                                {"model": model, "version": version})
                self.add(self._guarded(action, keys))


def build_plan(lake: Lake, policy: Policy, holds: HoldSet, lineage: LineageRefs, *, run_id: str,
               run_day: dt.date, logical_time: dt.datetime, zones: Iterable[str], grace_hours: float | None = None,
               dry_run: bool = True, lister: LakeLister | None = None, extra_actions: Iterable[Action] = (),
               write: bool = True) -> LifecyclePlan:
    """Plan the run and (``write``) store it at ``_meta/lifecycle_plans/<run_id>.json``.

    Deterministic for a given lake state, policy, holds, lineage, ``run_day`` and ``logical_time``
    (never the wall clock). ``extra_actions`` (e.g. idle resources) are added as they are.
    """
    started = time.perf_counter()
    zones = tuple(zones)
    unknown = [z for z in zones if z not in MANAGED_ZONES]
    if unknown:
        raise PlanError(f"zones {unknown} are not managed by the lifecycle; choose from {', '.join(MANAGED_ZONES)}")
    if logical_time.tzinfo is None:
        raise PlanError("logical_time must be timezone-aware (UTC)")
    lister = lister or LakeLister(lake)
    grace = policy.orphan_grace_hours if grace_hours is None else float(grace_hours)
    lock = ObjectLockChecker(lister.s3, lister.bucket, lister.base, lister.counters) if lister.is_s3 else None
    planner = Planner(lake, policy, holds, lineage, run_day=run_day, logical_time=logical_time, grace_hours=grace,
                      lister=lister, object_lock=lock)
    actions = planner.plan(zones)
    if lister.is_s3:
        wanted = lifecycle_rules(policy, lister.base)
        if needs_update(current_rules(lister.s3, lister.bucket, lister.counters), wanted):
            actions.append(Action(PUT_LIFECYCLE, f"s3://{lister.bucket}/{lister.base}", "cold-tier", PLANNED,
                                  "bucket lifecycle rules differ from the policy", detail={"rules": wanted}))
    actions.extend(extra_actions)
    for note, n in sorted(planner.notes.items()):
        logger.info("note: %s (%d)", note, n)
    plan = LifecyclePlan(
        plan_key=plan_key_for(run_id), run_id=run_id, run_day=run_day.isoformat(),
        logical_time=logical_time.isoformat(), dry_run=dry_run, lake_root=lake.root, zones=zones, grace_hours=grace,
        policy_source=policy.source, actions=tuple(actions), requests=dict(lister.counters),
        seconds=round(time.perf_counter() - started, 3), inventory={k: dict(v) for k, v in planner.inventory.items()},
    )
    if write:
        lake.write_json(plan.plan_key, plan.as_dict())
    log_plan(plan)
    return plan


def log_plan(plan: LifecyclePlan) -> None:
    logger.info("lifecycle plan for %s (%s, %s): %s", plan.run_day, plan.run_id,
                "DRY RUN" if plan.dry_run else "will apply", plan.plan_key)
    for action, statuses in plan.counts().items():
        logger.info("  %-28s %s", action, ", ".join(f"{n} {s}" for s, n in sorted(statuses.items())))
    b = plan.planned_bytes()
    logger.info("  bytes: delete %d hot + %d cold, move %d to cold; requests %s; %.2fs",
                b["delete_hot"], b["delete_cold"], b["move_cold"], plan.requests, plan.seconds)
    for a in plan.actions:
        if a.status == SKIPPED:
            logger.info("  skipped %s %s: %s", a.action, a.target, a.reason)
