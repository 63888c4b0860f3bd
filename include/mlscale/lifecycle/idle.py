"""Idle cloud resources of the platform (EC2/EBS through boto3): found every run, acted on only on request.

* unattached EBS volumes (state ``available``) older than ``volume_min_age_days``;
* stopped instances tagged as this platform's Dask/Spark workers (``worker_tag``) stopped for longer
  than ``instance_idle_days`` (the stop time comes from ``StateTransitionReason``, else the launch time);
* snapshots owned by the account older than ``snapshot_max_age_days`` and used by no AMI of the account.

Ages are measured from the run's logical time. Only resources that carry the platform's owner tag
(``owner_tag``; worker instances by definition) are ``actionable``: other teams' volumes and snapshots
are reported, never deleted.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from mlscale.lifecycle.actions import IDLE_ACTIONS, PLANNED, REPORTED, Action
from mlscale.lifecycle.policy import IdlePolicy, Prices

logger = logging.getLogger(__name__)
_STOPPED_AT = re.compile(r"\((\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2})")


@dataclass(frozen=True)
class IdleResource:
    kind: str            # volume | instance | snapshot
    id: str
    reason: str
    age_days: float
    size_gb: int = 0
    monthly_cost: float = 0.0
    actionable: bool = False
    tags: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _tags(item: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in item.get("Tags", []) or []}


def _age_days(now: dt.datetime, then: dt.datetime) -> float:
    if then.tzinfo is None:
        then = then.replace(tzinfo=dt.UTC)
    return round((now - then).total_seconds() / 86400, 2)


def stopped_since(instance: dict[str, Any]) -> dt.datetime:
    """When a stopped instance stopped: ``User initiated (YYYY-MM-DD HH:MM:SS GMT)``, else its launch time."""
    match = _STOPPED_AT.search(instance.get("StateTransitionReason") or "")
    if match:
        return dt.datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S").replace(tzinfo=dt.UTC)
    return instance["LaunchTime"]


def find_idle(ec2: Any, *, now: dt.datetime, policy: IdlePolicy, prices: Prices) -> list[IdleResource]:
    """Idle volumes, stopped worker instances and old snapshots (read-only calls, paginated)."""
    found = [*_idle_volumes(ec2, now, policy, prices), *_idle_instances(ec2, now, policy),
             *_old_snapshots(ec2, now, policy, prices)]
    for r in found:
        logger.info("idle %s %s: %s (%s, ~%.2f/month)", r.kind, r.id, r.reason,
                    "actionable" if r.actionable else "report only: not tagged as the platform's", r.monthly_cost)
    return found


def _owned(tags: dict[str, str], policy: IdlePolicy) -> bool:
    return tags.get(policy.owner_tag_key) == policy.owner_tag_value


def _idle_volumes(ec2: Any, now: dt.datetime, policy: IdlePolicy, prices: Prices) -> list[IdleResource]:
    """Unattached EBS volumes older than ``volume_min_age_days``."""
    found: list[IdleResource] = []
    for page in ec2.get_paginator("describe_volumes").paginate(Filters=[{"Name": "status", "Values": ["available"]}]):
        for vol in page.get("Volumes", []):
            age = _age_days(now, vol["CreateTime"])
            if age >= policy.volume_min_age_days:
                tags = _tags(vol)
                found.append(IdleResource("volume", vol["VolumeId"], f"unattached for {age:g} d (created)", age,
                                          vol.get("Size", 0), round(vol.get("Size", 0) * prices.ebs_gb_month, 2),
                                          _owned(tags, policy), tags))
    return found


def _idle_instances(ec2: Any, now: dt.datetime, policy: IdlePolicy) -> list[IdleResource]:
    """The platform's worker instances stopped for longer than ``instance_idle_days``."""
    found: list[IdleResource] = []
    filters = [{"Name": "instance-state-name", "Values": ["stopped"]},
               {"Name": f"tag:{policy.worker_tag_key}", "Values": list(policy.worker_tag_values)}]
    for page in ec2.get_paginator("describe_instances").paginate(Filters=filters):
        for reservation in page.get("Reservations", []):
            for inst in reservation.get("Instances", []):
                age = _age_days(now, stopped_since(inst))
                if age >= policy.instance_idle_days:
                    tags = _tags(inst)
                    found.append(IdleResource("instance", inst["InstanceId"],
                                              f"{tags.get(policy.worker_tag_key)} stopped for {age:g} d", age,
                                              actionable=True, tags=tags))
    return found


def _snapshots_in_use(ec2: Any) -> set[str]:
    """The snapshots behind the account's own AMIs."""
    in_use: set[str] = set()
    for image in ec2.describe_images(Owners=["self"]).get("Images", []):
        for mapping in image.get("BlockDeviceMappings", []):
            if mapping.get("Ebs", {}).get("SnapshotId"):
                in_use.add(mapping["Ebs"]["SnapshotId"])
    return in_use


def _old_snapshots(ec2: Any, now: dt.datetime, policy: IdlePolicy, prices: Prices) -> list[IdleResource]:
    """The account's snapshots older than ``snapshot_max_age_days`` that no AMI of the account uses."""
    found: list[IdleResource] = []
    in_use = _snapshots_in_use(ec2)
    for page in ec2.get_paginator("describe_snapshots").paginate(OwnerIds=["self"]):
        for snap in page.get("Snapshots", []):
            age = _age_days(now, snap["StartTime"])
            if age >= policy.snapshot_max_age_days and snap["SnapshotId"] not in in_use:
                tags = _tags(snap)
                found.append(IdleResource("snapshot", snap["SnapshotId"], f"{age:g} d old, used by no AMI", age,
                                          snap.get("VolumeSize", 0),
                                          round(snap.get("VolumeSize", 0) * prices.snapshot_gb_month, 2),
                                          _owned(tags, policy), tags))
    return found


def idle_actions(resources: list[IdleResource], *, act: bool) -> list[Action]:
    """Plan entries: ``planned`` for actionable resources when ``act``, else ``reported``."""
    return [Action(IDLE_ACTIONS[r.kind], r.id, "idle-resources", PLANNED if act and r.actionable else REPORTED,
                   r.reason, detail=r.as_dict()) for r in resources]


def act_on_idle(ec2: Any, action: Action) -> None:
    """Delete an idle volume or snapshot, or terminate a stopped worker instance."""
    if action.action == IDLE_ACTIONS["volume"]:
        ec2.delete_volume(VolumeId=action.target)
    elif action.action == IDLE_ACTIONS["instance"]:
        ec2.terminate_instances(InstanceIds=[action.target])
    elif action.action == IDLE_ACTIONS["snapshot"]:
        ec2.delete_snapshot(SnapshotId=action.target)
    else:
        raise ValueError(f"not an idle-resource action: {action.action}")
    logger.info("%s %s", action.action, action.target)
