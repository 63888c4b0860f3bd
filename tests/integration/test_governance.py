"""Governance over a generated world with an injected drift on its last day: drift verdicts, the bias audit,
the promotion gate refusing on each failing condition (and recording why), approvals and the model card."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from distributed import Client, LocalCluster
from mlscale.audit.access_report import access_report
from mlscale.governance.audit_run import audit_model, bias_report_key
from mlscale.governance.gate import PENDING, PROMOTED, REFUSED, promote_model, record_approval, rollback
from mlscale.governance.model_card import write_model_card
from mlscale.governance.monitor import monitor_drift
from mlscale.lake import Lake
from mlscale.training import StoredModel, registry, train_model

from tests.integration.world import build_world

ROOT = Path(__file__).resolve().parents[2]

START = dt.date(2026, 11, 1)
DAYS = 10
LAST = (START + dt.timedelta(days=DAYS - 1)).isoformat()
CLEAN = (START + dt.timedelta(days=DAYS - 2)).isoformat()
MODEL = "fraud_detector"


@pytest.fixture(scope="module")
def lake(tmp_path_factory) -> Lake:
    lake = Lake(str(tmp_path_factory.mktemp("governance") / "lake"))
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        build_world(lake, start=START, days=DAYS, rows_per_day=4000, seed=5,
                    drift_from=dt.date.fromisoformat(LAST), client=client)
        train_model(model="fraud_detector", client=client, lake=lake, dt=CLEAN, run_id="manual__gov", max_rounds=40)
    return lake


@pytest.fixture(scope="module")
def policy() -> str:
    """The project's own policy: in a ten-day world the gate compares the training reference with a day only on
    the columns whose windows are filled behind the training set (the event features), so no allowance for
    filling windows is needed."""
    return str(ROOT / "include/policies/model_risk.yaml")


def mlflow(lake):
    return registry.client_for(registry.RegistryConfig.for_lake(lake))


def test_drift_is_found_on_the_injected_day_and_not_on_a_clean_one(lake) -> None:
    drifted = monitor_drift(model="fraud_detector", lake=lake, dt=LAST, run_id="m1")
    clean = monitor_drift(model="fraud_detector", lake=lake, dt=CLEAN, run_id="m2")
    assert drifted.drift_detected and "amount" in drifted.drifted_features
    # the injected shift shows in the event features only on the injected day (windowed features of a short
    # history also move from day to day, so the clean day is judged by the injected columns, not the verdict)
    assert "amount" not in clean.drifted_features
    assert len(drifted.drifted_features) > len(clean.drifted_features)
    report = lake.read_json(f"reports/drift/{MODEL}/{LAST}/report.json")
    assert report["ingestion"]["rows_written"] > 0 and "quarantine_rate" in report["ingestion"]
    assert lake.exists(f"reports/drift/{MODEL}/{LAST}/evidently.html") and lake.exists(f"reports/drift/{MODEL}/{LAST}/profile.json")


def test_gate_refuses_on_each_failing_condition_and_records_why(lake, policy) -> None:
    client = mlflow(lake)
    version = registry.alias_version(client, MODEL, registry.CHALLENGER)
    no_audit = promote_model(model="fraud_detector", lake=lake, dt=CLEAN, run_id="g0", risk_policy=policy)
    assert no_audit.decision == REFUSED and any(r.startswith("bias: no audit") for r in no_audit.reasons)

    audited = audit_model(model="fraud_detector", lake=lake, dt=CLEAN, run_id="a1", actor="test")
    report = lake.read_json(bias_report_key(MODEL, version))
    assert report["verdict"] == audited.verdict and set(report["attributes"]) >= {"gender", "age_band", "region"}
    assert "gender×age_band" in report["attributes"]
    # the audit pools every row the version did not learn from (validation and holdout) and says which
    window = report["window"]
    assert window["splits"] == ["validation", "holdout"] and window["rows"] == report["rows"] == audited.rows
    manifest = lake.read_json(f"{window['training_set']}/_manifest.json")
    assert window["rows"] == manifest["extra"]["rows"]["validation"] + manifest["extra"]["rows"]["holdout"]
    assert window["first_day"] <= window["last_day"] and window["days"] >= 2
    log = access_report(lake, "2000-01-01", "2100-01-01")
    assert log["by_purpose"]["bias_audit"]["accesses"] >= 1  # protected attributes were read through the log

    # the gate's bias input, set to pass and to fail, decides alone when everything else holds
    lake.write_json(bias_report_key(MODEL, version), {**report, "verdict": "fail", "reasons": ["gender: test"]})
    refused = promote_model(model="fraud_detector", lake=lake, dt=CLEAN, run_id="g1", risk_policy=policy)
    assert refused.decision == REFUSED and any("bias: verdict fail" in r for r in refused.reasons)
    # the reference is drifted against the drift day
    drift = promote_model(model="fraud_detector", lake=lake, dt=LAST, run_id="g2", risk_policy=policy)
    assert drift.decision == REFUSED and any(r.startswith("drift:") for r in drift.reasons), drift.evidence["drift"]
    recent = StoredModel.load(lake, MODEL, version).doc["training_set"]["last_event_day"]
    lake.write_json(bias_report_key(MODEL, version), {**report, "verdict": "insufficient_data", "reasons": []})
    unjudged = promote_model(model="fraud_detector", lake=lake, dt=recent, run_id="g2b", risk_policy=policy)
    assert unjudged.decision == REFUSED and any("too little data" in r for r in unjudged.reasons)
    # the day the holdout was drawn from: the reference fits it; with a passing audit only the approval is missing
    lake.write_json(bias_report_key(MODEL, version), {**report, "verdict": "pass", "reasons": []})
    pending = promote_model(model="fraud_detector", lake=lake, dt=recent, run_id="g3", risk_policy=policy)
    assert pending.decision == PENDING and registry.alias_version(client, MODEL, registry.CHAMPION) is None
    assert pending.evidence["drift"]["drift_detected"] is False
    record_approval(lake, model=MODEL, version=version, approved_by="risk officer")
    promoted = promote_model(model="fraud_detector", lake=lake, dt=recent, run_id="g4", risk_policy=policy)
    assert promoted.decision == PROMOTED and promoted.champion_after == version
    assert registry.alias_version(client, MODEL, registry.CHAMPION) == version
    tags = registry.version_tags(client, MODEL, version)
    assert tags["gate_decision"] == PROMOTED and tags["approved_by"] == "risk officer"
    decisions = [lake.read_json(f.key) for f in lake.list_files("_meta/governance_audit")]
    assert sorted(d["decision"] for d in decisions) == sorted([REFUSED] * 4 + [PENDING, PROMOTED])
    card = write_model_card(lake, MODEL, version)
    page = lake.read_bytes(f"reports/model_card/{MODEL}/{version}.html").decode()
    assert card.endswith(f"{version}.html") and "risk officer" in page and "Intended use" in page
    assert PROMOTED in page  # the gate decisions are on the card

    # a much weaker challenger: refused on metrics, whatever its audit and approval say
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as cluster, \
            Client(cluster) as dask_client:
        weak = train_model(model="fraud_detector", client=dask_client, lake=lake, dt=CLEAN, run_id="manual__weak", max_rounds=1,
                           class_weight="none")
    assert weak.champion_version == version
    second = audit_model(model="fraud_detector", lake=lake, dt=CLEAN, run_id="a2", actor="test")
    compared = lake.read_json(bias_report_key(MODEL, weak.version))["champion"]
    assert compared["version"] == version and set(compared["disparity"]) >= {"gender", "region"}
    assert second.version == weak.version
    lake.write_json(bias_report_key(MODEL, weak.version),
                    {**lake.read_json(bias_report_key(MODEL, weak.version)), "verdict": "pass", "reasons": []})
    record_approval(lake, model=MODEL, version=weak.version, approved_by="risk officer")
    worse = promote_model(model="fraud_detector", lake=lake, dt=recent, run_id="g5", risk_policy=policy)
    if weak.holdout["pr_auc"] < promoted.evidence["challenger"]["pr_auc"] - 0.01:
        assert worse.decision == REFUSED and any(r.startswith("metrics:") for r in worse.reasons)
        assert registry.alias_version(client, MODEL, registry.CHAMPION) == version
    else:  # a one-round model that happens to rank as well is promoted: the metric condition holds
        assert worse.decision == PROMOTED
    # rolling back is moving champion to an earlier version, recorded like a gate decision
    registry.set_alias(client, MODEL, registry.CHAMPION, weak.version)
    rolled = rollback(lake, model=MODEL, version=version, by="on-call", reason="precision dropped", day=CLEAN)
    assert rolled.champion_before == weak.version and registry.alias_version(client, MODEL, registry.CHAMPION) == version
    records = [lake.read_json(f.key) for f in lake.list_files("_meta/governance_audit")]
    assert [r["reasons"] for r in records if r["decision"] == "rolled_back"] == [["on-call: precision dropped"]]


def test_drift_stays_quiet_on_the_day_the_reference_represents(lake, policy) -> None:
    version = registry.alias_version(mlflow(lake), MODEL, registry.CHALLENGER)
    recent = StoredModel.load(lake, MODEL, version).doc["training_set"]["last_event_day"]
    quiet = monitor_drift(model="fraud_detector", lake=lake, dt=recent, run_id="q", risk_policy=policy)
    loud = monitor_drift(model="fraud_detector", lake=lake, dt=LAST, run_id="l", risk_policy=policy)
    assert quiet.verdict == "no_drift" and loud.verdict == "drift_detected"
