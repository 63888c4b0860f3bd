"""Which day and which models a run is for, under every way a run starts."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
from mlscale.airflow.run_context import NoModelError, RunDayError, audit_targets, models_to_run, run_day

INCLUDE = Path(__file__).resolve().parents[2] / "include"
UTC = dt.UTC


def event(extra: dict, *, partition_key: str | None = None, minute: int = 0) -> SimpleNamespace:
    return SimpleNamespace(extra=extra, partition_key=partition_key,
                           timestamp=dt.datetime(2026, 11, 9, 3, minute, tzinfo=UTC))


def triggered(*events: SimpleNamespace) -> dict:
    return {"triggering_asset_events": {"x-mlscale://models/registry": list(events)}}


@pytest.fixture
def two_models(tmp_path, monkeypatch) -> Path:
    """A configuration folder declaring the shipped model and a second one."""
    root = tmp_path / "config"
    shutil.copytree(INCLUDE / "models", root / "models")
    spec = (root / "models" / "fraud_detector.yaml").read_text()
    (root / "models" / "fraud_screen.yaml").write_text(spec.replace("model: fraud_detector", "model: fraud_screen"))
    monkeypatch.setenv("MLSCALE_CONFIG_DIR", str(root))
    return root


def test_run_day_prefers_the_param_then_partition_then_event_then_interval_then_logical_date():
    run = SimpleNamespace(partition_key="2026-11-05", logical_date=None, run_after=None)
    assert run_day({"params": {"dt": "2026-11-03"}, "dag_run": run}) == "2026-11-03"
    assert run_day({"params": {}, "dag_run": run}) == "2026-11-05"
    bare = SimpleNamespace(partition_key=None, logical_date=None, run_after=None)
    assert run_day({"dag_run": bare, **triggered(event({"dt": "2026-11-06"}))}) == "2026-11-06"
    start, end = dt.datetime(2026, 11, 7, tzinfo=UTC), dt.datetime(2026, 11, 8, tzinfo=UTC)
    assert run_day({"dag_run": bare, "data_interval_start": start, "data_interval_end": end}) == "2026-11-07"
    assert run_day({"dag_run": bare, "logical_date": end}, days_before_logical_date=1) == "2026-11-07"
    manual = SimpleNamespace(partition_key=None, logical_date=None, run_after=end)
    assert run_day({"dag_run": manual}) == "2026-11-07"
    with pytest.raises(RunDayError, match="dt"):
        run_day({"dag_run": bare})
    with pytest.raises(RunDayError, match="YYYY-MM-DD"):
        run_day({"params": {"dt": "yesterday"}})


def test_a_run_without_a_model_param_works_on_every_declared_model(two_models):
    assert models_to_run({"params": {"model": ""}}) == ["fraud_detector", "fraud_screen"]
    assert models_to_run({"params": {"model": "fraud_screen"}}) == ["fraud_screen"]
    # a drift alert names its model: only that one is retrained
    assert models_to_run({"params": {}, **triggered(event({"model": "fraud_screen", "dt": "2026-11-08"}))}) \
        == ["fraud_screen"]


def test_no_declared_model_is_a_clear_error(tmp_path, monkeypatch):
    (tmp_path / "models").mkdir()
    monkeypatch.setenv("MLSCALE_CONFIG_DIR", str(tmp_path))
    with pytest.raises(NoModelError, match="no model is declared"):
        models_to_run({"params": {}})


def test_audit_targets_name_each_version_the_events_registered(two_models):
    context = {"params": {"model": "", "version": ""},
               **triggered(event({"model": "fraud_detector", "version": "3", "dt": "2026-11-07"}, minute=1),
                           event({"model": "fraud_screen", "version": "1", "dt": "2026-11-08"}, minute=2),
                           event({"model": "fraud_detector", "version": "3", "dt": "2026-11-07"}, minute=3))}
    assert audit_targets(context) == [{"model": "fraud_detector", "version": "3", "dt": "2026-11-07"},
                                      {"model": "fraud_screen", "version": "1", "dt": "2026-11-08"}]
    # from the UI with no version: the challenger of every declared model, for the day before the run
    manual = SimpleNamespace(partition_key=None, logical_date=None,
                             run_after=dt.datetime(2026, 11, 10, 9, tzinfo=UTC))
    assert audit_targets({"params": {"model": "", "version": ""}, "dag_run": manual}) == [
        {"model": "fraud_detector", "version": "", "dt": "2026-11-09"},
        {"model": "fraud_screen", "version": "", "dt": "2026-11-09"}]
    assert audit_targets({"params": {"model": "fraud_screen", "version": "4", "dt": "2026-11-02"}}) == [
        {"model": "fraud_screen", "version": "4", "dt": "2026-11-02"}]
