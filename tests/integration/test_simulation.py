"""``mlscale.simulation``: a scenario world replayed with the pipelines' own functions, resumable, with every
verdict written where the DAGs write it."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import yaml
from distributed import Client, LocalCluster
from mlscale.lake import Lake, PartitionRef
from mlscale.simulation import (
    PROGRESS_KEY,
    REVIEWER,
    SimulationSettings,
    cron_fires_for,
    finished_day,
    simulate,
)
from mlscale.synthetic import generate_world
from mlscale.synthetic.scenario import Effects, Episode, Scenario

START = dt.date(2026, 3, 2)  # a Monday
DAYS = 9
# the shipped retention policy with ages short enough to act within the replay
SHORT_AGES = {"landing-drops": {"delete_after_days": 3, "min_keep_days": 2},
              "raw-default": {"cold_after_days": 3}, "quarantine-short": {"delete_after_days": 3},
              "predictions": {"cold_after_days": 2}, "features": {"cold_after_days": 4}}


def short_retention(tmp_path: Path) -> str:
    doc = yaml.safe_load((Path(__file__).resolve().parents[2] / "include/policies/retention.yaml").read_text())
    for rule in doc["rules"]:
        rule.update(SHORT_AGES.get(rule["name"], {}))
    path = tmp_path / "retention.yaml"
    path.write_text(yaml.safe_dump(doc))
    return str(path)


def test_the_cron_fires_for_the_day_before_it_runs() -> None:
    weekly = "0 3 * * 0"  # Sundays 03:00: trains as of Saturday
    assert cron_fires_for(weekly, "2026-03-07") and not cron_fires_for(weekly, "2026-03-08")
    assert all(cron_fires_for("0 3 * * *", f"2026-03-0{d}") for d in range(1, 8))


@pytest.fixture(scope="module")
def client():
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        yield client


def test_a_replay_trains_gates_scores_and_monitors_and_resumes(tmp_path, client) -> None:
    lake = Lake(str(tmp_path / "lake"))
    scenario = Scenario("test", (Episode("dearer", "drift", 7, 8, Effects(amount_scale=1.5)),))
    generate_world(lake.write_bytes, start=START, days=DAYS, rows_per_day=700, seed=3, scenario=scenario)
    settings = SimulationSettings(models=["fraud_detector"], pii_key="simulation-test-key", train_cron="0 3 * * *",
                                  min_train_days=5, max_rounds=15, retention_policy=short_retention(tmp_path))
    last = (START + dt.timedelta(days=DAYS - 1)).isoformat()
    first_part = simulate(lake=lake, client=client, first=START.isoformat(),
                          last=(START + dt.timedelta(days=5)).isoformat(), settings=settings)
    assert [o.day for o in first_part] == [(START + dt.timedelta(days=i)).isoformat() for i in range(6)]
    assert finished_day(lake) == first_part[-1].day
    assert not first_part[3].trained and first_part[4].trained  # the fifth day is the first one old enough
    # a rerun continues after the last finished day
    rest = simulate(lake=lake, client=client, first=START.isoformat(), last=last, settings=settings)
    assert [o.day for o in rest] == [(START + dt.timedelta(days=i)).isoformat() for i in range(6, DAYS)]
    assert lake.read_json(PROGRESS_KEY)["last_day"] == last
    for outcome in rest:
        assert outcome.drift["fraud_detector"] in ("no_drift", "drift_detected", "insufficient_data")
        assert lake.exists(f"reports/drift/fraud_detector/{outcome.day}/report.json")
        assert lake.exists(f"reports/health/{outcome.day}/report.json")
    decisions = [lake.read_json(f.key) for f in lake.list_files("_meta/governance_audit/")]
    assert decisions and {d["decision"] for d in decisions} <= {"promoted", "refused", "pending_approval"}
    approvals = [lake.read_json(f.key) for f in lake.list_files("_meta/approvals/fraud_detector/")]
    assert approvals and all(a["approved_by"] == REVIEWER for a in approvals)
    assert any(lake.list_files(f"predictions/fraud_detector/dt={o.day}/") for o in rest)
    # each day's profile is kept once; later versions score an earlier day from its kept sample of inputs
    kept = [f.key.rsplit("/", 1)[-1] for f in lake.list_files(f"_meta/drift_profiles/fraud_detector/dt={START}/")]
    assert "inputs.json" in kept and "inputs_sample.parquet" in kept
    assert sum(name.startswith("score_v") for name in kept) >= 2
    # lifecycle ran each day: old drops deleted, old raw events in the cold tier — and training, which reads
    # every raw day of its history, kept working on them (the last days trained)
    assert not lake.list_files(f"landing/transactions/dt={START}/")
    assert lake.list_files(f"cold/raw/transactions/dt={START}/")
    assert lake.read_table(PartitionRef.of("raw", "transactions", START.isoformat())).num_rows > 0
    assert any(o.lifecycle.get("objects_deleted") for o in first_part + rest) and rest[-1].trained
    assert lake.exists(f"reports/cost/{last}/report.json")
    # the replay ends with the period's timeline
    timeline = lake.read_json(f"reports/timeline/{last}/report.json")
    assert [d["day"] for d in timeline["days"]][0] == START.isoformat() and timeline["versions"]
    assert timeline["lifecycle_actions"].get("applied", 0) > 0
    assert [e["name"] for e in timeline["episodes"]] == ["dearer"]
    # every Dask stage recorded its resource use with the workload its result reported: the run logs the
    # bottleneck model fits
    from mlscale.usage import read_usage
    from mlscale.usage.bottlenecks import analyse

    records = [r for o in first_part + rest for r in read_usage(lake, o.day)]
    stages = {(r.dag_id, r.task_id) for r in records}
    assert {("ingest_transactions", "ingest"), ("train_model", "train"), ("score_batch", "score")} <= stages
    assert all(r.rows is not None for r in records if r.task_id in ("ingest", "score", "train"))
    assert any(r.model_version and r.model_version.startswith("fraud_detector/") for r in records)
    fits = {p["dag_id"]: p for p in analyse(records)["pipelines"]}
    assert fits["ingest_transactions"]["stages"][0]["runs"] == DAYS
