"""The sensitive-data access log: one append-only record per read, purposes enforced, reports exact."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as pds
import pytest
from mlscale.audit import (
    PURPOSES,
    AccessLogError,
    Actor,
    UnknownPurpose,
    access_report,
    is_sensitive,
    load_policy,
    log_access,
    read_access_log,
    read_sensitive,
)
from mlscale.lake import Lake, PartitionRef

CUSTOMERS = PartitionRef.of("raw", "customers", "2026-11-20")
QUARANTINE = PartitionRef.of("quarantine", "transactions", "2026-11-20")
PREDICTIONS = PartitionRef.of("predictions", "fraud_xgb", "2026-11-21")
AUDIT = Actor(dag_id="audit_bias", task_id="metrics", run_id="scheduled__2026-11-21")
TRAIN = {"dag_id": "train_model", "task_id": "training_set", "run_id": "manual__2026-11-21"}
AT = dt.datetime(2026, 11, 21, 3, 4, 5, 678901, tzinfo=dt.UTC)
LOG = "_meta/access_log"


def commit_customers(lake: Lake) -> None:
    table = pa.table({"customer_id": ["C1", "C2", "C3"], "gender": ["F", "M", "X"],
                      "age_band": ["18-24", "25-34", "65+"], "signup_date": ["2026-01-01"] * 3})
    with lake.writer(CUSTOMERS, run_id="ingest", schema=table.schema) as w:
        w.write(table.slice(0, 2), subdir="region=NL")
        w.write(table.slice(2), subdir="region=DE")


def commit_predictions(lake: Lake) -> None:
    table = pa.table({"event_id": ["E1", "E2"], "score": [0.1, 0.9]})
    with lake.writer(PREDICTIONS, run_id="score", schema=table.schema) as w:
        w.write(table)


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    lake = Lake(str(tmp_path / "lake"))
    commit_customers(lake)
    return lake


def log_objects(lake: Lake) -> list[str]:
    return [f.key for f in lake.list_files(LOG)]


def test_a_sensitive_read_appends_one_record_with_who_what_why_when(lake: Lake) -> None:
    table = read_sensitive(lake, CUSTOMERS, columns=["customer_id", "gender"], purpose="bias_audit", actor=AUDIT,
                           at=AT)
    assert sorted(table.column("gender").to_pylist()) == ["F", "M", "X"]
    assert table.column_names == ["customer_id", "gender"]
    [key] = log_objects(lake)
    assert key.startswith(f"{LOG}/dt=2026-11-21/030405678901-") and key.endswith(".jsonl")
    lines = lake.read_bytes(key).decode().splitlines()
    assert len(lines) == 1
    doc = json.loads(lines[0])
    assert len(doc.pop("id")) == 32
    assert doc == {
        "at": "2026-11-21T03:04:05.678901+00:00",
        "actor": {"dag_id": "audit_bias", "task_id": "metrics", "run_id": "scheduled__2026-11-21"},
        "purpose": "bias_audit",
        "uri": lake.uri("raw/customers/dt=2026-11-20"), "key": "raw/customers/dt=2026-11-20",
        "zone": "raw", "dataset": "customers", "dt": "2026-11-20",
        "columns": ["customer_id", "gender"], "sensitive_columns": ["gender"], "sensitive": True,
        "rows": 3, "filters": None, "via": "read_sensitive", "note": "", "extra": {},
    }


def test_reads_are_append_only_two_reads_two_objects_nothing_rewritten(lake: Lake) -> None:
    read_sensitive(lake, CUSTOMERS, columns=["age_band"], purpose="bias_audit", actor=AUDIT, at=AT)
    [first] = lake.list_files(LOG)
    first_bytes = lake.read_bytes(first.key)
    filtered = read_sensitive(lake, lake.uri(CUSTOMERS.key), columns=["customer_id", "age_band"],
                              purpose="model_training", actor=TRAIN, at=AT,
                              filters=pds.field("region") == "NL")
    assert filtered.num_rows == 2
    stored = lake.list_files(LOG)
    assert len(stored) == 2 and first in stored  # same key, size and mtime: untouched
    assert lake.read_bytes(first.key) == first_bytes
    second = next(f for f in stored if f.key != first.key)
    doc = json.loads(lake.read_bytes(second.key))
    assert (doc["purpose"], doc["rows"], doc["actor"]["dag_id"]) == ("model_training", 2, "train_model")
    assert doc["filters"] == '(region == "NL")'
    assert doc["sensitive_columns"] == ["age_band"]


def test_append_only_on_an_s3_lake(s3_lake: Lake) -> None:
    commit_customers(s3_lake)
    for _ in range(2):
        read_sensitive(s3_lake, CUSTOMERS, columns=["gender"], purpose="debugging", actor="oncall:alice", at=AT)
    records = read_access_log(s3_lake, "2026-11-21", "2026-11-21")
    assert len(log_objects(s3_lake)) == 2 and len({r.id for r in records}) == 2
    assert [(r.actor, r.rows, r.uri) for r in records] == [({"name": "oncall:alice"}, 3,
                                                            s3_lake.uri(CUSTOMERS.key))] * 2


def test_unknown_or_missing_purpose_is_refused_and_nothing_is_logged(lake: Lake) -> None:
    with pytest.raises(UnknownPurpose, match=r"purpose 'curiosity' is not a declared purpose.*bias_audit"):
        read_sensitive(lake, CUSTOMERS, columns=["gender"], purpose="curiosity", actor=AUDIT)
    for purpose in ("", None):
        with pytest.raises(UnknownPurpose):
            read_sensitive(lake, CUSTOMERS, columns=["gender"], purpose=purpose, actor=AUDIT)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="purpose"):
        read_sensitive(lake, CUSTOMERS, columns=["gender"], actor=AUDIT)  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="actor"):
        read_sensitive(lake, CUSTOMERS, columns=["gender"], purpose="debugging", actor=" ")
    with pytest.raises(ValueError, match=r"lacks \['run_id'\]"):
        log_access(lake, CUSTOMERS, columns=["gender"], rows=1, purpose="debugging",
                   actor={"dag_id": "d", "task_id": "t"})
    assert log_objects(lake) == []
    assert {"bias_audit", "model_training", "scoring", "shadow_comparison", "quarantine_review", "debugging",
            "deletion_request"} <= set(PURPOSES)


def test_a_read_whose_record_cannot_be_written_fails(lake: Lake, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(key: str, data: bytes) -> None:
        raise PermissionError("read-only bucket")

    monkeypatch.setattr(lake, "write_bytes", refuse)
    with pytest.raises(AccessLogError, match="read of .*raw/customers/dt=2026-11-20 is refused"):
        read_sensitive(lake, CUSTOMERS, columns=["gender"], purpose="debugging", actor="oncall:alice")


def test_what_is_sensitive() -> None:
    policy = load_policy()
    assert policy.columns == frozenset({"gender", "age_band"})
    assert is_sensitive(QUARANTINE, ["reason_codes"])
    assert is_sensitive("predictions/fraud_xgb/dt=2026-11-21", ["score"])
    assert is_sensitive(CUSTOMERS, ["customer_id", "gender"])
    assert not is_sensitive(CUSTOMERS, ["customer_id", "region"])
    assert is_sensitive(CUSTOMERS)  # every column: its contract marks some
    assert not is_sensitive("raw/transactions/dt=2026-11-20", ["amount"])
    assert not is_sensitive("raw/transactions/dt=2026-11-20")
    assert is_sensitive("training/fraud_xgb/dt=2026-11-20", ["amount", "age_band"])  # travels by name
    assert is_sensitive("cold/quarantine/transactions/dt=2026-11-20/part-0.parquet", ["x"])


def test_log_access_and_report_counts_per_purpose_actor_and_dataset(lake: Lake) -> None:
    commit_predictions(lake)
    day2 = AT + dt.timedelta(days=1)
    read_sensitive(lake, CUSTOMERS, columns=["customer_id", "gender", "age_band"], purpose="bias_audit",
                   actor=AUDIT, at=AT)
    read_sensitive(lake, CUSTOMERS, columns=None, purpose="model_training", actor=TRAIN, at=AT)
    read_sensitive(lake, PREDICTIONS, columns=["score"], purpose="shadow_comparison",
                   actor={"dag_id": "score_batch", "task_id": "shadow", "run_id": "r1"}, at=day2)
    log_access(lake, lake.uri("quarantine/transactions/dt=2026-11-20"), columns=["record", "reason_codes"],
               rows=7, purpose="quarantine_review", actor="oncall:alice", via="duckdb", at=day2)
    read_sensitive(lake, CUSTOMERS, columns=["region"], purpose="debugging", actor="oncall:alice",
                   at=AT + dt.timedelta(days=5))  # outside the range below
    report = access_report(lake, "2026-11-21", "2026-11-22")
    assert (report["from"], report["to"], report["accesses"], report["sensitive_accesses"], report["rows"]) == \
        ("2026-11-21", "2026-11-22", 4, 4, 3 + 3 + 2 + 7)
    assert report["by_purpose"] == {
        "bias_audit": {"accesses": 1, "rows": 3, "columns": ["age_band", "customer_id", "gender"],
                       "sensitive_columns": ["age_band", "gender"], "actors": {"audit_bias": 1}},
        "model_training": {"accesses": 1, "rows": 3,
                           "columns": ["age_band", "customer_id", "gender", "region", "signup_date"],
                           "sensitive_columns": ["age_band", "gender"], "actors": {"train_model": 1}},
        "quarantine_review": {"accesses": 1, "rows": 7, "columns": ["reason_codes", "record"],
                              "sensitive_columns": ["reason_codes", "record"], "actors": {"oncall:alice": 1}},
        "shadow_comparison": {"accesses": 1, "rows": 2, "columns": ["score"], "sensitive_columns": ["score"],
                              "actors": {"score_batch": 1}},
    }
    assert {name: g["accesses"] for name, g in report["by_actor"].items()} == {
        "audit_bias": 1, "oncall:alice": 1, "score_batch": 1, "train_model": 1}
    assert report["by_actor"]["train_model"]["purposes"] == {"model_training": 1}
    assert report["by_dataset"]["raw/customers"] == {
        "accesses": 2, "rows": 6, "columns": ["age_band", "customer_id", "gender", "region", "signup_date"],
        "sensitive_columns": ["age_band", "gender"], "purposes": {"bias_audit": 1, "model_training": 1}}
    assert sorted(report["by_dataset"]) == ["predictions/fraud_xgb", "quarantine/transactions", "raw/customers"]
    assert report["unreadable_records"] == 0
    assert access_report(lake, "2026-11-26", "2026-11-26")["by_purpose"]["debugging"]["sensitive_columns"] == []


def test_report_skips_unreadable_lines_and_the_cli_prints_it(lake: Lake, capsys: pytest.CaptureFixture[str]) -> None:
    read_sensitive(lake, CUSTOMERS, columns=["gender"], purpose="bias_audit", actor=AUDIT, at=AT)
    lake.write_bytes(f"{LOG}/dt=2026-11-21/zzz-broken.jsonl", b"{not json\n")
    assert access_report(lake, "2026-11-21", "2026-11-21")["unreadable_records"] == 1

    from mlscale.airflow.cli import main

    assert main(["access-report", "--from", "2026-11-20", "--to", "2026-11-21", "--json", "--lake", lake.root]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert (doc["accesses"], doc["by_purpose"]["bias_audit"]["accesses"]) == (1, 1)
    assert main(["access-report", "--from", "2026-11-21", "--to", "2026-11-21", "--records", "--lake", lake.root]) == 0
    out = capsys.readouterr().out
    assert "1 accesses (1 to sensitive data), 3 rows" in out
    assert "  bias_audit                       1 accesses            3 rows   sensitive columns: gender" in out
    assert "audit_bias.metrics (scheduled__2026-11-21)  bias_audit" in out
