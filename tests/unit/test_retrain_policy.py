"""Drift-triggered retraining: a cooldown and a budget per model, every decision recorded with its reasons."""

from __future__ import annotations

import datetime as dt

from mlscale.governance.retrain_policy import decide_retrain
from mlscale.lake import Lake
from mlscale.training import load_model_spec

KW = {"model": "m", "drifted": ["amount", "score"], "cooldown_days": 7, "budget": 2}


def _day(n: int) -> str:
    return (dt.date(2026, 11, 1) + dt.timedelta(days=n)).isoformat()


def test_a_daily_drift_verdict_retrains_at_most_as_the_policy_allows(tmp_path) -> None:
    lake = Lake(str(tmp_path / "lake"))
    decisions = [decide_retrain(lake, dt_=_day(n), drift_detected=True, **KW) for n in range(40)]
    retrained = [d.dt for d in decisions if d.retrain]
    assert retrained == [_day(0), _day(7), _day(30), _day(37)]  # cooldown 7 days; 2 per 30 days
    held = {d.dt: d.reasons for d in decisions if not d.retrain}
    assert any(r.startswith("cooldown:") for r in held[_day(3)])
    assert any(r.startswith("budget:") for r in held[_day(14)])
    record = lake.read_json(f"_meta/retrain_decisions/m/dt={_day(14)}/decision.json")
    assert record["retrain"] is False and record["retrains_in_window"] == 2 and record["last_retrain"] == _day(7)


def test_no_drift_never_retrains_and_a_rerun_of_the_same_day_counts_once(tmp_path) -> None:
    lake = Lake(str(tmp_path / "lake"))
    assert decide_retrain(lake, dt_=_day(0), drift_detected=False, **KW).reasons == ("no drift",)
    first = decide_retrain(lake, dt_=_day(1), drift_detected=True, **KW)
    again = decide_retrain(lake, dt_=_day(1), drift_detected=True, **KW)
    assert first.retrain and again.retrain and again.retrains_in_window == 0


def test_the_model_specification_sets_the_policy() -> None:
    training = load_model_spec("fraud_detector").training
    assert (training.drift_retrain_cooldown_days, training.drift_retrain_budget) == (7, 2)
