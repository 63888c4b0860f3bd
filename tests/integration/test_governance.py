"""Governance over a generated world with an injected drift on its last day: drift verdicts, the bias audit,
the promotion gate refusing on each failing condition (and recording why), approvals and the model card."""

from __future__ import annotations

import datetime as dt

import pytest
from distributed import Client, LocalCluster
from mlscale.audit.access_report import access_report
from mlscale.governance.audit_run import audit_model, bias_report_key
from mlscale.governance.gate import REFUSED, promote_model, record_approval
from mlscale.governance.model_card import write_model_card
from mlscale.governance.monitor import monitor_drift
from mlscale.lake import Lake
from mlscale.training import registry, train_model

from tests.integration.world import build_world

START = dt.date(2026, 11, 1)
DAYS = 6
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
        train_model(client=client, lake=lake, dt=CLEAN, run_id="manual__gov", max_rounds=40)
    return lake


def mlflow(lake):
    return registry.client_for(registry.RegistryConfig.for_lake(lake))


def test_drift_is_found_on_the_injected_day_and_not_on_a_clean_one(lake) -> None:
    drifted = monitor_drift(lake=lake, dt=LAST, run_id="m1")
    clean = monitor_drift(lake=lake, dt=CLEAN, run_id="m2")
    assert drifted.drift_detected and "amount" in drifted.drifted_features
    # the injected shift shows in the event features only on the injected day (windowed features of a short
    # history also move from day to day, so the clean day is judged by the injected columns, not the verdict)
    assert "amount" not in clean.drifted_features and not clean.score_drifted
    assert len(drifted.drifted_features) > len(clean.drifted_features)
    report = lake.read_json(f"reports/drift/{LAST}/report.json")
    assert report["ingestion"]["rows_written"] > 0 and "quarantine_rate" in report["ingestion"]
    assert lake.exists(f"reports/drift/{LAST}/evidently.html") and lake.exists(f"reports/drift/{LAST}/profile.json")


def test_gate_refuses_on_each_failing_condition_and_records_why(lake) -> None:
    client = mlflow(lake)
    version = registry.alias_version(client, MODEL, registry.CHALLENGER)
    no_audit = promote_model(lake=lake, dt=CLEAN, run_id="g0")
    assert no_audit.decision == REFUSED and any(r.startswith("bias: no audit") for r in no_audit.reasons)

    audited = audit_model(lake=lake, dt=CLEAN, run_id="a1", actor="test")
    report = lake.read_json(bias_report_key(MODEL, version))
    assert report["verdict"] == audited.verdict and set(report["attributes"]) >= {"gender", "age_band", "region"}
    assert "gender×age_band" in report["attributes"]
    log = access_report(lake, "2000-01-01", "2100-01-01")
    assert log["by_purpose"]["bias_audit"]["accesses"] >= 1  # protected attributes were read through the log

    # the gate's bias input, set to pass and to fail, decides alone when everything else holds
    lake.write_json(bias_report_key(MODEL, version), {**report, "verdict": "fail", "reasons": ["gender: test"]})
    refused = promote_model(lake=lake, dt=CLEAN, run_id="g1")
    assert refused.decision == REFUSED and any("bias: verdict fail" in r for r in refused.reasons)
    drift = promote_model(lake=lake, dt=LAST, run_id="g2")  # the reference is drifted against the drift day
    assert drift.decision == REFUSED and any(r.startswith("drift:") for r in drift.reasons)
    assert registry.alias_version(client, MODEL, registry.CHAMPION) is None
    tags = registry.version_tags(client, MODEL, version)
    assert tags["gate_decision"] == REFUSED and "drift:" in tags["gate_reasons"]
    decisions = [lake.read_json(f.key) for f in lake.list_files("_meta/governance_audit")]
    assert [d["decision"] for d in decisions] == [REFUSED] * 3
    record_approval(lake, model=MODEL, version=version, approved_by="risk officer")
    card = write_model_card(lake, MODEL, version)
    page = lake.read_bytes(f"reports/model_card/{MODEL}/{version}.html").decode()
    assert card.endswith(f"{version}.html") and "risk officer" in page and "Intended use" in page
