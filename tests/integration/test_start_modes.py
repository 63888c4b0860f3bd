"""Every DAG under every way it can start, through Airflow's scheduler (no `dags test` shortcuts).

One Airflow (api-server, scheduler, dag-processor, triggerer; LocalExecutor on SQLite) on a small world whose
days end yesterday, driven through the REST API as the UI drives it. The tests run in file order and build
on each other, as a deployment's first days would:

* the ingestion DAGs on their **cron** (unpaused: the latest day) and a **backfill** of the day before →
  `compact_lake` and `build_features` per partition (**asset events**); the same days replayed by
  ``mlscale.simulation`` from the same drops give the same tables;
* `train_model` **manual with `dt`** → `audit_bias` started by the `models` **asset event** audits exactly the
  version that run registered (the fix: such runs have no partition key, data interval or logical date);
* a backfill that reruns the latest day → scoring and drift monitoring per partition;
* `train_model` on its **cron**, from a **drift_alert** asset event and through a **backfill**, each audited;
* every DAG **triggered by hand without params** (the UI's form, no logical date: the latest complete day) and
  **with params**;
* `pipeline_health` and `lifecycle_cleanup` on their **cron**, and a health report that flags failed runs
  and versions left unaudited;
* a file landing after its day was committed: `rerun_late_files` from the **asset event** of the run that
  found it (and **by hand**: nothing to rerun), its rerun flowing downstream.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from mlscale.lake import Lake, PartitionRef

from tests.integration.airflow_stack import MLSCALE, ROOT, AirflowStack
from tests.integration.alert_receivers import alert_receivers
from tests.integration.world import build_world

pytestmark = [pytest.mark.airflow, pytest.mark.timeout(1200)]  # a wave of runs through the scheduler

NOW = dt.datetime.now(dt.UTC)
YESTERDAY = NOW.date() - dt.timedelta(days=1)
CRON_DAY = (NOW - dt.timedelta(hours=2)).date() - dt.timedelta(days=1)  # the ingestion cron's latest partition
BACKFILL_DAY = CRON_DAY - dt.timedelta(days=1)
START = CRON_DAY - dt.timedelta(days=5)
INGEST = [f"ingest_{p.stem}" for p in sorted((ROOT / "include" / "contracts").glob("*.yaml"))]
DAGS = [*INGEST, "compact_lake", "build_features", "train_model", "audit_bias", "score_batch", "monitor_drift",
        "pipeline_health", "lifecycle_cleanup"]
MODEL = "fraud_detector"


@pytest.fixture(scope="module")
def alerts() -> Iterator[Any]:
    """The local SMTP server and webhook receiver the stack's alert connections point at."""
    with alert_receivers() as found:
        yield found


@pytest.fixture(scope="module")
def stack(tmp_path_factory, alerts) -> Iterator[tuple[AirflowStack, Lake]]:
    home = tmp_path_factory.mktemp("scheduler_home")
    lake = Lake(str(home / "lake"))
    # days before the backfill are processed by the library functions the DAGs call (quicker, same result)
    build_world(lake, start=START, days=(YESTERDAY - START).days + 1, rows_per_day=2500, seed=11,
                process_days=(BACKFILL_DAY - START).days)
    # the retraining cron fires daily here, so that unpausing starts its latest run
    stack = AirflowStack(home, lake_root=lake.root, extra_env={"MLSCALE_TRAIN_CRON": "0 3 * * *", **alerts[1]})
    try:
        stack.start([*DAGS, "rerun_late_files"])
        yield stack, lake
    finally:
        stack.stop()


def _mlscale(stack: AirflowStack, *args: str) -> str:
    return stack.cli(MLSCALE, *args).stdout


def _approve(stack: AirflowStack, version: int) -> None:
    """The reviewer's approval (accepting the small world's thin bias evidence), recorded before the gate asks."""
    _mlscale(stack, "approve", "--version", str(version), "--by", "scheduler test",
             "--accept", "insufficient_bias_evidence", "--note", "start-mode test")


def _registry(lake: Lake) -> Any:
    from mlscale.training import registry

    return registry.client_for(registry.RegistryConfig.for_lake(lake, ""))


def _versions(lake: Lake) -> list[int]:
    return sorted(int(v.version) for v in _registry(lake).search_model_versions(f"name='{MODEL}'"))


def _decisions(lake: Lake) -> list[dict[str, Any]]:
    return [lake.read_json(f.key) for f in lake.list_files("_meta/governance_audit") if f.key.endswith(".json")]


def _as_of_table_committed(lake: Lake, feature_set: str, day: str) -> bool:
    import re

    table = re.compile(rf"^features/{feature_set}_v[0-9a-f]+/dt={day}/_manifest.json$")
    return any(table.match(f.key) for f in lake.list_files("features"))


def _partition_runs(stack: AirflowStack, dag_id: str) -> dict[str, str]:
    return {r["partition_key"]: r["state"] for r in stack.runs(dag_id) if r.get("partition_key")}


def test_ingestion_cron_and_backfill_flow_downstream_per_partition(stack) -> None:
    airflow, lake = stack
    for dag_id in ("compact_lake", "build_features", *INGEST):
        airflow.unpause(dag_id)  # the cron starts the latest day at once (catchup=False)
    for dag_id in INGEST:
        airflow.backfill(dag_id, BACKFILL_DAY.isoformat(), BACKFILL_DAY.isoformat())
    for dag_id in INGEST:
        [run] = airflow.wait(dag_id, run_type="backfill")
        assert run["partition_key"] == BACKFILL_DAY.isoformat()
        [run] = airflow.wait(dag_id, run_type="scheduled")
        assert run["partition_key"] == CRON_DAY.isoformat()
    for dag_id in ("compact_lake", "build_features"):
        airflow.wait(dag_id, run_type="asset_triggered", count=2)
        runs = _partition_runs(airflow, dag_id)
        assert runs[BACKFILL_DAY.isoformat()] == runs[CRON_DAY.isoformat()] == "success"
    for day in (BACKFILL_DAY, CRON_DAY):
        assert lake.manifest(PartitionRef.of("raw", "transactions", day.isoformat())) is not None
        assert _as_of_table_committed(lake, "customer_activity", day.isoformat())
    for dag_id in INGEST:
        airflow.pause(dag_id)


RUN_COLUMNS = ("ingested_run", "run_id")  # name the run that wrote a row: the only columns allowed to differ


def _sketch_quantiles(fs: Any) -> dict[str, tuple[Any, int]]:
    """The columns of a feature set read from KLL sketches (column -> (feature, window)). Their compaction flips
    coins (DataSketches seeds its own generator), so an entity with more than k values gets a quantile within
    the sketch's rank error on each build, not the same bits: they are checked against the exact ranks."""
    return {f"{f.name}_{w}d": (f, w) for f in fs.features if f.kind == "quantile" for w in fs.windows_of(f)}


def _assert_within_rank_error(lake: Lake, fs: Any, day: dt.date, table: Any, column: str, feature: Any,
                              window: int) -> None:
    """Each entity's sketched quantile lies within 3x the KLL rank error of the asked rank among the entity's
    values of the window (events of the window's days, whenever delivered: late events rebuild the table)."""
    import numpy as np
    import pandas as pd
    from mlscale.sketches import kll_rank_error

    drops = lake.partitions("raw", fs.source_dataset)
    from mlscale.features.partials import with_entity

    events = pd.concat([with_entity(lake.read_table(p, columns=fs.source_columns()), fs).to_pandas()
                        for p in drops])
    days = pd.to_datetime(events[fs.event_time], utc=True).dt.date
    events = events[(days > day - dt.timedelta(days=window)) & (days <= day)]
    values = {k: np.sort(g.to_numpy(dtype=float)) for k, g in events.groupby(fs.entity)[feature.column]}
    tolerance = 3 * kll_rank_error()
    for entity, estimate in zip(table[fs.entity], table[column], strict=True):
        if pd.isna(estimate):
            assert entity not in values, f"{column} of {entity} is missing"
            continue
        v = values[entity]
        below, at_most = np.searchsorted(v, estimate, "left") / len(v), np.searchsorted(v, estimate, "right") / len(v)
        assert below - tolerance <= feature.q <= at_most + tolerance, (column, entity, estimate, below, at_most)


def _rows(lake: Lake, ref: PartitionRef) -> Any:
    """A partition's rows, sorted, without the columns that name the writing run."""
    frame = lake.read_table(ref).to_pandas()
    frame = frame.drop(columns=[c for c in RUN_COLUMNS if c in frame.columns])
    return frame.sort_values(list(frame.columns)).reset_index(drop=True)


def test_a_replay_writes_what_the_scheduler_wrote(stack, tmp_path) -> None:
    """The replay and the DAGs share every function: the days the scheduler ran (a backfill and the cron),
    replayed from the same drops by ``mlscale.simulation``, give the same raw, quarantine and feature tables
    (sketched quantiles: within the sketch's error, see :func:`_sketch_quantiles`)."""
    import pandas as pd
    from distributed import Client, LocalCluster
    from mlscale.features import all_feature_sets
    from mlscale.simulation import SimulationSettings, simulate

    _, lake = stack
    replay = Lake(str(tmp_path / "replay"))
    for stored in [*lake.list_files("landing/"), *lake.list_files("_meta/generator/")]:
        replay.write_bytes(stored.key, lake.read_bytes(stored.key))
    settings = SimulationSettings(models=[], pii_key="test-key", lifecycle=False)
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        simulate(lake=replay, client=client, first=START.isoformat(), last=CRON_DAY.isoformat(), settings=settings)
    refs = [PartitionRef.of(zone, dataset.removeprefix("ingest_"), day.isoformat())
            for day in (BACKFILL_DAY, CRON_DAY) for zone in ("raw", "quarantine") for dataset in INGEST]
    refs += [PartitionRef.of("features", fs.table, day.isoformat())
             for day in (BACKFILL_DAY, CRON_DAY) for fs in all_feature_sets()]
    sets = {fs.table: fs for fs in all_feature_sets()}
    approximate = {table: _sketch_quantiles(fs) for table, fs in sets.items()}
    compared = 0
    for ref in refs:
        assert (lake.manifest(ref) is None) == (replay.manifest(ref) is None), ref.key
        if lake.manifest(ref) is None:
            continue
        ours, theirs = _rows(replay, ref), _rows(lake, ref)
        inexact = approximate.get(ref.dataset, {})
        pd.testing.assert_frame_equal(ours.drop(columns=list(inexact)), theirs.drop(columns=list(inexact)),
                                      obj=ref.key)
        for column, (feature, window) in inexact.items():
            fs = sets[ref.dataset]
            for where, rows in ((replay, ours), (lake, theirs)):
                _assert_within_rank_error(where, fs, dt.date.fromisoformat(ref.dt), rows, column, feature, window)
        compared += 1
    assert compared >= len(INGEST) * 2 + 2 * len(all_feature_sets())


def _trained(airflow: AirflowStack, runs: list[dict[str, Any]]) -> dict[str, str]:
    """version -> the day it was trained for, of finished train_model runs."""
    results = [airflow.xcom("train_model", r["dag_run_id"], "train", map_index=0) for r in runs]
    return {r["version"]: r["dt"] for r in results}


def _audited(airflow: AirflowStack, lake: Lake) -> dict[str, str]:
    """version -> the day its gate checked drift against, over every finished asset-triggered audit run."""
    found = {}
    for run in airflow.wait("audit_bias", run_type="asset_triggered", count=1):
        for decision in [d for d in _decisions(lake) if d["run_id"] == run["dag_run_id"]]:
            found[decision["version"]] = decision["dt"]
    return found


def _wait_audited(airflow: AirflowStack, lake: Lake, versions: dict[str, str], timeout: float = 900) -> None:
    deadline = time.time() + timeout
    while not set(versions) <= set(_audited(airflow, lake)) and time.time() < deadline:
        time.sleep(5)
    audited = _audited(airflow, lake)
    assert {v: audited.get(v) for v in versions} == versions
    for version in versions:
        assert lake.read_json(f"reports/bias/{MODEL}/{version}/report.json")["version"] == version


def test_training_on_cron_and_by_hand_is_audited_through_the_models_asset(stack) -> None:
    airflow, lake = stack
    airflow.unpause("audit_bias")
    for version in range(1, 12):  # the reviewer's approvals, recorded before each gate asks
        _approve(airflow, version)
    airflow.unpause("train_model")  # its cron (daily here) starts the latest run at once
    run_id = airflow.trigger("train_model", {"dt": BACKFILL_DAY.isoformat()})
    [cron] = airflow.wait("train_model", run_type="scheduled")
    [manual] = airflow.wait("train_model", run_id=run_id)
    cron_tick = dt.datetime.fromisoformat(cron["run_after"]).date()
    trained = _trained(airflow, [cron, manual])
    assert sorted(trained.values()) == sorted([(cron_tick - dt.timedelta(days=1)).isoformat(),
                                               BACKFILL_DAY.isoformat()])
    _wait_audited(airflow, lake, trained)
    from mlscale.training import registry

    if registry.alias_version(_registry(lake), MODEL, registry.CHAMPION) is None:
        # the gate's verdict on a six-day world is its own business here; scoring needs a champion
        _mlscale(airflow, "rollback", "--version", "1", "--by", "scheduler test", "--reason", "first champion")


def test_training_from_a_drift_alert_and_a_backfill_is_audited(stack) -> None:
    airflow, lake = stack
    airflow.pause("monitor_drift")  # its own drift alerts would add runs this test does not count
    airflow.asset_event("monitoring_drift_alert", {"dt": CRON_DAY.isoformat(), "model": MODEL, "version": "1"})
    [alert] = airflow.wait("train_model", run_type="asset_triggered")
    airflow.backfill("train_model", CRON_DAY.isoformat(), CRON_DAY.isoformat())
    [backfill] = airflow.wait("train_model", run_type="backfill")
    trained = _trained(airflow, [alert, backfill])
    assert sorted(trained.values()) == [BACKFILL_DAY.isoformat(), CRON_DAY.isoformat()]
    _wait_audited(airflow, lake, trained)


def test_a_backfill_rerun_flows_to_scoring_and_monitoring(stack) -> None:
    airflow, lake = stack
    for dag_id in ("score_batch", "monitor_drift", *INGEST):
        airflow.unpause(dag_id)  # monitor_drift's drift alert may start train_model: its runs are audited too
    for dag_id in INGEST:
        airflow.backfill(dag_id, CRON_DAY.isoformat(), CRON_DAY.isoformat())
    for dag_id in INGEST:
        airflow.wait(dag_id, run_type="backfill", count=2)
    for dag_id in ("score_batch", "monitor_drift"):
        [run] = airflow.wait(dag_id, run_type="asset_triggered")
        assert run["partition_key"] == CRON_DAY.isoformat()
    assert lake.manifest(PartitionRef.of("predictions", MODEL, CRON_DAY.isoformat())) is not None
    assert lake.read_json(f"reports/drift/{MODEL}/{CRON_DAY.isoformat()}/report.json")["dt"] == CRON_DAY.isoformat()
    for dag_id in INGEST:
        airflow.pause(dag_id)


WAVES = [INGEST, ["compact_lake", "build_features"],
         ["train_model", "audit_bias", "score_batch", "monitor_drift", "pipeline_health", "lifecycle_cleanup"]]


def _manual_waves(stack: tuple[AirflowStack, Lake], conf_of: Any) -> dict[str, str]:
    """Trigger every DAG by hand, upstream DAGs first (a wave waits for the one before); the day of each run."""
    airflow, lake = stack
    for dag_id in DAGS:
        airflow.unpause(dag_id)
    days = {}
    for wave in WAVES:
        runs = {dag_id: airflow.trigger(dag_id, conf_of(dag_id)) for dag_id in wave}
        for dag_id, run_id in runs.items():
            airflow.wait(dag_id, run_id=run_id)
            days[dag_id] = _run_day(airflow, dag_id, run_id)
    return days


def test_manual_trigger_without_params_runs_the_latest_complete_day(stack) -> None:
    days = _manual_waves(stack, lambda dag_id: {})
    assert {d: day for d, day in days.items() if day is not None} == \
        {d: YESTERDAY.isoformat() for d, day in days.items() if day is not None}
    assert set(days) == set(DAGS)


def test_manual_trigger_with_a_day(stack) -> None:
    def conf(dag_id: str) -> dict[str, Any]:
        extra = {"version": "1", "approval_timeout_hours": 0} if dag_id == "audit_bias" else {}
        return {"dt": CRON_DAY.isoformat(), **extra}

    days = _manual_waves(stack, conf)
    assert {d: day for d, day in days.items() if day is not None} == \
        {d: CRON_DAY.isoformat() for d, day in days.items() if day is not None}


def test_daily_crons_start_their_latest_interval(stack) -> None:
    airflow, lake = stack  # unpaused by the manual tests: each started its latest interval then
    for dag_id in ("pipeline_health", "lifecycle_cleanup"):
        [run] = airflow.wait(dag_id, run_type="scheduled")
    for dag_id in DAGS:  # what keeps running: audits in flight, the health backfill, the failing run below
        if dag_id not in ("audit_bias", "pipeline_health", "score_batch"):
            airflow.pause(dag_id)
    health = json.loads(json.dumps(lake.read_json(f"reports/health/{YESTERDAY.isoformat()}/report.json")))
    assert health["dt"] == YESTERDAY.isoformat()
    airflow.backfill("pipeline_health", CRON_DAY.isoformat(), CRON_DAY.isoformat())
    [run] = airflow.wait("pipeline_health", run_type="backfill")
    assert airflow.xcom("pipeline_health", run["dag_run_id"], "health_report")["dt"] == \
        (CRON_DAY - dt.timedelta(days=1)).isoformat()
    economics = airflow.xcom("pipeline_health", run["dag_run_id"], "economics_reports")  # from the tasks' usage
    assert economics["dt"] == (CRON_DAY - dt.timedelta(days=1)).isoformat()
    assert lake.exists(f"reports/bottlenecks/{economics['dt']}/report.json")
    assert set(economics["retrain_every_days"]) == {"fraud_detector"}


def test_health_flags_failed_runs_and_unaudited_versions(stack, alerts) -> None:
    airflow, lake = stack
    # a version registered without its audit (the chain broken), and a run that fails for good
    from mlscale.reports.health import build_health_report

    time.sleep(30)  # train_model is paused: let a training still running finish and its audit begin
    versions = [str(v) for v in _versions(lake)]
    for version in versions:  # an event that lands while an audit run is being created can be missed: audit it
        if not lake.exists(f"reports/bias/{MODEL}/{version}/report.json"):
            airflow.trigger("audit_bias", {"version": version, "approval_timeout_hours": 0})
    deadline = time.time() + 300
    while time.time() < deadline and not (
            all(lake.exists(f"reports/bias/{MODEL}/{v}/report.json") for v in versions)
            and all(r["state"] in ("success", "failed") for r in airflow.runs("audit_bias"))):
        time.sleep(5)  # the audits of the last versions may still run: none may rewrite what is removed below
    newest = versions[-1]
    report_key = f"reports/bias/{MODEL}/{newest}/report.json"
    saved = lake.read_bytes(report_key)
    lake.delete(report_key)
    gate_records = [f.key for f in lake.list_files("_meta/governance_audit")
                    if lake.read_json(f.key)["version"] == newest]
    moved = {key: lake.read_bytes(key) for key in gate_records}
    for key in gate_records:
        lake.delete(key)
    run_id = airflow.trigger("score_batch", {"dt": "2020-01-01"})  # no data that day: fails at once, no retry
    runs = [r for r in airflow.runs("score_batch") if r["dag_run_id"] == run_id]
    deadline = time.time() + 240
    while runs[0]["state"] not in ("success", "failed") and time.time() < deadline:
        time.sleep(5)
        runs = [r for r in airflow.runs("score_batch") if r["dag_run_id"] == run_id]
    assert runs[0]["state"] == "failed"
    assert airflow.api("GET", f"/api/v2/dags/score_batch/dagRuns/{run_id}/taskInstances/score/0").json()[
        "try_number"] == 1  # nothing to retry: there is no data for that day (score is mapped over the models)
    failures = [lake.read_json(f.key) for f in lake.list_files("_meta/task_failures/dt=2020-01-01")]
    assert [(f["dag_id"], f["task_id"], f["run_id"]) for f in failures] == [("score_batch", "score", run_id)]
    received = alerts[0]  # the failure reached on call by e-mail and webhook, with the task log's link
    deadline = time.time() + 60
    while time.time() < deadline and not any(m["Subject"] == "[mlscale critical] score_batch 2020-01-01: task_failed"
                                             for m in received.emails):
        time.sleep(2)
    [mail] = [m for m in received.emails if m["Subject"] == "[mlscale critical] score_batch 2020-01-01: task_failed"]
    from urllib.parse import quote

    link = f"http://airflow.example:8080/dags/score_batch/runs/{quote(run_id, safe='')}/tasks/score/mapped/0?try_number=1"
    assert link in mail.get_body().get_content()
    [hook] = [p["body"]["alert"] for p in received.posts if p["body"]["alert"]["dag_id"] == "score_batch"
              and p["body"]["alert"]["kind"] == "task_failed"]
    assert hook["partition"] == "2020-01-01" and hook["cause"].startswith("score (try 1): ")
    report = build_health_report(lake, "2020-01-01", history_days=1)
    flags = {(a.pipeline, a.kind) for a in report.attention}
    assert ("score_batch", "failed_runs") in flags
    report = build_health_report(lake, NOW.date().isoformat(), history_days=3)
    [unaudited] = [a for a in report.attention if a.kind == "unaudited_versions"]
    assert unaudited.severity == "critical" and f"{MODEL} version {newest} " in unaudited.message
    lake.write_bytes(report_key, saved)
    for key, data in moved.items():
        lake.write_bytes(key, data)


def _land_late_file(lake: Lake, day: dt.date, rows: int = 40) -> str:
    """A file of the ``acquirer_a`` source for ``day`` landing after the day was committed: ``rows`` records of
    one of its files under new event ids (new payments, not re-deliveries). Returns its key."""
    import csv
    import io

    drop = f"landing/transactions/dt={day.isoformat()}"
    source = sorted(f.key for f in lake.list_files(drop) if f.key.rsplit("/", 1)[-1].startswith("acquirer_a__")
                    and f.key.endswith(".csv"))[0]
    reader = csv.reader(io.StringIO(lake.read_bytes(source).decode()))
    header = next(reader)
    records = [r for _, r in zip(range(rows), reader, strict=False)]
    for record in records:
        record[header.index("event_id")] += "-late"
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows([header, *records])
    key = f"{drop}/acquirer_a__9001.csv"
    lake.write_bytes(key, out.getvalue().encode())
    return key


def test_a_file_landing_after_its_day_was_committed_is_ingested_by_a_rerun_that_flows_downstream(stack) -> None:
    """The next run of the dataset finds the late file, its asset event starts ``rerun_late_files``, which
    reruns the late day with ``downstream`` on: raw gets the file's records and compaction and features run
    for that day again (a partitioned event from a manual run). By hand, ``rerun_late_files`` reruns nothing."""
    airflow, lake = stack
    ref = PartitionRef.of("raw", "transactions", BACKFILL_DAY.isoformat())
    before_rows = lake.manifest(ref).rows
    features_before = sum(1 for r in airflow.runs("build_features") if r.get("partition_key") == BACKFILL_DAY.isoformat())
    late = _land_late_file(lake, BACKFILL_DAY)
    for dag_id in ("ingest_transactions", "rerun_late_files", "compact_lake", "build_features"):
        airflow.unpause(dag_id)
    manual = airflow.trigger("rerun_late_files")
    airflow.wait("rerun_late_files", run_id=manual)
    assert airflow.tasks("rerun_late_files", manual)["plan"] == "success"
    found_by = airflow.trigger("ingest_transactions", {"dt": CRON_DAY.isoformat()})
    airflow.wait("ingest_transactions", run_id=found_by)
    assert airflow.tasks("ingest_transactions", found_by)["flag_late_files"] == "success"
    airflow.wait("rerun_late_files", run_type="asset_triggered")
    deadline = time.time() + 600
    while not [r for r in airflow.runs("ingest_transactions") if r["dag_run_id"].startswith("late_files__")]:
        assert time.time() < deadline, "rerun_late_files triggered no ingestion run"
        time.sleep(3)
    [again] = [r for r in airflow.runs("ingest_transactions") if r["dag_run_id"].startswith("late_files__")]
    airflow.wait("ingest_transactions", run_id=again["dag_run_id"])
    result = airflow.xcom("ingest_transactions", again["dag_run_id"], "ingest")
    [from_late] = [f for f in result["per_file"] if f["file"] == late]
    assert result["dt"] == BACKFILL_DAY.isoformat() and from_late["valid"] > 0
    manifest = lake.manifest(ref)
    assert lake.uri(late) in manifest.inputs and manifest.rows == before_rows + from_late["valid"]
    deadline = time.time() + 600
    while sum(1 for r in airflow.runs("build_features") if r.get("partition_key") == BACKFILL_DAY.isoformat()
              and r["state"] == "success") <= features_before:
        assert time.time() < deadline, "build_features did not run again for the late day"
        time.sleep(5)
    for dag_id in ("ingest_transactions", "rerun_late_files", "compact_lake", "build_features"):
        airflow.pause(dag_id)


def _run_day(airflow: AirflowStack, dag_id: str, run_id: str) -> str | None:
    """The day a finished run worked on, from what its main task returned."""
    main = {"compact_lake": "plan", "build_features": "build_customer_activity", "train_model": "train",
            "audit_bias": "audit", "score_batch": "score", "monitor_drift": "check",
            "pipeline_health": "health_report", "lifecycle_cleanup": None}.get(dag_id, "ingest")
    if main is None:
        return None
    mapped = {"audit_bias", "train_model", "score_batch", "monitor_drift"}  # mapped over models: the first
    value = airflow.xcom(dag_id, run_id, main, map_index=0 if dag_id in mapped else -1)
    if dag_id == "compact_lake":
        return str(value["days"][1])
    return str(value["dt"]) if isinstance(value, dict) and "dt" in value else None
