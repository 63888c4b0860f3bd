"""One lifecycle action (planned, skipped, reported, applied...) and the plan that holds them."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any

from mlscale.lake import file_name_of
from mlscale.layout import LIFECYCLE_PLANS

PLANS_PREFIX = LIFECYCLE_PLANS

# what an action does
DELETE_PARTITION = "delete_partition"   # retention: a committed partition, manifest first (hot and cold files)
DELETE_PREFIX = "delete_prefix"         # retention of drops, finished checkpoints, deleted model versions
DELETE_ORPHANS = "delete_orphans"       # unlisted files of one day directory, older than the grace period
MOVE_COLD = "move_cold"                 # local lake: move a partition to cold/ and rewrite its manifest
TAG_OBJECTS = "tag_objects"             # S3: tag objects with their classification (lifecycle transitions)
PUT_LIFECYCLE = "put_lifecycle_configuration"  # S3: the bucket's lifecycle rules
IDLE_ACTIONS = {"volume": "delete_volume", "instance": "terminate_instance", "snapshot": "delete_snapshot"}
DELETING = (DELETE_PARTITION, DELETE_PREFIX, DELETE_ORPHANS, *IDLE_ACTIONS.values())

# statuses
PLANNED, SKIPPED, REPORTED = "planned", "skipped", "reported"
APPLIED, FAILED, ABSENT = "applied", "failed", "already_absent"


@dataclass(frozen=True)
class Action:
    """One thing the lifecycle does (or refuses to do), with the rule that caused it.

    ``keys`` are the exact lake keys an action touches (orphans, drops, checkpoints, tags); partition
    actions name the partition in ``target`` and resolve its files from the manifest when applied.
    """

    action: str
    target: str
    rule: str
    status: str = PLANNED
    reason: str = ""
    bytes: int = 0
    cold_bytes: int = 0
    objects: int = 0
    keys: tuple[str, ...] = ()
    detail: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["keys"] = list(self.keys)
        return doc

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> Action:
        return cls(**{**doc, "keys": tuple(doc.get("keys", ()))})


@dataclass(frozen=True)
class LifecyclePlan:
    plan_key: str
    run_id: str
    run_day: str
    logical_time: str
    dry_run: bool
    lake_root: str
    zones: tuple[str, ...]
    grace_hours: float
    policy_source: str
    actions: tuple[Action, ...]
    requests: dict[str, int]
    seconds: float
    inventory: dict[str, dict[str, int]]

    def counts(self) -> dict[str, dict[str, int]]:
        """Actions per kind and status, e.g. ``{"delete_partition": {"planned": 3, "skipped": 1}}``."""
        out: dict[str, Counter[str]] = defaultdict(Counter)
        for a in self.actions:
            out[a.action][a.status] += 1
        return {k: dict(v) for k, v in sorted(out.items())}

    def planned_bytes(self) -> dict[str, int]:
        """Bytes the planned actions would free (hot, cold) and move to the cold tier."""
        planned = [a for a in self.actions if a.status == PLANNED]
        deleting = [a for a in planned if a.action in (DELETE_PARTITION, DELETE_PREFIX, DELETE_ORPHANS)]
        return {
            "delete_hot": sum(a.bytes - a.cold_bytes for a in deleting),
            "delete_cold": sum(a.cold_bytes for a in deleting),
            "move_cold": sum(a.bytes for a in planned if a.action == MOVE_COLD),
        }

    def summary(self) -> dict[str, Any]:
        """The small dict that goes to XCom."""
        return {"plan_key": self.plan_key, "run_id": self.run_id, "run_day": self.run_day,
                "logical_time": self.logical_time, "dry_run": self.dry_run, "lake_root": self.lake_root,
                "zones": list(self.zones), "counts": self.counts(), "bytes": self.planned_bytes(),
                "requests": self.requests, "seconds": self.seconds}

    def as_dict(self) -> dict[str, Any]:
        return {**self.summary(), "grace_hours": self.grace_hours, "policy_source": self.policy_source,
                "inventory": self.inventory, "actions": [a.as_dict() for a in self.actions]}


def safe_name(run_id: str) -> str:
    return file_name_of(run_id)[:200]


def plan_key_for(run_id: str) -> str:
    return f"{PLANS_PREFIX}/{safe_name(run_id)}.json"
