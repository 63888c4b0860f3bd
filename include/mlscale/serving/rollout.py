"""The rollout record of a model (``_meta/serving/<model>/rollout.json``): which version is in canary, for
what share of traffic, at which stage. ``deploy_model`` writes it; the service re-reads it on every refresh.

Stages: ``canary`` (``version`` takes ``share`` of the traffic beside the champion), ``full`` (the version is the
champion: no canary), ``rolled_back`` (the canary breached its checks: no canary, the champion unchanged).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from typing import Any

from mlscale.lake import Lake
from mlscale.layout import SERVING

STAGES = ("none", "canary", "full", "rolled_back")


@dataclass(frozen=True)
class Rollout:
    stage: str = "none"
    version: str | None = None      #: the canary version (stage ``canary``), or the version the stage is about
    share: float = 0.0              #: the canary's share of traffic
    previous: str | None = None     #: the champion before the rollout (what a rollback returns to)
    by: str = ""
    reason: str = ""
    updated_at: str = ""

    @property
    def canary(self) -> str | None:
        return self.version if self.stage == "canary" and self.share > 0 else None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def rollout_key(model: str) -> str:
    return f"{SERVING}/{model}/rollout.json"


def read_rollout(lake: Lake, model: str) -> Rollout:
    key = rollout_key(model)
    if not lake.exists(key):
        return Rollout()
    doc = lake.read_json(key)
    return Rollout(**{k: doc[k] for k in Rollout.__dataclass_fields__ if k in doc})


def write_rollout(lake: Lake, model: str, rollout: Rollout) -> Rollout:
    if rollout.stage not in STAGES:
        raise ValueError(f"unknown rollout stage {rollout.stage!r}: one of {', '.join(STAGES)}")
    if not 0.0 <= rollout.share <= 1.0:
        raise ValueError(f"a canary share is between 0 and 1, got {rollout.share}")
    stamped = Rollout(**{**rollout.as_dict(), "updated_at": dt.datetime.now(dt.UTC).isoformat()})
    lake.write_json(rollout_key(model), stamped.as_dict())
    return stamped
