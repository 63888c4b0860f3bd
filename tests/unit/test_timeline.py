"""The timeline report: a period's days, versions and drift alarms against the scenario's episodes."""

from __future__ import annotations

import json

from mlscale.lake import Lake
from mlscale.reports.catalog import list_reports
from mlscale.reports.timeline import build_timeline

from tests.unit.test_health_report import (
    bias_report,
    drift_report,
    gate_decision,
    ingestion_record,
    model_version,
)

DAYS = [f"2026-03-0{i}" for i in range(1, 10)]
EPISODES = [
    {"name": "dearer", "kind": "drift", "first": "2026-03-03", "last": "2026-03-04", "columns": ["amount"]},
    {"name": "drop_lost", "kind": "outage", "first": "2026-03-06", "last": "2026-03-06", "columns": []},
    {"name": "biased", "kind": "biased_labels", "first": "2026-03-01", "last": "2026-03-02", "columns": []},
]


def _world(tmp_path) -> Lake:
    lake = Lake(f"file://{tmp_path}/lake")
    lake.write_json("_meta/generator/scenario.json", {"scenario": "t", "episodes": EPISODES})
    for day in DAYS:
        ingestion_record(lake, "transactions", day, rows_in=1010, written=1000, quarantined=10)
    # alarms: inside the drift episode (explained), the day after it through a 30-day window (explained),
    # the outage day (explained), and day 9 on a 1-day column long after every episode (a false alarm)
    alarms = {"2026-03-03": ["amount"], "2026-03-05": ["spend_mean_30d"], "2026-03-06": ["txn_count_1d"],
              "2026-03-09": ["hour_utc"]}
    for day in DAYS[1:]:
        drift_report(lake, day, drifted=alarms.get(day, []), performance={"pr_auc": 0.2, "labelled": 900})
    key = "reports/drift/fraud_detector/2026-03-05/report.json"
    doc = lake.read_json(key)
    doc["drift"]["features"] = [{"name": "spend_mean_30d", "drifted": True, "window_days": 30}]
    lake.write_json(key, doc)
    model_version(lake, "2", "2026-03-02", 0.21)
    bias_report(lake, "2", "pass", [])
    gate_decision(lake, "2", "2026-03-02", "promoted", [])
    model_version(lake, "3", "2026-03-08", 0.19)
    bias_report(lake, "3", "fail", ["region: demographic_parity_ratio 0.31 < 0.8"])
    gate_decision(lake, "3", "2026-03-08", "refused", ["bias: verdict fail (region: demographic_parity_ratio)"])
    return lake


def test_the_timeline_lays_episodes_over_alarms_and_lists_versions(tmp_path) -> None:
    lake = _world(tmp_path)
    doc = build_timeline(lake, DAYS[0], DAYS[-1], datasets=["transactions"])
    assert [r["day"] for r in doc["days"]] == DAYS
    assert doc["days"][0]["ingested"]["transactions"] == 1000 and doc["days"][0]["quarantined"]["transactions"] == 10
    explained = {a["day"]: a["explained_by"] for a in doc["alarms"]}
    assert explained == {"2026-03-03": ["dearer"], "2026-03-05": ["dearer"], "2026-03-06": ["drop_lost"],
                         "2026-03-09": []}
    episodes = {e["name"]: e for e in doc["episodes"]}
    assert episodes["dearer"]["first_alarm"] == "2026-03-03" and episodes["dearer"]["delay_days"] == 0
    assert episodes["drop_lost"]["delay_days"] == 0 and "delay_days" not in episodes["biased"]
    assert [v["version"] for v in doc["versions"]] == ["2", "3"]
    refused = next(r for r in doc["days"] if r["day"] == "2026-03-08")
    assert refused["retrained"] == ["fraud_detector v3 (manual)"] and "refused" in refused["gate"][0]
    assert refused["drift"]["fraud_detector"]["alarm"] is False
    assert next(r for r in doc["days"] if r["day"] == "2026-03-03")["episodes"] == ["dearer"]
    # both files are written where the reports view finds them
    stored = lake.read_json("reports/timeline/2026-03-09/report.json")
    assert stored["alarms"] == json.loads(json.dumps(doc["alarms"]))
    page = lake.read_bytes("reports/timeline/2026-03-09/report.html").decode()
    assert "dearer" in page and "no episode" in page and "<svg" in page
    assert any(r.kind == "timeline" and r.key == "2026-03-09" for r in list_reports(lake))


def test_a_lake_without_a_scenario_has_alarms_but_no_episodes(tmp_path) -> None:
    lake = Lake(f"file://{tmp_path}/lake")
    drift_report(lake, "2026-03-02", drifted=["amount"], performance={})
    doc = build_timeline(lake, "2026-03-01", "2026-03-03")
    assert doc["episodes"] == [] and [a["explained_by"] for a in doc["alarms"]] == [[]]
    assert doc["days"][0]["drift"] == {} and doc["versions"] == []
    assert "no scenario" in lake.read_bytes("reports/timeline/2026-03-03/report.html").decode()
