"""Drift against a rolling reference: statistics from sketches, thresholds learnt from the reference days, and
the monitoring plan (warming-up windows, entity features, columns left out by construction)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from mlscale.governance.drift_plan import monitoring_plan
from mlscale.monitoring import profile_table
from mlscale.monitoring.rolling import Pooled, RollingSettings, compare_column, compare_rolling, sketch_psi
from mlscale.training import load_model_spec
from mlscale.training.inputs import feature_columns
from scipy.stats import t as student_t

SETTINGS = RollingSettings()


def day(values: np.ndarray, name: str = "x"):
    return profile_table(pd.DataFrame({name: values}), columns=[name]).columns[name]


def days(rng: np.random.Generator, n_days: int, n: int, loc: float = 0.0, scale: float = 1.0) -> list:
    return [day(rng.normal(loc, scale, n)) for _ in range(n_days)]


def test_sketch_psi_is_zero_for_one_distribution_and_grows_with_a_shift() -> None:
    rng = np.random.default_rng(1)
    ref = Pooled.of(days(rng, 5, 4000))
    same = Pooled.of([day(rng.normal(0, 1, 4000))])
    shifted = Pooled.of([day(rng.normal(0.5, 1, 4000))])
    assert sketch_psi(ref, same) < 0.01
    assert sketch_psi(ref, shifted) > 0.15


def test_sketch_psi_handles_binary_and_null_heavy_columns() -> None:
    rng = np.random.default_rng(2)
    ref = Pooled.of([day((rng.random(5000) < 0.3).astype(float)) for _ in range(4)])
    assert sketch_psi(ref, Pooled.of([day((rng.random(5000) < 0.3).astype(float))])) < 0.005
    assert sketch_psi(ref, Pooled.of([day((rng.random(5000) < 0.5).astype(float))])) > 0.1
    with_nulls = np.where(rng.random(5000) < 0.4, np.nan, rng.normal(0, 1, 5000))
    assert sketch_psi(ref, Pooled.of([day(with_nulls)])) > 0.1  # the null share moved from 0 to 40 %


def test_a_day_like_its_reference_passes_and_a_shifted_one_drifts() -> None:
    rng = np.random.default_rng(3)
    reference = days(rng, 14, 5000)
    calm = compare_column("x", reference, day(rng.normal(0, 1, 5000)), SETTINGS)
    moved = compare_column("x", reference, day(rng.normal(0.3, 1, 5000)), SETTINGS)
    assert calm.status == "ok" and moved.status == "drifted"
    assert "ks" in moved.reason and moved.ks > moved.ks_threshold and moved.psi > moved.psi_threshold
    t = float(student_t.ppf(1 - SETTINGS.alpha, 13)) * np.sqrt(1 + 1 / 14)  # 14 leave-one-out statistics
    spread = max(calm.reference_psi_std, SETTINGS.min_log_std)
    assert calm.psi_threshold == pytest.approx(max(SETTINGS.min_psi, np.exp(calm.reference_psi_mean + t * spread)))


def test_thresholds_follow_the_reference_days_own_noise() -> None:
    """A column of a hundred entities moves more from day to day than one of thousands of events: each gets
    a threshold from its own day-to-day variability, so ordinary days pass both."""
    rng = np.random.default_rng(4)
    sparse, dense = days(rng, 14, 100), days(rng, 14, 20000)
    sparse_day = compare_column("x", sparse, day(rng.normal(0, 1, 100)), SETTINGS)
    dense_day = compare_column("x", dense, day(rng.normal(0, 1, 20000)), SETTINGS)
    assert sparse_day.psi_threshold > 2 * dense_day.psi_threshold
    assert sparse_day.status == dense_day.status == "ok"


def test_false_alarm_rate_on_unchanged_days_is_low() -> None:
    rng = np.random.default_rng(5)
    alarms = 0
    for _ in range(60):
        reference = days(rng, 14, 2000)
        alarms += compare_column("x", reference, day(rng.normal(0, 1, 2000)), SETTINGS).drifted
    assert alarms <= 1


def test_a_busy_weekday_is_judged_against_the_weeks_it_belongs_to() -> None:
    """A count feature that is 18 % higher every Saturday: two whole weeks as the reference put Saturdays in it,
    so the next Saturday passes while a fixed PSI cut-off against the pooled days would call it drifted. The
    weekly swing widens the column's own thresholds (a Saturday three times as busy as usual is still found); columns
    without a weekly swing keep their narrow ones."""
    rng = np.random.default_rng(7)

    def weekday(i: int, lift: float = 1.0) -> object:
        return day(rng.poisson(6 * (1.18 if i % 7 == 5 else 1.0) * lift, 20000).astype(float))

    reference = [weekday(i) for i in range(14)]
    saturday = weekday(19)
    judged = compare_column("x", reference, saturday, SETTINGS)
    assert judged.status == "ok", judged.reason
    assert sketch_psi(Pooled.of(reference), Pooled.of([saturday])) > SETTINGS.min_psi  # what a fixed cut-off sees
    assert compare_column("x", reference, weekday(19, lift=3.0), SETTINGS).status == "drifted"


def test_the_gate_reference_is_the_last_days_of_the_training_period_before_the_day() -> None:
    from types import SimpleNamespace

    from mlscale.governance.drift_days import training_days

    with_events = {f"2026-03-{d:02d}" for d in range(1, 32) if d != 20}  # the 20th's drop never came
    profiles = SimpleNamespace(stored=SimpleNamespace(doc={"training_set": {"first_event_day": "2026-03-05",
                                                                            "last_event_day": "2026-03-25"}}),
                               has_events=lambda d: d in with_events)
    settings = RollingSettings(reference_days=6)
    assert training_days(profiles, "2026-03-30", settings) == [
        "2026-03-25", "2026-03-24", "2026-03-23", "2026-03-22", "2026-03-21", "2026-03-19"]
    assert training_days(profiles, "2026-03-08", settings) == ["2026-03-07", "2026-03-06", "2026-03-05"]
    profiles.stored.doc = {}
    assert training_days(profiles, "2026-03-30", settings) == []


def test_columns_are_not_judged_without_enough_reference_days_or_values() -> None:
    rng = np.random.default_rng(6)
    profiles = [profile_table(pd.DataFrame({"a": rng.normal(size=500), "b": rng.normal(size=500)}))
                for _ in range(3)]
    current = profile_table(pd.DataFrame({"a": rng.normal(size=500), "b": rng.normal(size=500)}))
    out = compare_rolling(profiles, current, SETTINGS, ["a", "b", "c"], {"b": ("warming_up", "needs 30 days")})
    assert [(c.name, c.status) for c in out] == [("a", "insufficient_data"), ("b", "warming_up"),
                                                ("c", "insufficient_data")]
    assert "3 reference days" in out[0].reason and out[1].reason == "needs 30 days"
    few = compare_column("a", [day(rng.normal(size=10)) for _ in range(5)], day(rng.normal(size=10)), SETTINGS)
    assert few.status == "insufficient_data"


def test_the_plan_covers_every_model_input_and_says_how_each_is_compared() -> None:
    spec = load_model_spec("fraud_detector")
    plan = {c.name: c for c in monitoring_plan(spec)}
    assert list(plan)[:-1] == feature_columns(spec) and list(plan)[-1] == "score"
    merchant = next(n for n in plan if n.startswith("merchant_risk") and n.endswith("__txn_count_7d"))
    assert plan[merchant].entity == "merchant_id" and plan[merchant].per_day and plan[merchant].history_needed == 1
    mean = next(n for n in plan if n.endswith("__spend_mean_30d"))
    assert plan[mean].window_days == 30 and not plan[mean].per_day and plan[mean].history_needed == 30
    first_seen = [c for c in plan.values() if c.name.endswith("__days_since_first_seen")]
    assert first_seen and all("by construction" in c.excluded for c in first_seen)
    assert plan["amount"].entity == "" and plan["amount"].window_days == 0
    assert plan["amount_vs_customer_mean"].window_days == 30  # over spend_mean_30d
    assert plan["score"].window_days == 90
    only = monitoring_plan(spec, ["amount", mean])
    assert [c.name for c in only] == [mean, "amount", "score"] and only[-1].window_days == 30
