"""Should a drift verdict retrain the model? A cooldown and a budget, from the model specification.

A drift alert schedules ``train_model``. Left unchecked, a monitor that flags drift every day would retrain
every day; so a drift-triggered retrain is allowed only when the last one is at least
``training.drift_retrain.cooldown_days`` old and fewer than ``max_per_30_days`` happened in the 30 days up to
the day. Every decision — allowed or held back, with its reasons — is appended to
``_meta/retrain_decisions/<model>/dt=D/`` and the allowed ones are what later decisions count. Decisions are
per day: a rerun of the same day replaces that day's record and counts as one retrain.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import asdict, dataclass
from typing import Any

from mlscale.lake import Lake, parse_day
from mlscale.layout import RETRAIN_DECISIONS, day_prefix

logger = logging.getLogger(__name__)

BUDGET_WINDOW_DAYS = 30


@dataclass(frozen=True)
class RetrainDecision:
    model: str
    dt: str
    retrain: bool
    reasons: tuple[str, ...]
    last_retrain: str | None
    retrains_in_window: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _record_key(model: str, day: str) -> str:
    return f"{day_prefix(f'{RETRAIN_DECISIONS}/{model}', day)}/decision.json"


def _allowed_days(lake: Lake, model: str, before: dt.date) -> list[dt.date]:
    days = []
    for stored in lake.list_files(f"{RETRAIN_DECISIONS}/{model}"):
        if not stored.key.endswith("/decision.json"):
            continue
        doc = lake.read_json(stored.key)
        day = parse_day(doc["dt"])
        if doc.get("retrain") and day < before:
            days.append(day)
    return sorted(days)


def decide_retrain(lake: Lake, *, model: str, dt_: str, drift_detected: bool, drifted: list[str],
                   cooldown_days: int, budget: int) -> RetrainDecision:
    """Decide whether day ``dt_``'s drift verdict retrains ``model``; record and log the decision."""
    day = parse_day(dt_)
    earlier = _allowed_days(lake, model, day)
    last = earlier[-1] if earlier else None
    in_window = [d for d in earlier if (day - d).days < BUDGET_WINDOW_DAYS]
    reasons: list[str] = []
    if not drift_detected:
        reasons.append("no drift")
    if last is not None and (day - last).days < cooldown_days:
        reasons.append(f"cooldown: the last drift-triggered retrain was on {last}, less than {cooldown_days} days ago")
    if len(in_window) >= budget:
        reasons.append(f"budget: {len(in_window)} drift-triggered retrains in the {BUDGET_WINDOW_DAYS} days to "
                       f"{day} already (at most {budget})")
    retrain = not reasons
    if retrain:
        reasons.append(f"drift in {len(drifted)} columns ({', '.join(drifted[:8])}); cooldown {cooldown_days} days "
                       f"and budget {budget} per {BUDGET_WINDOW_DAYS} days allow it")
    decision = RetrainDecision(model=model, dt=day.isoformat(), retrain=retrain, reasons=tuple(reasons),
                               last_retrain=last.isoformat() if last else None, retrains_in_window=len(in_window))
    lake.write_json(_record_key(model, day.isoformat()), decision.as_dict())
    log = logger.warning if retrain else logger.info
    log("drift retrain decision for %s on %s: %s (%s)", model, decision.dt, "retrain" if retrain else "hold",
        "; ".join(reasons))
    return decision
