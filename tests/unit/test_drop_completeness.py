"""A day's drop is complete when each source says so: a marker, its own manifest, a file count or a quiet period."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from pathlib import Path

import pytest
from mlscale.contracts import ContractError, load_contract
from mlscale.ingest.completeness import drop_is_complete, landing_drop_status, late_files
from mlscale.lake import Lake
from mlscale.layout import config_dir

DAY = dt.date(2026, 11, 1)
DROP = f"landing/transactions/dt={DAY}"
NOW = dt.datetime(2026, 11, 2, 6, tzinfo=dt.UTC)


def contract_with(tmp_path: Path, signals: dict[str, str]):
    """The transactions contract with ``complete_when`` added to the named sources."""
    text = (config_dir("contracts") / "transactions.yaml").read_text()
    for source, signal in signals.items():
        text = text.replace(f"  {source}:\n", f"  {source}:\n    complete_when: {signal}\n", 1)
    path = tmp_path / "transactions.yaml"
    path.write_text(text)
    return load_contract(path)


def by_source(lake: Lake, contract) -> dict[str, object]:
    return {s.source: s for s in landing_drop_status(lake, contract, DAY, now=NOW)}


def test_each_source_is_waited_for_by_its_own_signal(tmp_path) -> None:
    contract = contract_with(tmp_path, {"acquirer_a": "{marker: _SUCCESS_acquirer_a}",
                                        "acquirer_b": "{manifest: _acquirer_b_manifest.json}",
                                        "wallet_c": "{files: 2}"})
    lake = Lake(str(tmp_path / "lake"))
    lake.write_bytes(f"{DROP}/acquirer_a__0001.csv", b"x")
    body = b"event_id,event_ts\n" * 3
    lake.write_bytes(f"{DROP}/acquirer_b__0001.csv", body[:10])               # still being written
    lake.write_bytes(f"{DROP}/_acquirer_b_manifest.json", json.dumps({"files": [
        {"name": "acquirer_b__0001.csv", "size": len(body), "sha256": hashlib.sha256(body).hexdigest()},
        {"name": "acquirer_b__0002.csv", "size": 1}]}).encode())
    lake.write_bytes(f"{DROP}/wallet_c__0001.jsonl", b"{}")
    status = by_source(lake, contract)
    assert not drop_is_complete(list(status.values()))
    assert "marker _SUCCESS_acquirer_a not there yet" in status["acquirer_a"].detail
    assert "acquirer_b__0001.csv has 10 of 54 bytes" in status["acquirer_b"].detail
    assert "acquirer_b__0002.csv missing" in status["acquirer_b"].detail
    assert status["wallet_c"].detail == "1 of 2 files"
    lake.write_bytes(f"{DROP}/_SUCCESS_acquirer_a", b"")
    lake.write_bytes(f"{DROP}/acquirer_b__0001.csv", body[:-1] + b"X")      # right size, wrong content
    lake.write_bytes(f"{DROP}/acquirer_b__0002.csv", b"y")
    lake.write_bytes(f"{DROP}/wallet_c__0002.jsonl", b"{}")
    status = by_source(lake, contract)
    assert status["acquirer_a"].complete and status["wallet_c"].complete
    assert not status["acquirer_b"].complete and "checksum differs" in status["acquirer_b"].detail
    lake.write_bytes(f"{DROP}/acquirer_b__0001.csv", body)
    assert drop_is_complete(landing_drop_status(lake, contract, DAY, now=NOW))


def test_a_quiet_period_and_sources_without_a_signal(tmp_path) -> None:
    contract = contract_with(tmp_path, {"wallet_c": "{quiet_minutes: 30}"})
    lake = Lake(str(tmp_path / "lake"))
    assert not drop_is_complete(landing_drop_status(lake, contract, DAY, now=NOW))   # nothing at all
    lake.write_bytes(f"{DROP}/wallet_c__0001.jsonl", b"{}")
    stamp = (NOW - dt.timedelta(minutes=10)).timestamp()
    os.utime(lake.path(f"{DROP}/wallet_c__0001.jsonl"), (stamp, stamp))
    status = by_source(lake, contract)
    assert not status["wallet_c"].complete and "the newest 10 min old" in status["wallet_c"].detail
    assert status["acquirer_a"].complete is False and not status["acquirer_a"].declared  # sent nothing: not awaited
    stamp = (NOW - dt.timedelta(minutes=31)).timestamp()
    os.utime(lake.path(f"{DROP}/wallet_c__0001.jsonl"), (stamp, stamp))
    assert drop_is_complete(landing_drop_status(lake, contract, DAY, now=NOW))


@pytest.mark.parametrize("signal, message", [
    ("{marker: SUCCESS}", "must be a file name starting with '_'"),
    ("{marker: _SUCCESS, files: 2}", "needs exactly one of"),
    ("{files: 0}", "needs exactly one of"),
    ("{quiet_minutes: -5}", "quiet_minutes must be positive"),
    ("{markr: _SUCCESS}", "unknown key 'markr'"),
])
def test_an_unusable_completion_signal_is_refused(tmp_path, signal, message) -> None:
    with pytest.raises(ContractError, match=message):
        contract_with(tmp_path, {"acquirer_a": signal})


def test_late_files_are_those_the_days_run_did_not_read(tmp_path) -> None:
    lake = Lake(str(tmp_path / "lake"))
    for name in ("acquirer_a__0001.csv", "acquirer_a__0002.csv", "_SUCCESS"):
        lake.write_bytes(f"{DROP}/{name}", b"x")
    read = [lake.uri(f"{DROP}/acquirer_a__0001.csv")]
    assert late_files(lake, "transactions", DAY, read) == [f"{DROP}/acquirer_a__0002.csv"]


def test_late_files_become_one_rerun_per_dataset_and_day_that_flows_downstream() -> None:
    from types import SimpleNamespace

    from airflow.sdk.exceptions import AirflowSkipException
    from mlscale.airflow.tasks.late_files import flag_late_files, late_reruns

    found = {"dataset": "transactions", "dt": "2026-11-03", "run_id": "scheduled__x",
             "late_files": {"2026-11-02": [f"{DROP}/acquirer_a__0002.csv"], "2026-11-01": []}}
    events = {"asset": SimpleNamespace(extra={})}
    extra = flag_late_files(found, events, "asset")
    assert events["asset"].extra == extra and extra["days"] == ["2026-11-02"] and extra["found_on"] == "2026-11-03"
    with pytest.raises(AirflowSkipException, match="no file"):  # nothing late: no asset event at all
        flag_late_files({**found, "late_files": {}}, {"asset": SimpleNamespace(extra={})}, "asset")
    with pytest.raises(AirflowSkipException, match="dry run"):  # a dry run starts no rerun
        flag_late_files({**found, "dry_run": True}, {"asset": SimpleNamespace(extra={})}, "asset")
    batched = [SimpleNamespace(extra=extra), SimpleNamespace(extra={**extra, "days": ["2026-11-02", "2026-11-01"]}),
               SimpleNamespace(extra={"dataset": "labels", "days": ["2026-11-02"]}), SimpleNamespace(extra=None)]
    reruns = late_reruns(batched)
    assert [(r["trigger_dag_id"], r["conf"]) for r in reruns] == [
        ("ingest_labels", {"dt": "2026-11-02", "downstream": True}),
        ("ingest_transactions", {"dt": "2026-11-01", "downstream": True}),
        ("ingest_transactions", {"dt": "2026-11-02", "downstream": True})]
    assert len({r["trigger_run_id"] for r in reruns}) == 3 and late_reruns([]) == []
