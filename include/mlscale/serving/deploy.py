"""Rolling a promoted version out to online scoring: canary share → live checks for a window → full, or rollback.

The promotion gate moves the registry's ``champion``; online scoring must not switch all traffic at once. So
:func:`start_canary` writes the rollout record (stage ``canary``: the service keeps deciding with the
``previous`` version and gives the new one ``share`` of the traffic, sticky by customer). :func:`canary_health`
reads the service's response log since the canary started and compares the canary's answers with the
previous version's: p99 latency against the model's SLO, and the share of fallback answers (the online
store unreadable, or the model failing). :func:`finish_rollout` then makes the canary the one champion
(stage ``full``) or, on a breach, rolls back: the registry's champion returns to the previous version through
the gate's rollback (recorded like a gate decision) and the stage is ``rolled_back``. Every step appends a
record to ``_meta/governance_audit/dt=D/``.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from mlscale.lake import Lake, parse_day
from mlscale.layout import GOVERNANCE_AUDIT, day_prefix
from mlscale.serving.response_log import read_response_log
from mlscale.serving.rollout import Rollout, read_rollout, write_rollout

logger = logging.getLogger(__name__)

HEALTHY, BREACH, WAITING = "healthy", "breach", "waiting"


@dataclass(frozen=True)
class CanaryHealth:
    model: str
    canary: str
    previous: str | None
    verdict: str
    reasons: tuple[str, ...]
    canary_answers: int
    previous_answers: int
    canary_p99_ms: float | None
    previous_p99_ms: float | None
    canary_fallback_rate: float | None
    previous_fallback_rate: float | None
    since: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _audit(lake: Lake, day: str, doc: dict[str, Any]) -> str:
    stamp = dt.datetime.now(dt.UTC)
    key = (f"{day_prefix(GOVERNANCE_AUDIT, parse_day(day).isoformat())}/"
           f"{stamp:%H%M%S%f}-{doc['model']}-{doc['version']}-rollout-{uuid.uuid4().hex[:8]}.json")
    lake.write_json(key, {**doc, "decided_at": stamp.isoformat(timespec="seconds")})
    return key


def start_canary(lake: Lake, *, model: str, version: str, previous: str | None, share: float, by: str, day: str,
                 run_id: str) -> Rollout:
    """Give ``version`` a ``share`` of online traffic beside ``previous``; with no previous version (the first
    champion) or the same one, the version goes straight to ``full``."""
    if previous is None or str(previous) == str(version):
        rollout = write_rollout(lake, model, Rollout(stage="full", version=str(version), previous=previous, by=by,
                                                     reason="no previous version to compare with: full at once"))
    else:
        rollout = write_rollout(lake, model, Rollout(stage="canary", version=str(version), share=share,
                                                     previous=str(previous), by=by,
                                                     reason=f"canary at {share:.0%} of online traffic"))
    _audit(lake, day, {"model": model, "version": str(version), "decision": f"rollout_{rollout.stage}",
                       "reasons": [rollout.reason], "evidence": rollout.as_dict(), "run_id": run_id, "dt": day})
    logger.info("%s v%s rollout: %s (previous %s, share %.2f)", model, version, rollout.stage, previous,
                rollout.share)
    return rollout


def canary_health(lake: Lake, *, model: str, rollout: Rollout, slo_p99_ms: float, max_fallback_rate: float = 0.01,
                  min_answers: int = 100, now: dt.datetime | None = None) -> CanaryHealth:
    """The canary's answers since the rollout started, against the previous version's and the SLO."""
    import pandas as pd

    since = dt.datetime.fromisoformat(rollout.updated_at) if rollout.updated_at else dt.datetime.min.replace(tzinfo=dt.UTC)
    now = now or dt.datetime.now(dt.UTC)
    frames = []
    day = since.date()
    while day <= now.date():
        frames.append(read_response_log(lake, model, day.isoformat()).to_pandas())
        day += dt.timedelta(days=1)
    log = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if len(log):
        log = log[pd.to_datetime(log["logged_at"], utc=True) >= pd.Timestamp(since)]
    canary, previous = (log[log["version"] == v] if len(log) else log for v in (rollout.version, rollout.previous))

    def p99(rows: Any) -> float | None:
        return float(np.percentile(rows["latency_ms"], 99)) if len(rows) else None

    def fallback_rate(rows: Any) -> float | None:
        return float(rows["fallback"].mean()) if len(rows) else None

    c_p99, p_p99 = p99(canary), p99(previous)
    c_rate, p_rate = fallback_rate(canary), fallback_rate(previous)
    reasons = []
    if c_p99 is not None and c_p99 > slo_p99_ms:
        reasons.append(f"canary p99 latency {c_p99:.1f} ms > SLO {slo_p99_ms:g} ms")
    if c_rate is not None and c_rate > max_fallback_rate and c_rate > (p_rate or 0.0):
        reasons.append(f"canary fallback rate {c_rate:.2%} > {max_fallback_rate:.2%} (previous {p_rate or 0:.2%})")
    if reasons:
        verdict = BREACH
    elif len(canary) < min_answers:
        verdict, reasons = WAITING, [f"{len(canary)} canary answers so far, {min_answers} needed"]
    else:
        verdict = HEALTHY
    return CanaryHealth(model=model, canary=str(rollout.version), previous=rollout.previous, verdict=verdict,
                        reasons=tuple(reasons), canary_answers=len(canary), previous_answers=len(previous),
                        canary_p99_ms=c_p99, previous_p99_ms=p_p99, canary_fallback_rate=c_rate,
                        previous_fallback_rate=p_rate, since=since.isoformat())


def finish_rollout(lake: Lake, *, model: str, health: CanaryHealth, by: str, day: str, run_id: str,
                   tracking_uri: str = "") -> Rollout:
    """``full`` when the canary is healthy (or its window ended without a breach), else roll back."""
    from mlscale.governance.gate import rollback
    from mlscale.training import registry

    current = read_rollout(lake, model)
    if health.verdict == BREACH and health.previous is not None:
        rollback(lake, model=model, version=health.previous, by=by, day=day, tracking_uri=tracking_uri,
                 reason=f"canary v{health.canary} breached: {'; '.join(health.reasons)}")
        rollout = write_rollout(lake, model, Rollout(stage="rolled_back", version=health.canary,
                                                     previous=health.previous, by=by, reason="; ".join(health.reasons)))
    else:
        client = registry.client_for(registry.RegistryConfig.for_lake(lake, tracking_uri))
        if registry.alias_version(client, model, registry.CHAMPION) != health.canary:
            registry.set_alias(client, model, registry.CHAMPION, health.canary)
        why = "canary healthy" if health.verdict == HEALTHY else "canary window ended without a breach"
        rollout = write_rollout(lake, model, Rollout(stage="full", version=health.canary, previous=current.previous,
                                                     by=by, reason=f"{why}: {'; '.join(health.reasons) or 'ok'}"))
    _audit(lake, day, {"model": model, "version": health.canary, "decision": f"rollout_{rollout.stage}",
                       "reasons": [rollout.reason], "evidence": health.as_dict(), "run_id": run_id, "dt": day})
    logger.info("%s v%s rollout %s: %s", model, health.canary, rollout.stage, rollout.reason)
    return rollout
