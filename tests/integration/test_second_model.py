"""A second model is configuration only: with ``examples/models/fraud_screen.yaml`` copied into a team's
configuration folder, the very functions the DAGs call train, audit, gate, score and monitor it, and the runs
that name no model work on both models."""

from __future__ import annotations

import datetime as dt
import os
import shutil
from pathlib import Path

import pytest
from distributed import Client, LocalCluster
from mlscale.governance.audit_run import audit_model, bias_report_key
from mlscale.governance.gate import PROMOTED, promote_model, record_approval
from mlscale.governance.monitor import monitor_drift
from mlscale.lake import Lake
from mlscale.scoring import compare_shadow, score_batch
from mlscale.training import StoredModel, load_model_spec, registry, train_model

from tests.integration.world import build_world

ROOT = Path(__file__).resolve().parents[2]
START = dt.date(2026, 11, 1)
DAYS = 6
DAY = (START + dt.timedelta(days=DAYS - 2)).isoformat()
SCORED = (START + dt.timedelta(days=DAYS - 1)).isoformat()
MODEL = "fraud_screen"


@pytest.fixture(scope="module")
def config_dir(tmp_path_factory) -> Path:
    """The shipped configuration plus the example model, as a team's own folder."""
    root = tmp_path_factory.mktemp("config")
    for kind in ("contracts", "models", "policies", "feature_repo"):
        shutil.copytree(ROOT / "include" / kind, root / kind)
    shutil.copy(ROOT / "examples" / "models" / f"{MODEL}.yaml", root / "models")
    saved = os.environ.get("MLSCALE_CONFIG_DIR")
    os.environ["MLSCALE_CONFIG_DIR"] = str(root)
    yield root
    if saved is None:
        os.environ.pop("MLSCALE_CONFIG_DIR", None)
    else:
        os.environ["MLSCALE_CONFIG_DIR"] = saved


@pytest.fixture(scope="module")
def client():
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        yield client


@pytest.fixture(scope="module")
def lake(tmp_path_factory, config_dir, client) -> Lake:
    lake = Lake(str(tmp_path_factory.mktemp("second_model") / "lake"))
    build_world(lake, start=START, days=DAYS, rows_per_day=4000, seed=9, client=client)
    return lake


def test_the_second_model_runs_through_every_pipeline_without_code_changes(lake, client, config_dir):
    from mlscale.airflow.run_context import models_to_run

    assert models_to_run({"params": {"model": ""}}) == ["fraud_detector", MODEL]
    spec = load_model_spec(MODEL)
    assert spec.feature_sets == ("customer_activity",)

    trained = train_model(model=MODEL, client=client, lake=lake, dt=DAY, run_id="manual__screen", max_rounds=30)
    stored = StoredModel.load(lake, MODEL, trained.version)
    assert stored.doc["training_set"]["last_event_day"] <= DAY
    assert stored.features and not any(c.startswith("merchant_risk") for c in stored.features)
    assert lake.list_files(f"training/{MODEL}/dt={DAY}/")
    assert not lake.list_files("models/fraud_detector/")  # nothing else was trained

    audited = audit_model(model=MODEL, lake=lake, dt=DAY, run_id="audit_screen", actor="test")
    assert lake.read_json(bias_report_key(MODEL, trained.version))["verdict"] == audited.verdict
    # the default tier (high) needs a human approval; an unjudgeable audit needs it to accept that gap
    record_approval(lake, model=MODEL, version=trained.version, approved_by="risk officer",
                    accepts=("insufficient_bias_evidence",) if audited.verdict == "insufficient_data" else ())
    decision = promote_model(model=MODEL, lake=lake, dt=stored.doc["training_set"]["last_event_day"],
                             run_id="gate_screen")
    if audited.verdict == "fail":
        pytest.skip("the small world's audit failed this model: the gate rightly refuses it")
    assert decision.decision == PROMOTED, decision.reasons
    mlflow = registry.client_for(registry.RegistryConfig.for_lake(lake))
    assert registry.alias_version(mlflow, MODEL, registry.CHAMPION) == trained.version

    scored = score_batch(model=MODEL, client=client, lake=lake, dt=SCORED, run_id="score_screen")
    assert scored.model == MODEL and scored.written == scored.rows_read > 0
    assert scored.predictions.rstrip("/").endswith(f"predictions/{MODEL}/dt={SCORED}")
    compare_shadow(model=MODEL, lake=lake, dt=SCORED, run_id="shadow_screen")
    assert lake.exists(f"reports/shadow/{MODEL}/{SCORED}/report.json")

    drift = monitor_drift(model=MODEL, lake=lake, dt=SCORED, run_id="drift_screen")
    assert drift.model == MODEL and drift.version == trained.version and drift.rows == scored.rows_read
    assert not any(name.startswith("merchant_risk") for name in drift.drifted_features)
