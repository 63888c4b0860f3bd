"""The pipeline health report on a small hand-written lake: counts, rates, freshness, retries, attention items,
missing sources, the page (escaping, charts), and a build on a copy of a demo lake when one is present."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from mlscale.ingest.report import IngestionResult
from mlscale.lake import Lake, PartitionRef
from mlscale.reports.health import NO_DATA, HealthThresholds, build_health_report
from mlscale.reports.health_html import render_health_html

D = "2026-11-05"


# -- writers of the real shapes (see the modules named in each docstring) ------------------------------------
def ingestion_record(lake: Lake, dataset: str, day: str, *, rows_in: int, written: int, quarantined: int,
                     duplicate: int = 0, seconds: float = 1.0, try_number: int = 1, run_id: str | None = None,
                     dry_run: bool = False, reasons: dict[str, int] | None = None) -> None:
    """As ``mlscale.ingest.run.ingest_partition`` writes it."""
    run_id = run_id or f"scheduled__{day}T02:00:00+00:00"
    result = IngestionResult(
        dataset=dataset, dt=day, run_id=run_id, try_number=try_number, attempt="a1", dry_run=dry_run, files=2,
        rows_in=rows_in, rows_written=written, rows_valid=written, rows_quarantined=quarantined,
        rows_duplicate=duplicate, quarantine_by_reason=reasons or {"missing_required": quarantined},
        bytes_in=1000, bytes_out=500, seconds=seconds, parse_seconds=seconds / 2, contract_version=1,
        contract_fingerprint="abc", code_version="0.1.0", raw_uri="", quarantine_uri="", per_file=[])
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in run_id)
    lake.write_json(f"_meta/ingestion_runs/dt={day}/{dataset}__{safe}__try{try_number}.json", result.as_dict())


def as_of_table(lake: Lake, feature_set: str, version: str, day: str, rows: int = 3, zone: str = "features") -> None:
    """A committed as-of table as ``mlscale.features.build`` commits it (manifest extra included)."""
    table = pa.table({"customer_id": [f"c{i}" for i in range(rows)], "spend_sum_7d": [1.0] * rows})
    with lake.writer(PartitionRef.of(zone, f"{feature_set}_v{version}", day), run_id=f"features_{day}",
                     schema=table.schema, extra={"feature_set": feature_set, "version": version,
                                                 "inputs_signature": "s", "findings": []}) as writer:
        writer.write(table)


def model_version(lake: Lake, version: str, day: str, pr_auc: float, *, resumed_from: int = 0) -> None:
    """``models/<model>/<version>/model.json`` (StoredModel.save) and the training report (write_training_report)."""
    holdout = {"pr_auc": pr_auc, "roc_auc": 0.8, "brier": 0.02, "precision_at_budget": 0.3, "recall_at_budget": 0.1,
               "rows": 500, "positives": 10, "review_budget": 0.005, "threshold_at_budget": 0.4, "reliability": []}
    training = {"algorithm": "xgboost", "rounds": 10, "rounds_trained": 12, "rounds_this_attempt": 12,
                "resumed_from": resumed_from, "best_score": 0.2, "stopped_early": True, "history": [0.1, 0.2],
                "metric": "aucpr", "mode": "single", "seconds": 4.5}
    training_set = {"partition": f"training/fraud_detector/dt={day}", "rows": {"train": 2000, "validation": 500,
                                                                               "holdout": 500},
                    "feature_set_versions": {"customer_activity": "aaaa1111"}}
    lake.write_json(f"models/fraud_detector/{version}/model.json", {
        "tags": {"airflow_run_id": f"manual__{version}"}, "holdout": holdout, "training": training,
        "training_set": training_set, "spec": {}, "inputs": [], "registered_day": day,
        "model": "fraud_detector", "version": version, "algorithm": "xgboost", "features": ["f1"]})
    lake.write_json(f"reports/training/fraud_detector/{version}/report.json", {
        "model": "fraud_detector", "version": version, "holdout": holdout, "training": training, "plan": {},
        "training_set": training_set, "champion_version": None, "vs_champion": {"champion": None}})


def bias_report(lake: Lake, version: str, verdict: str, reasons: list[str]) -> None:
    """``reports/bias/<model>/<version>/report.json`` (mlscale.governance.audit_run)."""
    lake.write_json(f"reports/bias/fraud_detector/{version}/report.json", {
        "verdict": verdict, "reasons": reasons, "insufficient_data": [], "model": "fraud_detector",
        "version": version, "risk_tier": "high", "threshold": 0.4, "run_id": "r", "attributes": {}})


def gate_decision(lake: Lake, version: str, day: str, decision: str, reasons: list[str]) -> None:
    """An append-only record of ``_meta/governance_audit/dt=D/`` (mlscale.governance.gate)."""
    lake.write_json(f"_meta/governance_audit/dt={day}/113502256174-fraud_detector-{version}-1c0c3a50.json", {
        "model": "fraud_detector", "version": version, "decision": decision, "reasons": reasons, "evidence": {},
        "champion_before": None, "champion_after": None, "run_id": "r", "dt": day,
        "decided_at": f"{day}T11:35:02+00:00"})


def drift_report(lake: Lake, day: str, *, drifted: list[str], performance: dict[str, Any], version: str = "2") -> None:
    """``reports/drift/<model>/<dt>/report.json`` (mlscale.governance.monitor)."""
    n = 10
    lake.write_json(f"reports/drift/fraud_detector/{day}/report.json", {
        "model": "fraud_detector", "version": version, "dt": day, "run_id": "r",
        "drift": {"verdict": "drift_detected" if drifted else "no_drift", "drift_detected": bool(drifted),
                  "share_drifted": len(drifted) / n, "n_features": n, "drifted_features": drifted,
                  "critical_drifted": [f for f in drifted if f == "score"], "reference_rows": 500,
                  "current_rows": 1000, "thresholds": {}, "features": []},
        "evidently": {}, "performance": performance,
        "ingestion": {"dataset": "transactions", "rows_written": 950, "rows_quarantined": 50, "quarantine_rate": 0.05},
        "reference": f"models/fraud_detector/{version}/reference_profile.json"})


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    return Lake(f"file://{tmp_path}/lake")


def rows_by_day(report: Any, pipeline: str) -> dict[str, Any]:
    return {row.day: row for row in report.pipelines[pipeline]}


# -- tests ----------------------------------------------------------------------------------------------------
def test_ingestion_counts_rates_retries_and_missing_day(lake: Lake) -> None:
    ingestion_record(lake, "transactions", "2026-11-02", rows_in=1000, written=950, quarantined=30, duplicate=20,
                     seconds=2.5)
    # 11-03: a strict run over the threshold (nothing written, try 1), then the retry that committed
    ingestion_record(lake, "transactions", "2026-11-03", rows_in=1000, written=0, quarantined=80, seconds=3.0)
    ingestion_record(lake, "transactions", "2026-11-03", rows_in=1000, written=900, quarantined=80, duplicate=20,
                     seconds=4.0, try_number=2)
    ingestion_record(lake, "transactions", "2026-11-04", rows_in=2500, written=2450, quarantined=25, duplicate=25)
    ingestion_record(lake, "transactions", D, rows_in=1000, written=0, quarantined=10, dry_run=True)
    ingestion_record(lake, "labels", D, rows_in=100, written=100, quarantined=0, seconds=0.5)

    report = build_health_report(lake, D, history_days=5, datasets=["customers"])
    assert report.days == ("2026-11-01", "2026-11-02", "2026-11-03", "2026-11-04", D)
    assert set(report.pipelines) >= {"ingest_transactions", "ingest_labels", "ingest_customers", "compact_lake",
                                     "build_features", "train_model", "audit_bias", "monitor_drift", "score_batch",
                                     "lifecycle_cleanup"}
    tx = rows_by_day(report, "ingest_transactions")
    assert tx["2026-11-01"].status == NO_DATA and tx["2026-11-01"].rows_in is None
    day2 = tx["2026-11-02"]
    assert (day2.status, day2.runs, day2.retries, day2.rows_in, day2.rows_out, day2.rows_quarantined) == \
        ("ok", 1, 0, 1000, 950, 30)
    assert day2.quarantine_rate == pytest.approx(0.03) and day2.seconds == 2.5
    assert day2.detail["rows_duplicate"] == 20
    day3 = tx["2026-11-03"]  # the committed retry counts; the failed attempt is a retry
    assert (day3.runs, day3.retries, day3.rows_out, day3.seconds) == (2, 1, 900, 4.0)
    assert day3.quarantine_rate == pytest.approx(0.08)
    assert set(day3.flags) == {"quarantine_rate", "retries"} and day3.status == "attention"
    assert day3.detail["seconds_all_attempts"] == 7.0
    day4 = tx["2026-11-04"]
    assert day4.flags == ("volume_change",) and day4.detail["volume_change"] == pytest.approx(1.5)
    assert tx[D].status == "dry run" and tx[D].runs == 0 and tx[D].rows_out == 0
    assert rows_by_day(report, "ingest_labels")[D].rows_out == 100
    assert all(r.status == NO_DATA for r in report.pipelines["ingest_customers"])  # expected, never ran

    kinds = {(a.pipeline, a.kind): a for a in report.attention}
    assert set(kinds) == {("ingest_transactions", "quarantine_rate"), ("ingest_transactions", "retries"),
                          ("ingest_transactions", "volume_change")}
    quarantine = kinds[("ingest_transactions", "quarantine_rate")]
    assert quarantine.days == ("2026-11-03",) and quarantine.severity == "warning"  # not on D itself
    assert "8.00%" in quarantine.message and "80 of 1000" in quarantine.message
    assert report.sources["ingestion_runs"] == {"status": "ok", "records": 6}


def test_quarantine_rate_on_d_is_critical_and_threshold_is_configurable(lake: Lake) -> None:
    ingestion_record(lake, "transactions", "2026-11-04", rows_in=1000, written=990, quarantined=10)
    ingestion_record(lake, "transactions", D, rows_in=1000, written=930, quarantined=70)
    report = build_health_report(lake, D, history_days=2)
    (item,) = report.attention
    assert (item.kind, item.severity, item.days) == ("quarantine_rate", "critical", (D,))
    lenient = build_health_report(lake, D, history_days=2, thresholds=HealthThresholds(max_quarantine_rate=0.1))
    assert lenient.attention == ()


def test_missing_run_on_d_for_a_daily_pipeline(lake: Lake) -> None:
    ingestion_record(lake, "transactions", "2026-11-03", rows_in=10, written=10, quarantined=0)
    ingestion_record(lake, "transactions", "2026-11-04", rows_in=10, written=10, quarantined=0)
    report = build_health_report(lake, D, history_days=3)
    today = rows_by_day(report, "ingest_transactions")[D]
    assert today.status == NO_DATA and today.flags == ("missing",)
    (item,) = report.attention
    assert item.kind == "missing" and "last recorded 2026-11-04" in item.message


def test_feature_freshness_and_failed_validation(lake: Lake) -> None:
    for day in ("2026-11-02", "2026-11-03", "2026-11-04", D):
        as_of_table(lake, "customer_activity", "aaaa1111", day, rows=4)
    for day in ("2026-11-02", "2026-11-03"):
        as_of_table(lake, "merchant_risk", "bbbb2222", day, rows=2)
    as_of_table(lake, "merchant_risk", "bbbb2222", "2026-11-04", zone="quarantine")  # failed validation on D-1
    as_of_table(lake, "customer_activity", "cccc3333", "2026-11-06")  # after D: ignored
    lake.write_json("features/customer_activity_aaaa1111_partials/dt=2026-11-05/_manifest.json", {})  # not as-of

    report = build_health_report(lake, D, history_days=4, feature_sets=["customer_activity", "merchant_risk",
                                                                         "never_built"])
    fresh = {f.feature_set: f for f in report.features}
    assert (fresh["customer_activity"].status, fresh["customer_activity"].lag_days,
            fresh["customer_activity"].newest_day) == ("fresh", 0, D)
    assert fresh["customer_activity"].versions == ("aaaa1111", "cccc3333")
    assert fresh["customer_activity"].table == "customer_activity_vaaaa1111"
    assert (fresh["merchant_risk"].status, fresh["merchant_risk"].lag_days) == ("stale", 2)
    assert fresh["never_built"].status == NO_DATA
    rows = rows_by_day(report, "build_features")
    assert rows["2026-11-03"].rows_out == 6 and rows["2026-11-03"].status == "ok" and rows["2026-11-03"].runs == 2
    assert rows["2026-11-04"].flags == ("stale_features", "validation_failed")
    assert rows["2026-11-04"].detail["lag_days"] == {"customer_activity": 0, "merchant_risk": 1}
    assert rows[D].detail["lag_days"]["merchant_risk"] == 2
    kinds = {a.kind: a for a in report.attention}
    assert kinds["stale_features"].severity == "critical" and "merchant_risk 2 day(s) behind" in \
        kinds["stale_features"].message
    assert kinds["validation_failed"].severity == "warning"
    assert "merchant_risk_vbbbb2222" in kinds["validation_failed"].message


def test_models_bias_gate_drift_and_labelled_performance_are_linked(lake: Lake) -> None:
    ingestion_record(lake, "transactions", D, rows_in=1000, written=920, quarantined=80)
    model_version(lake, "1", "2026-11-02", 0.30)
    model_version(lake, "2", "2026-11-04", 0.25, resumed_from=6)
    model_version(lake, "3", "2026-11-09", 0.50)  # registered after D: not in D's report
    bias_report(lake, "1", "pass", [])
    bias_report(lake, "2", "fail", ["region: demographic_parity_ratio 0.45 < 0.8 (four-fifths rule: IT vs ES)"])
    gate_decision(lake, "2", "2026-11-04", "refused", ["bias: verdict fail: region", "drift: the reference is drifted"])
    drift_report(lake, "2026-11-04", drifted=[], performance={"day": "2026-10-30", "skipped": "no events for that day"})
    drift_report(lake, D, drifted=["score", "amount"], performance={
        "day": "2026-10-31", "labelled": 800, "events": 1000, "pr_auc": 0.1, "roc_auc": 0.7})

    report = build_health_report(lake, D, history_days=5)
    versions = {m["version"]: m for m in report.models}
    assert sorted(versions) == ["1", "2"]
    assert versions["2"]["pr_auc"] == 0.25 and versions["2"]["registered_day"] == "2026-11-04"
    assert versions["2"]["bias_verdict"] == "fail" and versions["2"]["gate_decision"] == "refused"
    assert versions["1"]["bias_verdict"] == "pass" and versions["1"]["gate_decision"] is None
    train = rows_by_day(report, "train_model")
    assert train["2026-11-04"].retries == 1 and train["2026-11-04"].rows_in == 3000
    assert train["2026-11-04"].seconds == 4.5 and train["2026-11-03"].status == NO_DATA
    audit = rows_by_day(report, "audit_bias")
    assert set(audit["2026-11-04"].flags) == {"bias_fail", "gate_refused"}
    assert audit["2026-11-02"].status == "ok"  # v1's passing audit, no gate decision
    drift = {d["day"]: d for d in report.drift}
    assert drift["2026-11-03"]["status"] == NO_DATA
    assert drift["2026-11-04"]["status"] == "no_drift" and drift[D]["status"] == "drift_detected"
    assert drift[D]["share_drifted"] == pytest.approx(0.2) and drift[D]["critical_drifted"] == ["score"]
    perf = {p["day"]: p for p in report.labelled_performance}
    assert perf[D]["pr_auc"] == 0.1 and perf[D]["holdout_pr_auc"] == 0.25 and perf[D]["performance_day"] == "2026-10-31"
    assert perf["2026-11-04"]["skipped"]
    assert rows_by_day(report, "monitor_drift")[D].flags == ("drift", "performance_drop")

    kinds = {a.kind: a for a in report.attention}
    assert {"drift", "performance_drop", "bias_fail", "gate_refused", "retries", "quarantine_rate"} <= set(kinds)
    assert kinds["drift"].severity == "critical"
    assert kinds["drift"].links == (f"/mlscale-reports/view/drift/fraud_detector/{D}/report.html",)
    # the drift item names what happened upstream that day
    assert f"upstream on {D}: ingest_transactions quarantine 8.00%" in kinds["drift"].message
    assert "version 2" in kinds["bias_fail"].message and "refused" in kinds["bias_fail"].message
    assert kinds["bias_fail"].links == ("/mlscale-reports/view/bias/fraud_detector/2/report.html",)
    assert "drift: the reference is drifted" in kinds["gate_refused"].message
    assert [a.severity for a in report.attention] == sorted((a.severity for a in report.attention),
                                                            key=lambda s: s != "critical")


def test_compaction_scoring_lifecycle_and_cost(lake: Lake) -> None:
    for attempt in ("a1", "a2"):  # the same partition compacted twice on one day: a retry
        lake.write_json(f"_meta/compaction_runs/dt={D}/raw__transactions__{attempt}.json", {
            "partition": f"raw/transactions/dt={D}", "attempt": attempt, "run_id": "r", "files_before": 40,
            "files_after": 2, "bytes_before": 4000, "bytes_after": 3000, "rows": 500, "seconds": 12.5, "reasons": []})
    result = {"model": "fraud_detector", "dt": D, "status": "scored", "rows_read": 1000, "written": 1000,
              "flagged": 5, "shadow_flagged": 7, "champion_version": "1", "challenger_version": "2", "seconds": 8.0}
    lake.write_json(f"predictions/fraud_detector/dt={D}/_manifest.json", {
        "partition": f"predictions/fraud_detector/dt={D}", "rows": 2000, "run_id": "score_r", "extra": {"result": result}})
    lake.write_json(f"predictions/fraud_detector_features/dt={D}/_manifest.json", {"rows": 10, "extra": {}})
    lines = [{"run_id": "lc", "run_day": D, "phase": "apply", "dry_run": False, "action": a, "target": "t",
              "rule": "r", "status": s, "reason": "", "bytes": b, "objects": 1, "keys": [], "detail": {}}
             for a, s, b in (("delete_partition", "applied", 100), ("move_cold", "failed", 50),
                             ("delete_partition", "skipped", 10))]
    lake.write_bytes(f"_meta/lifecycle_audit/dt={D}/apply-lc-0123.jsonl",
                     "".join(json.dumps(line) + "\n" for line in lines).encode())
    for day, cost in (("2026-11-04", 1.25), ("2026-11-06", 9.0)):  # the newest report up to D counts
        lake.write_json(f"reports/cost/{day}/report.json", {
            "run_day": day, "currency": "USD", "dry_run": False,
            "totals": {"objects": 10, "bytes": 2**30, "hot_bytes": 2**29, "cold_bytes": 2**29, "monthly_cost": cost},
            "saved": {"monthly_saving": 0.5}, "growth": {"top": [{"zone": "raw", "dataset": "transactions",
                                                                   "delta_bytes": 100}]}})

    report = build_health_report(lake, D, history_days=3)
    compact = rows_by_day(report, "compact_lake")[D]
    assert (compact.runs, compact.retries, compact.rows_out, compact.seconds) == (2, 1, 1000, 25.0)
    score = rows_by_day(report, "score_batch")[D]
    assert (score.rows_in, score.rows_out, score.seconds, score.runs) == (1000, 1000, 8.0, 1)
    assert score.detail["models"]["fraud_detector"]["flag_rate"] == pytest.approx(0.005)
    life = rows_by_day(report, "lifecycle_cleanup")
    assert life[D].detail["statuses"] == {"applied": 1, "failed": 1, "skipped": 1}
    assert life[D].detail["bytes_applied"] == 100 and life[D].flags == ("failed_actions",)
    assert life["2026-11-04"].detail["monthly_cost"] == 1.25
    assert report.cost["day"] == "2026-11-04" and report.cost["monthly_cost"] == 1.25
    assert report.cost["link"] == "/mlscale-reports/view/cost/2026-11-04/report.html"
    kinds = {(a.pipeline, a.kind) for a in report.attention}
    assert kinds == {("compact_lake", "retries"), ("lifecycle_cleanup", "failed_actions")}


def test_empty_lake_reports_no_data_and_writes_both_files(lake: Lake) -> None:
    report = build_health_report(lake, D, history_days=7)
    assert report.attention == ()
    assert all(row.status == NO_DATA for rows in report.pipelines.values() for row in rows)
    assert all(len(rows) == 7 for rows in report.pipelines.values())
    assert report.cost == {"status": NO_DATA} and report.models == () and report.features == ()
    assert {v["status"] for v in report.sources.values()} == {NO_DATA}
    stored = lake.read_json(f"reports/health/{D}/report.json")
    assert stored == json.loads(json.dumps(report.as_dict()))
    assert stored["dt"] == D and stored["first_day"] == "2026-10-30" and stored["history_days"] == 7
    page = lake.read_bytes(f"reports/health/{D}/report.html").decode()
    assert "no data" in page and "<script" not in page
    with pytest.raises(ValueError, match="history_days"):
        build_health_report(lake, D, history_days=0)


def test_unreadable_records_are_left_out_not_fatal(lake: Lake) -> None:
    ingestion_record(lake, "transactions", D, rows_in=10, written=10, quarantined=0)
    lake.write_bytes(f"_meta/ingestion_runs/dt={D}/transactions__broken__try1.json", b"{not json")
    lake.write_bytes(f"reports/drift/fraud_detector/{D}/report.json", b"[1, 2")
    report = build_health_report(lake, D, history_days=1)
    assert rows_by_day(report, "ingest_transactions")[D].rows_out == 10
    assert report.sources["ingestion_runs"]["unreadable"] == 1
    assert report.drift[0]["status"] == NO_DATA


def test_page_escapes_lake_text_and_has_charts(lake: Lake) -> None:
    evil = "<script>alert('x')</script>"
    ingestion_record(lake, "transactions", "2026-11-04", rows_in=100, written=90, quarantined=10,
                     reasons={evil: 10})
    ingestion_record(lake, "transactions", D, rows_in=100, written=100, quarantined=0)
    model_version(lake, "1", "2026-11-04", 0.3)
    bias_report(lake, "1", "fail", ['<img src=x onerror="boom">'])
    drift_report(lake, D, drifted=["<b>amount</b>"], performance={"day": "2026-10-31", "pr_auc": 0.28}, version="1")
    report = build_health_report(lake, D, history_days=5)
    page = lake.read_bytes(f"reports/health/{D}/report.html").decode()
    assert page == render_health_html(report.as_dict())
    assert "<script" not in page and "<img" not in page and "<b>amount" not in page
    assert "&lt;script&gt;" in page and "&lt;img src=x onerror=&quot;boom&quot;&gt;" in page
    assert page.count("<svg") == 6  # quarantine, rows, PR-AUC per version, PR-AUC per day, drift, durations
    for title in ("quarantine rate per day", "records written per day", "holdout PR-AUC per version",
                  "PR-AUC per day", "drift share per day"):
        assert f'aria-label="{title}"' in page
    assert "<polyline" in page and "<rect" in page and "stroke-dasharray" in page  # lines, bars, threshold
    # self-contained: no external stylesheets, scripts, images or fonts
    assert "<link" not in page and " src=" not in page.replace("&lt;img src=x", "")
    assert page.replace('xmlns="http://www.w3.org/2000/svg"', "").count("http") == 0
    assert f"/mlscale-reports/view/drift/fraud_detector/{D}/report.html" in page


def test_compute_cost_per_day_and_per_retrain(lake: Lake) -> None:
    from mlscale.usage import UsageRecord, write_usage

    def usage(dag: str, task: str, day: str, cost: float, version: str | None = None) -> None:
        write_usage(lake, UsageRecord(dag_id=dag, task_id=task, run_id=f"{dag}-{day}", try_number=1, day=day,
                                      started_at=f"{day}T03:00:00+00:00", wall_seconds=60.0, cpu_seconds=100.0,
                                      workers=2, processes=3, cost={"total": cost}, model_version=version))

    usage("ingest_transactions", "ingest", "2026-11-04", 0.25)
    usage("ingest_transactions", "ingest", D, 0.5)
    usage("train_model", "train", D, 2.0, "fraud_detector/7")
    report = build_health_report(lake, D, history_days=3)
    compute = report.compute_cost
    assert compute["total"] == pytest.approx(2.75) and compute["records"] == 3
    assert [d["cost"] for d in compute["by_day"]] == [0.0, 0.25, 2.5]
    assert compute["by_dag"] == {"train_model": 2.0, "ingest_transactions": 0.75}
    assert [(r["model_version"], r["cost"]) for r in compute["retrains"]] == [("fraud_detector/7", 2.0)]
    page = lake.read_bytes(f"reports/health/{D}/report.html").decode()
    assert "fraud_detector/7" in page and "compute cost" in page
    assert report.sources["resource_usage"]["records"] == 3
