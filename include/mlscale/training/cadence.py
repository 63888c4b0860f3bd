"""Is a model due for its scheduled retrain? ``training.retrain_every_days`` in its specification (the retrain
cadence report's recommendation, adopted) against the day its latest version was trained for.

Only scheduled retraining asks: a drift alert, a run that names the model, or a backfill always trains.
"""

from __future__ import annotations

import datetime as dt

from mlscale.lake import Lake
from mlscale.training.spec import ModelSpec


def latest_training_day(lake: Lake, model: str) -> str | None:
    """The day the newest registered version (``models/<model>/<version>/model.json``) was trained for."""
    days = []
    for stored in lake.list_files(f"models/{model}"):
        if stored.key.endswith("/model.json") and stored.key.count("/") == 3:
            try:
                day = lake.read_json(stored.key).get("registered_day")
            except ValueError:
                continue
            if day:
                days.append(str(day))
    return max(days, default=None)


def due_for_retrain(lake: Lake, spec: ModelSpec, day: str) -> tuple[bool, str]:
    """(due, why) for a scheduled retrain of ``spec``'s model as of ``day``."""
    every = spec.training.retrain_every_days
    if not every:
        return True, "no training.retrain_every_days: every scheduled run retrains"
    last = latest_training_day(lake, spec.name)
    if last is None:
        return True, "no version registered yet"
    age = (dt.date.fromisoformat(day) - dt.date.fromisoformat(last)).days
    if age >= every:
        return True, f"latest version trained for {last}, {age} days before {day} (retrain every {every} days)"
    return False, f"latest version trained for {last}, only {age} of {every} days before {day}"
