"""Operations economics on records with a known answer: the bottleneck model's attribution, the right-sizing
advisor, the retrain cadence (decay fit and recommendation), the scheduled-retrain due check, and reading the
workload a task's result reports."""

from __future__ import annotations

import dataclasses
import datetime as dt
import random

import pytest
from mlscale.governance.retrain_cadence import CadencePolicy, PerformancePoint, fit_decay, recommend
from mlscale.lake import Lake
from mlscale.sizing import advise_from_history
from mlscale.training.cadence import due_for_retrain
from mlscale.usage import UsageRecord, read_usage, write_usage
from mlscale.usage.bottlenecks import analyse, fit_stage
from mlscale.usage.history import cost_by
from mlscale.usage.reports import write_bottleneck_report
from mlscale.usage.workload import workload_of

MIB = 2**20


def record(dag: str, task: str, i: int, *, wall: float, rows: int | None = None, features: int | None = None,
           cpu: float = 1.0, peak: int = 200 * MIB, workers: int = 2, threads: int = 2, limit: int = 4096 * MIB,
           spilled: int = 0, day: str = "2026-11-01", cost: float = 0.001, model_version: str | None = None,
           engine: str = "dask") -> UsageRecord:
    return UsageRecord(dag_id=dag, task_id=task, run_id=f"r{i}", try_number=1, day=day,
                       started_at=f"2026-11-01T00:{i // 60:02d}:{i % 60:02d}+00:00", wall_seconds=wall,
                       cpu_seconds=cpu, workers=workers, processes=workers + 1, peak_memory_bytes={"1": peak},
                       spilled_bytes_peak=spilled, threads_per_worker=threads, memory_limit_bytes=limit, rows=rows,
                       features=features, cost={"total": cost}, model_version=model_version, engine=engine)


def known_world(noise: float = 0.01) -> list[UsageRecord]:
    """ingest: 2 s + 4 µs/row; train: 5 s + 1 µs/row + 50 ns/row/feature (features 20..60); score: fixed 3 s."""
    rng = random.Random(7)
    out = []
    for i in range(40):
        rows = rng.choice([1_000_000, 4_000_000, 10_000_000, 20_000_000])
        out.append(record("ingest_x", "ingest", i, rows=rows, wall=(2 + 4e-6 * rows) * (1 + rng.gauss(0, noise))))
        feats = rng.choice([20, 40, 60])
        out.append(record("train_x", "train", i, rows=rows, features=feats,
                          wall=(5 + 1e-6 * rows + 50e-9 * rows * feats) * (1 + rng.gauss(0, noise))))
        out.append(record("train_x", "evaluate", i, wall=3.0 * (1 + rng.gauss(0, noise))))
    return out


def test_the_cost_model_recovers_known_coefficients_and_attribution() -> None:
    doc = analyse(known_world())
    pipelines = {p["dag_id"]: p for p in doc["pipelines"]}
    ingest = pipelines["ingest_x"]["stages"][0]
    assert ingest["basis"] == "a + b·rows (no feature count reported)"
    assert ingest["fixed_s"] == pytest.approx(2.0, rel=0.1) and ingest["per_row_us"] == pytest.approx(4.0, rel=0.05)
    assert ingest["r2"] > 0.98
    train = next(s for s in pipelines["train_x"]["stages"] if s["task_id"] == "train")
    assert train["basis"] == "a + b·rows + c·rows·features"
    assert train["per_row_feature_ns"] == pytest.approx(50.0, rel=0.1)
    assert train["per_row_us"] == pytest.approx(1.0, abs=0.5)
    # at the median workload (4M or 10M rows, 40 features) the feature term is the largest part of train
    assert pipelines["train_x"]["dominant_stage"] == "train" and pipelines["train_x"]["dominant_term"] == "features"
    evaluate = next(s for s in pipelines["train_x"]["stages"] if s["task_id"] == "evaluate")
    assert evaluate["r2"] is None and evaluate["shares"]["fixed"] == 1.0          # no rows: a fixed cost
    # doubling the volume: ingest's time grows by its volume share
    r = ingest["median_rows"]
    expected = (2 + 4e-6 * 2 * r) / (2 + 4e-6 * r)
    assert pipelines["ingest_x"]["doubling_factor"] == pytest.approx(expected, rel=0.05)
    assert doc["pooled_r2"] > 0.98 and doc["within_stage_r2"] > 0.97      # the workload explains each stage


def test_constant_features_fold_into_the_per_row_cost_and_too_few_runs_fit_a_constant() -> None:
    runs = [record("d", "t", i, rows=rows, features=30, wall=1 + 3e-6 * rows * 1.0) for i, rows in
            enumerate([1000, 5000, 9000, 20000])]
    fit = fit_stage("d", "t", runs)
    assert fit.basis.startswith("a + b·rows (features constant at 30")
    assert fit.per_row_us == pytest.approx(3.0, rel=1e-3) and fit.per_row_feature_ns == 0
    few = fit_stage("d", "t", runs[:2])
    assert few.basis == "a only (fewer than 3 runs)" and few.fixed_s == pytest.approx((runs[0].wall_seconds +
                                                                                      runs[1].wall_seconds) / 2)


def test_the_bottleneck_report_is_written_from_the_lake(tmp_path) -> None:
    lake = Lake(str(tmp_path / "lake"))
    for i, r in enumerate(known_world()):
        write_usage(lake, dataclasses.replace(r, day=f"2026-11-{1 + i % 5:02d}", model_version="m/1"))
    doc = write_bottleneck_report(lake, "2026-11-05", days=5)
    assert doc["bottlenecks"]["records"] == 120 and len(doc["cost_by_day"]) == 5
    assert doc["cost_by_model_version"] == {"m/1": pytest.approx(0.12)}
    html = (tmp_path / "lake/reports/bottlenecks/2026-11-05/report.html").read_text()
    assert "train_x" in html and "a + b·rows + c·rows·features" in html and "Right-sizing" in html
    assert lake.read_json("reports/bottlenecks/2026-11-05/report.json")["bottlenecks"]["pooled_r2"] > 0.98


def test_the_advisor_shrinks_an_idle_cluster_and_grows_a_spilling_one() -> None:
    idle = [record("d", "t", i, wall=10, cpu=2.0, peak=300 * MIB) for i in range(5)]   # 2 of 40 core-seconds
    advice = advise_from_history(idle)
    assert advice is not None and advice.change
    assert advice.recommended == {"workers": 1, "threads_per_worker": 1, "memory_per_worker_bytes": 512 * MIB}
    assert "CPU busy 5% of 4 core(s)" in advice.evidence[0]
    busy = [record("d", "t", i, wall=10, cpu=38.0, peak=3000 * MIB, spilled=500 * MIB) for i in range(5)]
    grown = advise_from_history(busy)
    assert grown is not None and grown.recommended["workers"] == 3                 # 3.8 cores busy at 70%: 6 cores
    assert grown.recommended["memory_per_worker_bytes"] >= 3000 * MIB * 1.25 * 1.5
    assert any("spilled" in e for e in grown.evidence)
    right = [record("d", "t", i, wall=10, cpu=26.0, peak=2000 * MIB, limit=3 * 1024 * MIB) for i in range(5)]
    kept = advise_from_history(right)
    assert kept is not None and not kept.change
    assert advise_from_history(idle[:2]) is None                                   # too little history
    spark = advise_from_history([dataclasses.replace(r, engine="spark") for r in busy])
    assert spark is not None and set(spark.recommended) == {"spark.executor.instances", "spark.executor.cores",
                                                            "spark.executor.memory"}


def points(slope: float, *, noise: float = 0.0, ceiling: float | None = None) -> list[PerformancePoint]:
    rng = random.Random(3)
    out = []
    for v, level in (("1", 0.40), ("2", 0.35), ("3", 0.45)):
        for age in range(1, 31):
            value = level + slope * age + rng.gauss(0, noise)
            out.append(PerformancePoint(v, f"d{v}-{age}", age, value * (ceiling or 1.0), 200, 20000, ceiling))
    return out


def test_the_decay_fit_and_the_recommended_interval() -> None:
    fit = fit_decay(points(-0.001, noise=0.005))
    assert fit.slope_per_day == pytest.approx(-0.001, rel=0.15) and fit.t_value < -5
    policy = CadencePolicy(max_mean_pr_auc_drop=0.01)
    rec = recommend(fit, retrain_cost=0.5, policy=policy)
    assert rec["significant"] and rec["interval_days"] == 14    # 0.001 x 15/2 = 0.0075; 21 days: 0.011 > 0.01
    valued = recommend(fit, retrain_cost=0.5, policy=CadencePolicy(value_per_pr_auc_point_day=0.01))
    # total per 30 days = 15/T + 0.03 (T+1)/2 ... lowest near T = sqrt(2 x 0.5 / (0.001 x 1)) ~ 31
    assert valued["interval_days"] == 30
    flat = recommend(fit_decay(points(0.0, noise=0.005)), retrain_cost=0.5, policy=policy)
    assert not flat["significant"] and flat["interval_days"] == 90 and "no decay measured" in flat["why"]
    assert fit_decay(points(-0.001)[:2]).slope_per_day is None


def test_the_decay_fit_uses_the_truth_ceiling_where_the_world_has_one() -> None:
    fit = fit_decay(points(-0.002, noise=0.002, ceiling=0.5))   # ratio falls 0.002/day; PR-AUC 0.001/day
    assert fit.metric == "pr_auc / truth ceiling"
    assert fit.slope_per_day == pytest.approx(-0.001, rel=0.1)


def test_a_scheduled_retrain_waits_for_the_adopted_interval(tmp_path) -> None:
    from mlscale.training.spec import load_model_spec

    lake = Lake(str(tmp_path / "lake"))
    spec = load_model_spec("fraud_detector")
    assert due_for_retrain(lake, spec, "2026-11-10")[0]                             # no setting: always
    spec = dataclasses.replace(spec, training=dataclasses.replace(spec.training, retrain_every_days=7))
    assert due_for_retrain(lake, spec, "2026-11-10") == (True, "no version registered yet")
    lake.write_json("models/fraud_detector/3/model.json", {"registered_day": "2026-11-05"})
    lake.write_json("models/fraud_detector/2/model.json", {"registered_day": "2026-10-20"})
    due, why = due_for_retrain(lake, spec, "2026-11-10")
    assert not due and "only 5 of 7 days" in why
    assert due_for_retrain(lake, spec, (dt.date(2026, 11, 12)).isoformat())[0]


def test_the_workload_of_results_and_tolerant_reading(tmp_path) -> None:
    assert workload_of({"rows_in": 10, "model": "m", "version": "3"}) == {
        "rows": 10, "features": None, "model": "m", "model_version": "m/3"}
    assert workload_of({"plan": {"rows": 500, "features": 42}, "model": "m", "version": "4"})["features"] == 42
    assert workload_of({"rows_read": 7, "features": "s3://x", "model": "m", "champion_version": "2"}) == {
        "rows": 7, "features": None, "model": "m", "model_version": "m/2"}
    assert workload_of(42) == {"rows": None, "features": None, "model": None, "model_version": None}
    lake = Lake(str(tmp_path / "lake"))
    write_usage(lake, record("d", "t", 1, wall=1.0))
    doc = lake.read_json("_meta/resource_usage/dt=2026-11-01/d__t__r1__1.json")
    lake.write_json("_meta/resource_usage/dt=2026-11-01/newer.json", {**doc, "run_id": "r2", "a_later_field": 1})
    lake.write_json("_meta/resource_usage/dt=2026-11-01/broken.json", {"dag_id": "d"})
    assert sorted(r.run_id for r in read_usage(lake, "2026-11-01")) == ["r1", "r2"]
    assert cost_by(read_usage(lake, "2026-11-01"), "dag_id") == {"d": pytest.approx(0.002)}


def test_the_spark_settings_follow_the_history_when_there_is_one() -> None:
    from mlscale.sizing import GB, ClusterResources, CompactionDecision, spark_config

    decisions = [CompactionDecision("raw/t/dt=2026-11-01", True, ("many files",), {"": 1}, 40, 200 * MIB)]
    cluster = ClusterResources(executors=2, cores_per_executor=2, memory_per_executor_bytes=8 * GB, local=False)
    rule = spark_config(decisions, cluster)
    assert "size rule" in rule.reasons[1]
    runs = [record("compact_lake", "compact", i, wall=20, cpu=10.0, peak=1800 * MIB, engine="spark")
            for i in range(4)]
    advice = advise_from_history(runs)
    sized = spark_config(decisions, cluster, history=advice)
    assert sized.conf["spark.executor.memory"] == "2304m"        # 1800 MiB x 1.25, in 256 MiB steps
    assert "raised by the usage history of 4 runs" in sized.reasons[1]
    small = ClusterResources(executors=1, cores_per_executor=2, memory_per_executor_bytes=2 * GB, local=False)
    assert spark_config(decisions, small, history=advice).conf["spark.executor.memory"] == "2048m"  # as offered
    light = advise_from_history([dataclasses.replace(r, peak_memory_bytes={"1": 300 * MIB}) for r in runs])
    kept = spark_config(decisions, cluster, history=light)         # the history never lowers the size rule
    assert kept.conf["spark.executor.memory"] == rule.conf["spark.executor.memory"] and "needs less" in kept.reasons[1]
    local = ClusterResources()                                     # local mode: executor memory is not used
    assert "usage history" not in spark_config(decisions, local, history=advice).reasons[1]


def test_review_cases_exact_fits_future_reports_mixed_records_and_mapped_tasks(tmp_path) -> None:
    # an exact fit (as many points as terms) measures no decay
    exact = [PerformancePoint("1", f"d{a}", a, 0.4 - 0.03 * a, 100, 10_000) for a in (1, 2, 3)]
    assert fit_decay(exact).slope_per_day is None
    # a cadence report of day D reads no drift report of a later day
    from mlscale.governance.retrain_cadence import performance_points

    lake = Lake(str(tmp_path / "lake"))
    lake.write_json("models/m/1/model.json", {"registered_day": "2026-11-01",
                                              "training_set": {"last_event_day": "2026-10-31"}})
    for day in ("2026-11-05", "2026-11-20"):
        lake.write_json(f"reports/drift/m/{day}/report.json", {"dt": day, "version": "1", "performance": {
            "day": day, "pr_auc": 0.3, "positives": 50, "labelled": 5000}})
    assert [p.day for p in performance_points(lake, "m", until="2026-11-10")] == ["2026-11-05"]
    # runs without a row count are not zero-row runs
    mixed = [record("d", "t", i, wall=5.0 + i) for i in range(5)] + \
        [record("d", "t", 9, wall=1.0, rows=10), record("d", "t", 10, wall=2.0, rows=20)]
    assert fit_stage("d", "t", mixed).basis == "a only (fewer than 3 runs report their rows)"
    # each mapped instance keeps its record; a failed try is not a workload's time
    write_usage(lake, dataclasses.replace(record("train_model", "train", 1, wall=1.0), map_index=0))
    write_usage(lake, dataclasses.replace(record("train_model", "train", 1, wall=2.0), map_index=1))
    assert len(read_usage(lake, "2026-11-01")) == 2
    failed = [dataclasses.replace(r, succeeded=False) for r in known_world()[:30]]
    assert analyse(failed)["records"] == 0
