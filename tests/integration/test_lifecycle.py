"""The storage lifecycle against real storage: a local lake, and the S3 API served by moto over HTTP.

Covers the lake's cold-tier support (manifest entries under ``cold/``), retention, legal holds (records
and S3 Object Lock), lineage protection, orphans and their grace period, checkpoints and model artifacts,
S3 lifecycle configuration and tags, idle EC2/EBS resources on moto's EC2, the dry-run default of the
DAG glue, the audit log and the cost report.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import uuid
from collections import Counter

import pyarrow as pa
import pytest
from mlscale.lake import Lake, PartitionRef, S3Options
from mlscale.lake.lake import CommitError
from mlscale.lifecycle import (
    AuditLog,
    HoldSet,
    LineageRefs,
    apply_plan,
    aws_client,
    build_plan,
    load_holds,
    load_lineage,
    parse_policy,
    read_audit,
)
from mlscale.lifecycle.actions import (
    DELETE_ORPHANS,
    DELETE_PARTITION,
    DELETE_PREFIX,
    MOVE_COLD,
    PLANNED,
    PUT_LIFECYCLE,
    SKIPPED,
    TAG_OBJECTS,
)

SCHEMA = pa.schema([("event_id", pa.string()), ("amount", pa.float64())])
RUN_DAY = dt.date(2026, 11, 2)
LOGICAL = dt.datetime(2026, 11, 2, 3, 30, tzinfo=dt.UTC)
POLICY = parse_policy({
    "version": 1,
    "orphans": {"grace_hours": 48},
    "rules": [
        {"name": "raw-keep-100", "zone": "raw", "datasets": ["*"], "classification": "internal",
         "delete_after_days": 100, "min_keep_days": 50, "cold_after_days": 30},
        {"name": "quarantine-short", "zone": "quarantine", "datasets": ["*"], "classification": "pii",
         "delete_after_days": 10},
        {"name": "training-sets", "zone": "training", "datasets": ["*"], "classification": "pii",
         "delete_after_days": 20},
        {"name": "landing-drops", "zone": "landing", "datasets": ["*"], "classification": "pii",
         "delete_after_days": 20, "min_keep_days": 5},
        {"name": "finished-checkpoints", "zone": "checkpoints", "datasets": ["*"], "delete_after_days": 7},
        {"name": "model-artifacts", "zone": "models", "datasets": ["*"]},
    ],
}, "test-policy")


def day(days_before: int) -> str:
    return (RUN_DAY - dt.timedelta(days=days_before)).isoformat()


def write(lake: Lake, zone: str, dataset: str, d: str, regions=("NL", "DE"), rows: int = 3) -> PartitionRef:
    ref = PartitionRef.of(zone, dataset, d)
    with lake.writer(ref, run_id=f"producer-{d}", schema=SCHEMA) as w:
        for region in regions:
            w.write(pa.table({"event_id": [f"{region}{i}" for i in range(rows)], "amount": [1.0] * rows},
                             schema=SCHEMA), subdir=f"region={region}")
    return ref


def age(lake: Lake, key: str, hours: float) -> None:
    """Set a local file's mtime to ``hours`` before the run's logical time."""
    stamp = (LOGICAL - dt.timedelta(hours=hours)).timestamp()
    os.utime(lake.path(key), (stamp, stamp))


NO_HOLDS, NO_LINEAGE = HoldSet(), LineageRefs()


def live(lake: Lake, prefix: str, ref: PartitionRef) -> list[str]:
    """The files below ``prefix`` other than those a commit of ``ref`` superseded, their records and the
    partition's committed versions."""
    superseded = set(lake.superseded(ref.key))
    return sorted(f.key for f in lake.list_files(prefix) if not f.key.endswith("/") and f.key not in superseded
                  and "/_superseded/" not in f.key and "/_manifests/" not in f.key)


def run(lake: Lake, *, holds: HoldSet = NO_HOLDS, lineage: LineageRefs = NO_LINEAGE, zones=("raw",),
        logical: dt.datetime = LOGICAL, grace: float | None = None, apply: bool = True, run_id: str | None = None):
    run_id = run_id or f"scheduled__{uuid.uuid4().hex[:6]}"
    plan = build_plan(lake, POLICY, holds, lineage, run_id=run_id, run_day=logical.date(), logical_time=logical,
                      zones=zones, grace_hours=grace, dry_run=not apply)
    audit = AuditLog(lake, run_id=run_id, run_day=plan.run_day, phase="plan", dry_run=not apply)
    for action in plan.actions:
        audit.record(action)
    audit.flush()
    result = None
    if apply:
        audit = AuditLog(lake, run_id=run_id, run_day=plan.run_day, phase="apply", dry_run=False)
        result = apply_plan(lake, lake.read_json(plan.plan_key), holds, lineage, audit=audit)
    return plan, result


def days_of(lake: Lake, zone: str, dataset: str) -> list[str]:
    return [r.dt for r in lake.partitions(zone, dataset)]


# -- the lake's cold tier ------------------------------------------------------------------------------
def test_move_partition_to_cold_keeps_readers_working(lake: Lake) -> None:
    ref = write(lake, "raw", "transactions", day(40))
    before = lake.read_table(ref).sort_by("event_id")
    hot = set(lake.require_manifest(ref).file_keys())
    moved = lake.move_partition(ref, "cold", run_id="lifecycle-1")
    assert all(f.path.startswith(f"/cold/{ref.key}/region=") for f in moved.files)
    assert moved.extra["storage_root"] == "cold" and moved.run_id == f"producer-{day(40)}"
    assert lake.read_table(ref).sort_by("event_id").equals(before)   # region column included
    lake.verify(ref)
    # the hot copies stay for readers that listed them (superseded: lifecycle removes them after the grace period)
    assert live(lake, ref.key, ref) == [f"{ref.key}/_manifest.json"]
    assert set(lake.superseded(ref.key)) == hot
    assert lake.orphans("raw") == [] and lake.orphans("cold") == []
    assert lake.move_partition(ref, "cold", run_id="lifecycle-2") == moved    # idempotent
    back = lake.move_partition(ref, "", run_id="restore")                      # and reversible
    assert all(not f.path.startswith("/") for f in back.files) and live(lake, f"cold/{ref.key}", ref) == []
    lake.move_partition(ref, "cold", run_id="lifecycle-3")
    write(lake, "raw", "transactions", day(40), regions=("PL",))               # a re-run replaces it exactly
    assert live(lake, f"cold/{ref.key}", ref) == []
    assert set(lake.read_table(ref).column("region").to_pylist()) == {"PL"}
    lake.move_partition(ref, "cold", run_id="lifecycle-4")
    assert lake.delete_partition(ref) == 1 and live(lake, f"cold/{ref.key}", ref) == []


def test_partly_cold_partition_reads_both_roots(local_lake: Lake) -> None:
    import dataclasses

    lake = local_lake
    ref = write(lake, "raw", "transactions", day(40))
    manifest = lake.require_manifest(ref)
    first = manifest.files[0]
    lake.write_bytes(f"cold/{ref.key}/{first.path}", lake.read_bytes(f"{ref.key}/{first.path}"))
    files = (dataclasses.replace(first, path=f"/cold/{ref.key}/{first.path}"), *manifest.files[1:])
    lake.publish(ref, dataclasses.replace(manifest, files=files))
    table = lake.read_table(ref)
    assert table.num_rows == 6 and set(table.column("region").to_pylist()) == {"NL", "DE"}
    assert lake.orphans("raw") == [] and lake.orphans("cold") == []


def test_move_refuses_when_the_partition_changes_meanwhile(local_lake: Lake, monkeypatch) -> None:
    lake = local_lake
    ref = write(lake, "raw", "transactions", day(40))
    real = Lake.manifest
    calls = []

    def racing(self, r):
        calls.append(r)
        if len(calls) == 2:  # a producer commits between the copy and the commit
            monkeypatch.setattr(Lake, "manifest", real)
            write(lake, "raw", "transactions", day(40), regions=("PL",))
        return real(self, r)

    monkeypatch.setattr(Lake, "manifest", racing)
    with pytest.raises(CommitError, match="changed while its files were moved"):
        lake.move_partition(ref, "cold", run_id="lifecycle")
    assert lake.list_files(f"cold/{ref.key}") == []
    assert set(lake.read_table(ref).column("region").to_pylist()) == {"PL"}


# -- retention, cold tier, orphans on a local lake ----------------------------------------------------
def test_retention_deletes_exactly_the_expired_partitions(local_lake: Lake) -> None:
    lake = local_lake
    for n in (0, 29, 31, 99, 100, 101, 365):
        write(lake, "raw", "transactions", day(n))
    for n in (5, 10, 11, 40):
        write(lake, "quarantine", "transactions", day(n), regions=("NL",))
    for n in (3, 21):
        lake.write_bytes(f"landing/transactions/dt={day(n)}/acquirer_a__001.csv", b"a,b\n1,2\n")
    plan, result = run(lake, zones=("landing", "raw", "quarantine"))
    assert days_of(lake, "raw", "transactions") == [day(n) for n in (100, 99, 31, 29, 0)]
    assert days_of(lake, "quarantine", "transactions") == [day(10), day(5)]
    assert [f.key.split("/")[2] for f in lake.list_files("landing")] == [f"dt={day(3)}"]
    assert not os.path.exists(lake.path(f"raw/transactions/dt={day(101)}"))  # emptied directories are pruned
    assert result.statuses[DELETE_PARTITION] == {"applied": 4}
    assert result.statuses[DELETE_PREFIX] == {"applied": 1}
    # older than cold_after_days 30 and kept: moved to cold/, readers unaffected
    cold = sorted(a.target for a in plan.actions if a.action == MOVE_COLD)
    assert cold == [f"raw/transactions/dt={day(n)}" for n in (100, 99, 31)]
    for n in (100, 99, 31):
        assert lake.read_table(PartitionRef.of("raw", "transactions", day(n))).num_rows == 6
    audit = read_audit(lake, RUN_DAY.isoformat())
    applied = [r for r in audit if r["phase"] == "apply" and r["status"] == "applied"]
    assert {(r["action"], r["rule"]) for r in applied} == {
        (DELETE_PARTITION, "raw-keep-100"), (DELETE_PARTITION, "quarantine-short"),
        (DELETE_PREFIX, "landing-drops"), (MOVE_COLD, "raw-keep-100")}
    assert len([r for r in audit if r["phase"] == "plan"]) == len(plan.actions)
    again, result2 = run(lake, zones=("landing", "raw", "quarantine"))  # idempotent: nothing left to do
    assert [a for a in again.actions if a.status == PLANNED] == [] and result2.statuses == {}


def test_orphans_are_removed_only_after_the_grace_period(local_lake: Lake) -> None:
    lake = local_lake
    ref = write(lake, "raw", "transactions", day(1))
    for key in lake.list_files(""):
        age(lake, key.key, 200)
    crashed = f"{ref.key}/region=NL/part-crashed-00000.parquet"
    staging = f"{ref.key}/_staging/abc123/region=NL/part-0.parquet"
    fresh = f"{ref.key}/region=DE/part-inflight-00000.parquet"
    cold_orphan = f"cold/{ref.key}/region=NL/part-leftover.parquet"
    for key, hours in ((crashed, 100), (staging, 60), (fresh, 10), (cold_orphan, 72)):
        lake.write_bytes(key, b"x" * 10)
        age(lake, key, hours)
    plan, _ = run(lake, grace=48)
    orphans = [a for a in plan.actions if a.action == DELETE_ORPHANS]
    assert sorted(k for a in orphans for k in a.keys) == sorted([crashed, staging, cold_orphan])
    kinds = sum((Counter(a.detail["kinds"]) for a in orphans), Counter())
    assert kinds == {"unlisted": 2, "staging": 1}
    remaining = {f.key for f in lake.orphans("raw") + lake.orphans("cold")}
    assert remaining == {fresh}
    assert lake.read_table(ref).num_rows == 6   # committed files untouched
    later = LOGICAL + dt.timedelta(hours=40)    # 50 h after its mtime: past the grace period
    run(lake, grace=48, logical=later)
    assert lake.orphans("raw") == [] and lake.orphans("cold") == []


def test_superseded_files_age_from_their_commit_not_their_mtime(local_lake: Lake) -> None:
    """A rewrite keeps the previous version's files for readers still on it: lifecycle removes them only once the
    grace period has passed since the commit that superseded them, however old the files themselves are."""
    lake = local_lake
    ref = write(lake, "raw", "transactions", day(1))
    old_files = {f.key for f in lake.list_files(ref.key) if f.key.endswith(".parquet")}
    for key in old_files:
        age(lake, key, 200)                                   # written long ago
    write(lake, "raw", "transactions", day(1), regions=("NL",))  # rewritten 10 h before the run (below)
    record = next(f.key for f in lake.list_files(ref.key) if "/_superseded/" in f.key)
    doc = lake.read_json(record)
    assert set(doc["files"]) == old_files
    lake.write_json(record, {**doc, "superseded_at": (LOGICAL - dt.timedelta(hours=10)).isoformat()})
    age(lake, record, 10)
    plan, _ = run(lake, grace=48)
    assert not {k for a in plan.actions if a.action == DELETE_ORPHANS and a.status == PLANNED for k in a.keys} \
        & old_files
    assert set(lake.superseded(ref.key)) == old_files and lake.read_table(ref).num_rows == 3
    run(lake, grace=48, logical=LOGICAL + dt.timedelta(hours=40))  # 50 h after the rewrite
    assert lake.superseded(ref.key) == {} and not any(lake.exists(k) for k in old_files | {record})
    assert lake.read_table(ref).num_rows == 3 and lake.orphans("raw") == []


def test_a_deleted_feature_partition_takes_its_published_feast_copy_with_it(local_lake: Lake) -> None:
    from mlscale.feature_store.config import feast_paths

    lake = local_lake
    policy = parse_policy({"version": 1, "rules": [
        {"name": "features", "zone": "features", "datasets": ["*"], "delete_after_days": 10}]})
    old, recent = (write(lake, "features", "customer_activity_v1", day(d)) for d in (20, 2))
    paths = feast_paths(lake)
    for ref in (old, recent):   # what publish_offline writes for the day
        os.makedirs(paths.offline_dir(ref.dataset), exist_ok=True)
        with open(paths.offline_file(ref.dataset, ref.dt), "wb") as out:
            out.write(b"p" * 100)
    plan = build_plan(lake, policy, NO_HOLDS, NO_LINEAGE, run_id="r", run_day=RUN_DAY, logical_time=LOGICAL,
                      zones=["features"], dry_run=False)
    audit = AuditLog(lake, run_id="r", run_day=plan.run_day, phase="apply", dry_run=False)
    result = apply_plan(lake, lake.read_json(plan.plan_key), NO_HOLDS, NO_LINEAGE, audit=audit)
    assert not os.path.exists(paths.offline_file(old.dataset, old.dt))
    assert os.path.exists(paths.offline_file(recent.dataset, recent.dt))
    assert result.bytes_deleted_published == 100 and lake.manifest(old) is None


def test_holds_and_lineage_block_deletion_and_are_audited(local_lake: Lake, tmp_path) -> None:
    lake = local_lake
    held = write(lake, "raw", "transactions", day(200))
    tool_held = write(lake, "raw", "customers", day(200))
    free = write(lake, "raw", "transactions", day(201))
    referenced = write(lake, "training", "fraud", day(30))
    released = write(lake, "training", "fraud", day(31))
    holds_file = tmp_path / "legal_holds.yaml"
    holds_file.write_text(json.dumps({"holds": [{
        "id": "LH-7", "scope": {"zone": "raw", "dataset": "transactions", "from": day(200), "to": day(200)},
        "reason": "chargeback case 4471", "who": "legal@example.com", "since": "2026-10-01"}]}))
    lake.write_json("_meta/legal_holds/LH-8.json", {
        "id": "LH-8", "scope": {"prefix": tool_held.key}, "reason": "regulator request", "who": "dpo",
        "since": "2026-10-02"})
    lake.write_json("_meta/lineage_refs/fraud-3.json", {
        "model": "fraud", "version": 3, "status": "registered", "references": [referenced.key]})
    lake.write_json("_meta/lineage_refs/fraud-2.json", {
        "model": "fraud", "version": 2, "status": "deleted", "references": [released.key]})
    holds, lineage = load_holds(holds_file, lake), load_lineage(lake)
    assert [h.id for h in holds.holds] == ["LH-7", "LH-8"]
    plan, result = run(lake, holds=holds, lineage=lineage, zones=("raw", "training"))
    assert days_of(lake, "raw", "transactions") == [held.dt]
    assert days_of(lake, "raw", "customers") == [tool_held.dt]
    assert days_of(lake, "training", "fraud") == [referenced.dt]
    skipped = {a.target: a.reason for a in plan.actions if a.status == SKIPPED}
    assert skipped == {held.key: "legal_hold:LH-7", tool_held.key: "legal_hold:LH-8",
                       referenced.key: "lineage:fraud:3"}
    audit = [r for r in read_audit(lake) if r["status"] == "skipped"]
    assert {(r["target"], r["rule"]) for r in audit} == {
        (held.key, "raw-keep-100"), (tool_held.key, "raw-keep-100"), (referenced.key, "training-sets")}
    assert all(r["detail"].get("hold") or r["detail"].get("lineage") for r in audit)
    assert free.key in {a.target for a in plan.actions if a.status == PLANNED}


def test_apply_rechecks_holds_placed_after_the_plan(local_lake: Lake) -> None:
    lake = local_lake
    ref = write(lake, "raw", "transactions", day(300))
    plan = build_plan(lake, POLICY, HoldSet(), LineageRefs(), run_id="r1", run_day=RUN_DAY, logical_time=LOGICAL,
                      zones=["raw"])
    assert [a.status for a in plan.actions] == [PLANNED]
    late = load_holds(None, extra=[{"id": "LH-late", "scope": {"prefix": ref.key}, "reason": "r", "who": "w",
                                    "since": "2026-11-02"}])
    audit = AuditLog(lake, run_id="r1", run_day=RUN_DAY.isoformat(), phase="apply", dry_run=False)
    result = apply_plan(lake, plan.as_dict(), late, LineageRefs(), audit=audit)
    assert result.statuses == {DELETE_PARTITION: {"skipped": 1}}
    assert days_of(lake, "raw", "transactions") == [ref.dt]


def test_finished_checkpoints_and_deleted_model_versions(local_lake: Lake) -> None:
    lake = local_lake
    finished_at = {"old": LOGICAL - dt.timedelta(days=8), "recent": LOGICAL - dt.timedelta(days=2)}
    for run_name, when in finished_at.items():
        lake.write_bytes(f"checkpoints/train_fraud/{run_name}/epoch-1.ckpt", b"w" * 100)
        lake.write_json(f"checkpoints/train_fraud/{run_name}/_finished.json",
                        {"status": "success", "finished_at": when.isoformat()})
    lake.write_bytes("checkpoints/train_fraud/running/epoch-9.ckpt", b"w")
    for version in ("1", "2", "3"):
        lake.write_bytes(f"models/fraud/{version}/model.json", b"{}")
        age(lake, f"models/fraud/{version}/model.json", 100)
    lake.write_json("_meta/lineage_refs/fraud.json", [
        {"model": "fraud", "version": "1", "status": "deleted", "references": []},
        {"model": "fraud", "version": "2", "status": "registered", "references": []}])
    plan, _ = run(lake, lineage=load_lineage(lake), zones=("checkpoints", "models"))
    left = {f.key.rsplit("/", 1)[0] for f in lake.list_files("checkpoints")} | {
        f.key.rsplit("/", 1)[0] for f in lake.list_files("models")}
    assert left == {"checkpoints/train_fraud/recent", "checkpoints/train_fraud/running", "models/fraud/2",
                    "models/fraud/3"}   # version 3 has no lineage record: reported, never guessed
    assert {(a.target, a.rule) for a in plan.actions} == {
        ("checkpoints/train_fraud/old", "finished-checkpoints"), ("models/fraud/1", "model-artifacts")}


# -- the DAG glue: dry run by default, cost report -------------------------------------------------------
class FakeRun:
    def __init__(self, run_type: str) -> None:
        self.run_type, self.run_after, self.logical_date, self.partition_key = run_type, LOGICAL, LOGICAL, None


def context(run_type: str, **params) -> dict:
    return {"dag_run": FakeRun(run_type), "run_id": f"{run_type}__{uuid.uuid4().hex[:6]}", "logical_date": LOGICAL,
            "data_interval_start": LOGICAL, "params": params}


def test_manual_runs_are_dry_runs_scheduled_runs_apply_and_report_cost(local_lake: Lake, s3_server: S3Options) -> None:
    from airflow.sdk.exceptions import AirflowSkipException
    from mlscale.airflow.tasks.lifecycle import apply_for_run, cost_report_for_run, plan_for_run

    lake = local_lake
    ec2 = aws_client("ec2", s3_server)
    old = write(lake, "raw", "transactions", day(2000))  # past every shipped raw rule
    for i in range(3):
        write(lake, "raw", "transactions", day(i), regions=("NL",))
    params = {"dry_run": None, "zones": ["raw"], "idle_resources": False, "grace_hours": 48, "dt": None}
    manual = context("manual", **params)
    summary = plan_for_run(params, manual, lake=lake, ec2=ec2)
    assert summary["dry_run"] is True and summary["counts"][DELETE_PARTITION] == {"planned": 1}
    with pytest.raises(AirflowSkipException, match="dry run"):
        apply_for_run(summary, manual, lake=lake)
    assert lake.manifest(old) is not None
    report = cost_report_for_run(summary, None, lake=lake)
    doc = json.loads(lake.read_bytes(f"reports/cost/{RUN_DAY}/report.json"))
    assert doc["saved"]["basis"].startswith("planned (dry run") and doc["saved"]["bytes_deleted_hot"] > 0
    assert report["totals"]["objects"] == doc["totals"]["objects"]

    scheduled = context("scheduled", **params)
    summary = plan_for_run(params, scheduled, lake=lake, ec2=ec2)
    assert summary["dry_run"] is False
    applied = apply_for_run(summary, scheduled, lake=lake)
    assert applied["statuses"][DELETE_PARTITION] == {"applied": 1} and lake.manifest(old) is None
    phases = {(r["run_id"], r["phase"]) for r in read_audit(lake)}
    assert (scheduled["run_id"], "apply") in phases and (manual["run_id"], "apply") not in phases

    tomorrow = LOGICAL + dt.timedelta(days=1)
    next_day = {**context("scheduled", **params), "logical_date": tomorrow, "data_interval_start": tomorrow}
    next_day["dag_run"].run_after = next_day["dag_run"].logical_date = tomorrow
    write(lake, "raw", "transactions", day(-1), regions=("NL", "DE", "PL"))
    summary2 = plan_for_run(params, next_day, lake=lake, ec2=ec2)
    cost_report_for_run(summary2, None, lake=lake)
    doc2 = json.loads(lake.read_bytes(f"reports/cost/{day(-1)}/report.json"))
    assert doc2["growth"]["previous_day"] == RUN_DAY.isoformat()
    top = doc2["growth"]["top"][0]
    assert top["delta_bytes"] > 0 and top["zone"] in ("raw", "_meta", "reports")
    raw = [r for r in doc2["by_dataset"] if (r["zone"], r["dataset"]) == ("raw", "transactions")]
    assert raw and raw[0]["small_files"] == raw[0]["data_files"] > 0 and raw[0]["monthly_cost"] > 0
    assert any(s["dataset"] == "transactions" for s in doc2["small_files"])
    page = lake.read_bytes(f"reports/cost/{day(-1)}/report.html").decode()
    assert "<svg" in page and "<script" not in page and "raw/transactions" in page


# -- S3 (moto over HTTP) ----------------------------------------------------------------------------------
@pytest.fixture
def locked_lake(s3_server: S3Options) -> tuple[Lake, object, str]:
    s3 = aws_client("s3", s3_server)
    bucket = f"locked-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
    return Lake(f"s3://{bucket}/lake", s3_server), s3, bucket


def test_s3_object_lock_legal_hold_prevents_deletion_and_the_plan_skips_it(locked_lake) -> None:
    from botocore.exceptions import ClientError

    lake, s3, bucket = locked_lake
    held = write(lake, "raw", "transactions", day(300))
    expired = write(lake, "raw", "transactions", day(301))
    kept = write(lake, "raw", "transactions", day(3))
    key = f"lake/{lake.require_manifest(held).file_keys()[0]}"
    s3.put_object_legal_hold(Bucket=bucket, Key=key, LegalHold={"Status": "ON"})
    version = s3.head_object(Bucket=bucket, Key=key)["VersionId"]
    with pytest.raises(ClientError, match="AccessDenied"):
        s3.delete_object(Bucket=bucket, Key=key, VersionId=version)
    plan, result = run(lake)
    verdicts = {a.target: (a.status, a.reason) for a in plan.actions if a.action == DELETE_PARTITION}
    assert verdicts[held.key] == (SKIPPED, "object_lock_legal_hold")
    assert verdicts[expired.key][0] == PLANNED
    assert days_of(lake, "raw", "transactions") == [held.dt, kept.dt]
    assert lake.read_table(held).num_rows == 6
    assert s3.get_object_legal_hold(Bucket=bucket, Key=key)["LegalHold"]["Status"] == "ON"


def test_s3_lifecycle_configuration_and_tags_are_applied_and_read_back(s3_lake: Lake) -> None:
    lake = s3_lake
    s3 = aws_client("s3", lake.s3)
    bucket = lake.root.split("/")[2]
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [
        {"ID": "other-team-logs", "Status": "Enabled", "Filter": {"Prefix": "logs/"}, "Expiration": {"Days": 3}}]})
    cold = write(lake, "raw", "transactions", day(45))
    hot = write(lake, "raw", "transactions", day(5))
    plan, result = run(lake)
    assert result.statuses[PUT_LIFECYCLE] == {"applied": 1} and result.statuses[TAG_OBJECTS] == {"applied": 1}
    rules = {r["ID"]: r for r in s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]}
    assert "other-team-logs" in rules
    ours = rules["mlscale-raw-keep-100"]
    assert ours["Transitions"] == [{"Days": 30, "StorageClass": "GLACIER_IR"}]
    assert ours["Filter"]["And"]["Prefix"] == "lake/raw/"
    assert {t["Key"]: t["Value"] for t in ours["Filter"]["And"]["Tags"]} == {
        "mlscale-classification": "internal", "mlscale-rule": "raw-keep-100"}
    assert rules["mlscale-housekeeping"]["NoncurrentVersionExpiration"]["NoncurrentDays"] == 30
    for ref, tagged in ((cold, True), (hot, False)):
        for key in lake.require_manifest(ref).file_keys():
            tags = {t["Key"]: t["Value"] for t in s3.get_object_tagging(Bucket=bucket, Key=f"lake/{key}")["TagSet"]}
            assert (tags.get("mlscale-classification") == "internal") is tagged
    assert lake.read_table(cold).num_rows == 6
    again, _ = run(lake)
    assert not [a for a in again.actions if a.action == PUT_LIFECYCLE]   # the configuration is up to date


def test_s3_retention_and_orphans_after_grace(s3_lake: Lake) -> None:
    lake = s3_lake
    now = dt.datetime.now(dt.UTC)   # S3 LastModified is the real upload time: the run's time follows it
    days = {n: (now.date() - dt.timedelta(days=n)).isoformat() for n in (0, 50, 99, 150)}
    for d in days.values():
        write(lake, "raw", "transactions", d)
    orphan = f"raw/transactions/dt={days[0]}/region=NL/part-crashed-00000.parquet"
    lake.write_bytes(orphan, b"crashed attempt")
    plan, _ = run(lake, logical=now, grace=48)
    assert lake.exists(orphan)   # younger than the grace period
    assert days_of(lake, "raw", "transactions") == [days[n] for n in (99, 50, 0)]
    plan, _ = run(lake, logical=now + dt.timedelta(hours=49), grace=48, run_id="later")
    assert not lake.exists(orphan)
    assert lake.orphans("raw") == []
    assert days_of(lake, "raw", "transactions") == [days[n] for n in (50, 0)]  # 99 is 101 days old two days later


def test_idle_resources_on_moto_ec2(s3_server: S3Options) -> None:
    from mlscale.lifecycle.actions import REPORTED
    from mlscale.lifecycle.idle import act_on_idle, find_idle, idle_actions

    ec2 = aws_client("ec2", s3_server)
    owner = {"Key": "mlscale:platform", "Value": "mlscale"}
    tag = lambda kind, *tags: [{"ResourceType": kind, "Tags": list(tags)}]  # noqa: E731
    mine = ec2.create_volume(AvailabilityZone="us-east-1a", Size=50, TagSpecifications=tag("volume", owner))
    theirs = ec2.create_volume(AvailabilityZone="us-east-1a", Size=10)
    image = ec2.describe_images()["Images"][0]["ImageId"]
    worker = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, TagSpecifications=tag(
        "instance", {"Key": "mlscale:role", "Value": "dask-worker"}))["Instances"][0]["InstanceId"]
    other = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    running = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, TagSpecifications=tag(
        "instance", {"Key": "mlscale:role", "Value": "spark-worker"}))["Instances"][0]
    attached_vol = running["BlockDeviceMappings"][0]["Ebs"]["VolumeId"] if running.get("BlockDeviceMappings") else None
    ec2.stop_instances(InstanceIds=[worker, other])
    snap = ec2.create_snapshot(VolumeId=mine["VolumeId"], TagSpecifications=tag("snapshot", owner))["SnapshotId"]
    policy = POLICY.idle
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=120)
    found = {(r.kind, r.id): r for r in find_idle(ec2, now=later, policy=policy, prices=POLICY.prices)}
    assert found[("volume", mine["VolumeId"])].actionable and found[("volume", mine["VolumeId"])].monthly_cost == 4.0
    assert not found[("volume", theirs["VolumeId"])].actionable       # reported, never deleted
    assert found[("instance", worker)].actionable
    assert ("instance", other) not in found and ("instance", running["InstanceId"]) not in found
    assert attached_vol is None or ("volume", attached_vol) not in found
    assert found[("snapshot", snap)].actionable
    assert ("volume", mine["VolumeId"]) not in {
        (r.kind, r.id) for r in find_idle(ec2, now=dt.datetime.now(dt.UTC), policy=policy, prices=POLICY.prices)}
    report_only = idle_actions(list(found.values()), act=False)
    assert {a.status for a in report_only} == {REPORTED}
    for action in idle_actions(list(found.values()), act=True):
        if action.status == PLANNED:
            act_on_idle(ec2, action)
    volumes = {v["VolumeId"] for v in ec2.describe_volumes()["Volumes"]}
    assert mine["VolumeId"] not in volumes and theirs["VolumeId"] in volumes
    state = ec2.describe_instances(InstanceIds=[worker])["Reservations"][0]["Instances"][0]["State"]["Name"]
    assert state in ("terminated", "shutting-down")
