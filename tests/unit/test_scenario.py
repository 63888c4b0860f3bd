"""Scenario files: episodes by day, their effects on the generated drops, and the truth written beside them."""

from __future__ import annotations

import datetime as dt
import io
import json

import numpy as np
import pyarrow.parquet as pq
import pytest
from mlscale.synthetic import generate_day
from mlscale.synthetic.entities import REGIONS, build_customers
from mlscale.synthetic.generate import SCENARIO_KEY, generate_world, reported_fraud, truth_key
from mlscale.synthetic.scenario import Effects, Episode, Scenario, ScenarioError, WorldDynamics, load_scenario
from mlscale.synthetic.sources import event_ids
from mlscale.synthetic.world import churn_days, core_day

START = dt.date(2026, 6, 1)
ROWS = 3000
SEED = 5


def test_the_shipped_scenario_schedules_each_kind_of_episode() -> None:
    scenario = load_scenario("half_year")
    kinds = [e.kind for e in scenario.episodes]
    assert kinds.count("drift") >= 3 and "outage" in kinds and "label_backlog" in kinds and "biased_labels" in kinds
    biased = scenario.biased_labels(140)
    assert biased is not None and (biased.attribute, biased.group) == ("region", "PL") and scenario.biased_labels(0) is None
    assert scenario.effects(0) == Effects() and scenario.effects(44).ordinary
    assert scenario.effects(45).amount_scale == pytest.approx(1.3) and scenario.effects(52).ordinary
    assert scenario.effects(121).region == "PL" and scenario.effects(121).amount_scale == pytest.approx(1.15)
    assert scenario.outage_share(70, "transactions") == pytest.approx(0.4)
    assert scenario.extra_label_delay(103) == 10 and scenario.extra_label_delay(99) == 0
    truth = scenario.as_dict(START)
    first = next(e for e in truth["episodes"] if e["name"] == "pricier_baskets")
    assert first["first"] == "2026-07-16" and "amount" in first["columns"]


def test_drift_effects_move_the_payments() -> None:
    plain = core_day(SEED, START, 3, ROWS, Effects())
    surge = core_day(SEED, START, 3, ROWS, Effects(ecom_share=0.6, amount_scale=2.0))
    assert (surge.tx.channel == 1).mean() > 0.5 > (plain.tx.channel == 1).mean()
    assert np.median(surge.tx.amount_cents) > 1.8 * np.median(plain.tx.amount_cents)
    assert surge.p_fraud.shape == surge.is_fraud.shape and 0 < plain.p_fraud.mean() < 0.05


def test_an_outage_withholds_files_and_the_report_counts_what_was_delivered() -> None:
    scenario = Scenario("s", (Episode("down", "outage", 2, 2, dataset="transactions", share=0.4),))
    full_files, full = generate_day(START + dt.timedelta(days=2), start=START, rows_per_day=ROWS, seed=SEED)
    files, report = generate_day(START + dt.timedelta(days=2), start=START, rows_per_day=ROWS, seed=SEED,
                                 scenario=scenario)
    tx = [f for f in files if "/transactions/" in f.key]
    assert len(tx) < len([f for f in full_files if "/transactions/" in f.key])
    assert 0.3 * ROWS < report.valid_unique["transactions"] < 0.9 * ROWS
    assert report.rows_by_dataset["transactions"] == sum(report.files[f.key] for f in tx)
    assert report.rows_by_dataset["transactions"] == (report.valid_unique["transactions"]
                                                      + sum(report.faults["transactions"].values())
                                                      + report.duplicates["transactions"])
    assert full.valid_unique["transactions"] == ROWS


def test_a_label_backlog_delays_the_labels_of_its_days() -> None:
    scenario = Scenario("s", (Episode("backlog", "label_backlog", 1, 1, extra_delay_days=4),))
    _, ordinary = generate_day(START + dt.timedelta(days=3), start=START, rows_per_day=ROWS, seed=SEED)
    _, backlog = generate_day(START + dt.timedelta(days=3), start=START, rows_per_day=ROWS, seed=SEED,
                              scenario=scenario)
    assert backlog.valid_unique["labels"] < ordinary.valid_unique["labels"]  # day 1's labels come later


def test_biased_labels_report_legitimate_payments_of_one_group_as_fraud() -> None:
    scenario = Scenario("s", (Episode("biased", "biased_labels", 2, 3, share=0.2, attribute="region", group="PL"),))
    core = core_day(SEED, START, 2, ROWS, Effects())
    reported = reported_fraud(core, 2, seed=SEED, start=START, rows_per_day=ROWS, scenario=scenario)
    polish = (build_customers(SEED, START, ROWS).region == REGIONS.index("PL"))[core.tx.customer]
    assert (reported >= core.is_fraud).all()  # true frauds stay reported
    false_reports = reported & ~core.is_fraud
    assert not false_reports[~polish].any()  # only the group is hit ...
    assert 0.12 < false_reports[polish].sum() / (~core.is_fraud[polish]).sum() < 0.28  # ... at about its share
    outside = reported_fraud(core_day(SEED, START, 1, ROWS, Effects()), 1, seed=SEED, start=START, rows_per_day=ROWS,
                             scenario=scenario)
    assert (outside == core_day(SEED, START, 1, ROWS, Effects()).is_fraud).all()  # outside the episode: the truth


def test_the_world_writes_the_scenario_and_each_event_s_true_probability() -> None:
    written: dict[str, bytes] = {}
    reports = generate_world(written.__setitem__, start=START, days=2, rows_per_day=500, seed=SEED,
                             scenario=load_scenario("half_year"))
    assert json.loads(written[SCENARIO_KEY])["scenario"] == "half_year"
    truth = pq.read_table(io.BytesIO(written[truth_key(START)])).to_pandas()
    volume = load_scenario("half_year").world.volume(START, 0, 500)   # a Monday and a payday: not 500
    assert len(truth) == volume != 500 and truth["event_id"].is_unique and truth["p_fraud"].between(0, 1).all()
    assert int(truth["is_fraud"].sum()) == reports[0].fraud_events


@pytest.mark.parametrize("episode, message", [
    ({"kind": "flood", "from_day": 1}, "kind must be one of"),
    ({"kind": "drift", "from_day": 5, "to_day": 2, "amount_scale": 2}, "from_day <= to_day"),
    ({"kind": "drift", "from_day": 1}, "needs at least one of"),
    ({"kind": "drift", "from_day": 1, "amount_scale": "x"}, "amount_scale must be a number"),
    ({"kind": "drift", "from_day": 1, "colour": "red", "amount_scale": 2}, "unknown key"),
    ({"kind": "biased_labels", "from_day": 1, "attribute": "shoe_size", "group": "44", "share": 0.1}, "needs attribute"),
    ({"kind": "biased_labels", "from_day": 1, "attribute": "region", "group": "PL"}, "needs share"),
])
def test_invalid_episodes_are_named_with_what_to_fix(tmp_path, episode, message) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(json.dumps({"scenario": "bad", "episodes": [episode]}))
    with pytest.raises(ScenarioError, match=message):
        load_scenario(path)
    with pytest.raises(ScenarioError, match="available: half_year"):
        load_scenario("no_such_scenario")


def test_the_world_has_weekly_and_payday_seasonality_and_grows() -> None:
    world = load_scenario("half_year").world
    weekly = {d: core_day(SEED, START, d, ROWS, Effects(), world).tx for d in range(35)}
    volume = {d: len(tx) for d, tx in weekly.items()}
    assert volume[5] > volume[0] > volume[6]                                # Saturday > Monday > Sunday
    assert volume[0] == round(ROWS * 1.0 / np.mean(world.weekly) * 1.10)   # 1 June: a payday
    assert volume[28] > volume[7] and volume[7] / volume[0] == pytest.approx(1 / 1.10, rel=0.02)  # growth, no payday
    flat = core_day(SEED, START, 5, ROWS, Effects())
    assert len(flat.tx) == ROWS                                             # no world section: every day the same


def test_customers_churn_and_stop_paying() -> None:
    world = WorldDynamics(churn_per_30_days=0.3)
    gone = churn_days(SEED, START, ROWS, 0.3)
    day = 60
    stopped = gone <= (START - dt.date(1970, 1, 1)).days + day
    assert 0.4 < stopped.mean() < 0.6                                       # 1 - 0.7 ** 2 of them within 60 days
    payers = core_day(SEED, START, day, ROWS, Effects(), world).tx.customer
    assert not stopped[payers].any()


def test_labels_arrive_with_a_tail_and_missed_frauds_are_corrected() -> None:
    world = WorldDynamics(delay_tail_share=0.3, delay_tail_max_days=20, correction_share=1.0, correction_max_days=6)
    scenario = Scenario("labels", world=world)
    core = core_day(SEED, START, 0, ROWS, Effects(), world)
    tail = core.label_delay > 5
    assert tail.mean() == pytest.approx(0.3, abs=0.03) and core.label_delay[tail].min() >= 6
    assert core.label_delay.max() <= 20 and ((core.correction > 0) == core.is_fraud).all()
    reports: dict[str, list[tuple[int, str]]] = {}
    for day in range(0, 28):
        files, _ = generate_day(START + dt.timedelta(days=day), start=START, rows_per_day=ROWS, seed=SEED,
                                scenario=scenario)
        lines = next(f for f in files if f.key.startswith("landing/labels/")).data.decode().splitlines()[1:]
        for line in lines:
            event, flag, _ = line.split(",")
            reports.setdefault(event, []).append((day, flag))
    ids = event_ids(core.tx.id_day, core.tx.counter).astype(str)
    for i in np.flatnonzero(core.is_fraud):
        got = reports[ids[i]]
        assert [f for _, f in got] == ["0", "1"]                           # first missed, then corrected
        assert got[0][0] == core.label_delay[i] and got[1][0] == core.label_delay[i] + core.correction[i]
    legit = ids[~core.is_fraud]
    assert all(reports[e] == [(d, "0")] for e, d in zip(legit, core.label_delay[~core.is_fraud], strict=True))
