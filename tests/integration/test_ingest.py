"""Ingestion on a real Dask LocalCluster: generated faults, hostile files, reruns, dry runs, strict mode."""

from __future__ import annotations

import datetime as dt
import gzip
import json

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from distributed import Client, LocalCluster
from mlscale.ingest import ingest_partition, read_run_log
from mlscale.ingest.pseudonymise import MissingPiiKey
from mlscale.ingest.report import QuarantineRateExceeded
from mlscale.lake import Lake, PartitionRef
from mlscale.synthetic import generate_world

KEY = b"test-hmac-key"
START = dt.date(2026, 11, 1)
HEADER_A = "event_id,event_ts,customer_id,merchant_id,merchant_category,amount,currency,channel,region,card_number,email,ip_address"
PAN = "4111111111111111"


@pytest.fixture(scope="module")
def client():
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster, \
            Client(cluster) as c:
        yield c


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    lake = Lake(str(tmp_path_factory.mktemp("world") / "lake"))
    reports = generate_world(lake.write_bytes, start=START, days=3, rows_per_day=3000, seed=11)
    return lake, reports


def ingest(client, lake, day, contract="transactions", **kwargs):
    return ingest_partition(client=client, lake=lake, dt=str(day), run_id=kwargs.pop("run_id", "test_run"),
                            contract=contract, pii_key=kwargs.pop("pii_key", KEY), **kwargs)


def raw_rows(lake: Lake, dataset: str, day) -> list[dict]:
    table = lake.read_table(PartitionRef.of("raw", dataset, day))
    return sorted(table.to_pylist(), key=lambda r: json.dumps(r, sort_keys=True, default=str))


def test_generated_world_counts_match_injected_faults(client, world) -> None:
    lake, reports = world
    for report in reports:
        for dataset in ("transactions", "customers", "labels"):
            result = ingest(client, lake, report.dt, dataset)
            assert result.rows_in == result.rows_written + result.rows_quarantined + result.rows_duplicate
            assert result.rows_written == report.valid_unique[dataset], (dataset, report.dt)
            assert result.rows_duplicate == report.duplicates[dataset], (dataset, report.dt)
            assert result.quarantine_by_reason == report.faults[dataset], (dataset, report.dt)
            manifest = lake.require_manifest(PartitionRef.of("raw", dataset, report.dt))
            assert manifest.rows == result.rows_written
    log = read_run_log(lake, "transactions")
    assert len(log) == 3 and all(r["rows_in"] == r["rows_written"] + r["rows_quarantined"] + r["rows_duplicate"]
                                 for r in log)


def test_no_clear_pii_outside_landing(client, world) -> None:
    lake, reports = world
    for report in reports:
        ingest(client, lake, report.dt, "transactions")
        ingest(client, lake, report.dt, "customers")
    landing = lake.read_bytes(f"landing/customers/dt={START}/customers.csv").decode().splitlines()[1:50]
    secrets = set()
    for line in landing:
        fields = line.split(",")
        secrets.update([fields[1], fields[2], fields[3], fields[4]])  # name, email, phone, card
    secrets.discard("")
    leaked = []
    for stored in lake.list_files(""):
        if stored.key.startswith(("landing/", "_meta/generator")):
            continue
        text = lake.read_bytes(stored.key)
        if stored.key.endswith(".parquet"):
            import io

            import pyarrow.parquet as pq

            text = json.dumps(pq.read_table(io.BytesIO(text)).to_pylist(), default=str).encode()
        leaked += [(stored.key, s) for s in secrets if s.encode() in text]
    assert leaked == []
    raw = lake.read_table(PartitionRef.of("raw", "transactions", START))
    assert "card_number" not in raw.column_names and "email" not in raw.column_names
    assert pc.all(pc.equal(pc.utf8_length(raw.column("card_token")), 64)).as_py()
    assert pc.all(pc.match_substring_regex(raw.column("ip_prefix").drop_null(), r"(\.0/24|::/48)$")).as_py()


def test_rerun_replaces_day_exactly_and_leaves_no_files_behind(client, world) -> None:
    lake, reports = world
    for report in reports:
        ingest(client, lake, report.dt)
    before = [raw_rows(lake, "transactions", r.dt) for r in reports]
    ingest(client, lake, reports[1].dt, run_id="rerun")           # a rerun of a middle day
    for report in reports:                                        # and a second full backfill
        ingest(client, lake, report.dt, run_id="backfill_2")
    after = [raw_rows(lake, "transactions", r.dt) for r in reports]
    strip = [[{k: v for k, v in row.items() if k != "ingested_run"} for row in day] for day in before]
    assert strip == [[{k: v for k, v in row.items() if k != "ingested_run"} for row in day] for day in after]
    assert lake.orphans("raw") == [] and lake.orphans("quarantine") == []
    assert not any("_staging" in f.key for f in lake.list_files("raw"))


def test_dry_run_writes_nothing_but_reports(client, tmp_path) -> None:
    lake = Lake(str(tmp_path / "lake"))
    generate_world(lake.write_bytes, start=START, days=1, rows_per_day=500, seed=3)
    result = ingest(client, lake, START, dry_run=True)
    assert result.dry_run and result.rows_written == 0 and result.rows_valid > 0 and result.rows_quarantined > 0
    assert lake.list_files("raw") == [] and lake.list_files("quarantine") == []


def test_strict_mode_fails_above_threshold_without_committing_raw(client, tmp_path) -> None:
    lake = Lake(str(tmp_path / "lake"))
    body = "\n".join(f"E{i},not-a-date,C1,M1,grocery,1.00,EUR,pos,NL,{PAN},a@b.c,1.2.3.4" for i in range(10))
    lake.write_bytes(f"landing/transactions/dt={START}/acquirer_a__0001.csv", f"{HEADER_A}\n{body}\n".encode())
    with pytest.raises(QuarantineRateExceeded, match="100.00% of records quarantined"):
        ingest(client, lake, START, strict=True, max_quarantine_rate=0.05)
    assert lake.manifest(PartitionRef.of("raw", "transactions", START)) is None
    assert lake.require_manifest(PartitionRef.of("quarantine", "transactions", START)).rows == 10


def test_missing_pii_key_is_a_clear_error(client, tmp_path) -> None:
    with pytest.raises(MissingPiiKey, match="pii_hmac_default"):
        ingest(client, Lake(str(tmp_path)), START, pii_key=None)


def line(event_id: str, *, ts="2026-11-01T10:00:00Z", amount="12.50", category="grocery", currency="EUR",
         extra: str | None = None) -> str:
    row = f"{event_id},{ts},C1,M1,{category},{amount},{currency},pos,NL,{PAN},a@b.example,10.1.2.3"
    return row if extra is None else f"{row},{extra}"


def test_hostile_files_are_each_accounted_for(client, tmp_path) -> None:
    lake = Lake(str(tmp_path / "lake"))
    day = f"landing/transactions/dt={START}"
    files = {
        # BOM, CRLF, a quoted field with an embedded newline, thousands separators, a non-UTC offset
        "acquirer_a__0001.csv": ("\ufeff" + HEADER_A + "\r\n" + "\r\n".join([
            line("H1"),
            line("H2", category='"multi\nline"'),
            line("H3", amount='"1,234.56"'),
            line("H4", ts="2026-11-01T12:00:00+02:00"),
        ]) + "\r\n").encode(),
        # gzip, an unknown extra column, a 1 MB field, invalid UTF-8 bytes, a short row
        "acquirer_a__0002.csv.gz": gzip.compress((HEADER_A + ",loyalty_tier\n" + "\n".join([
            line("G1", extra="gold"),
            line("G2", category="x" * 1_000_000, extra="silver"),
            "G3,2026-11-01T10:00:00Z,C1,M\udcff1,grocery,1.00,EUR,pos,NL,4111111111111111,,,",
            "G4,2026-11-01T10:00:00Z,C1",
        ]) + "\n").encode("utf-8", "surrogateescape")),
        # optional column email absent from this source
        "acquirer_a__0003.csv": (HEADER_A.replace(",email", "") + "\n"
                                 + f"M1,2026-11-01T10:00:00Z,C1,M1,grocery,5.00,EUR,pos,NL,{PAN},10.0.0.1\n").encode(),
        # wrong header: required amount missing → every record schema_mismatch
        "acquirer_a__0004.csv": (HEADER_A.replace("amount", "amt") + "\n" + line("W1") + "\n" + line("W2") + "\n").encode(),
        "acquirer_a__0005.csv": b"",                                           # 0-byte file
        "acquirer_a__0006.csv": bytes(range(256)) * 4,                         # not text at all
        "partner_z__0001.csv": (HEADER_A + "\n" + line("Z1") + "\n").encode(),  # no source matches
        "wallet_c__0001.jsonl": b"\n".join([
            json.dumps({"id": "J1", "occurred_at": "2026-11-01T09:00:00-05:00", "customer": "C1", "merchant": "M1",
                        "amount": 3.5, "currency": "EUR", "channel": "ecom", "region": "DE",
                        "card_number": PAN}).encode(),
            b'{"id": "J2", "occurred_at": "2026-11-01T09:00:00Z", "customer": "C1"',  # truncated
            b'["not", "an", "object"]',
            json.dumps({"id": "H1", "occurred_at": "2026-11-01T10:00:00Z", "customer": "C1", "merchant": "M1",
                        "amount": 12.5, "currency": "EUR", "channel": "pos", "region": "NL",
                        "card_number": PAN}).encode(),                              # re-delivery of H1
        ]) + b"\n",
    }
    for name, data in files.items():
        lake.write_bytes(f"{day}/{name}", data)
    result = ingest(client, lake, START)
    assert result.rows_in == result.rows_written + result.rows_quarantined + result.rows_duplicate
    by_file = {f["file"].rsplit("/", 1)[1]: f for f in result.per_file}
    assert by_file["acquirer_a__0001.csv"]["valid"] == 4
    assert by_file["acquirer_a__0002.csv.gz"]["quarantined"] == {"encoding_error": 1, "malformed_record": 1}
    assert by_file["acquirer_a__0002.csv.gz"]["unknown_columns"] == ["loyalty_tier"]
    assert by_file["acquirer_a__0003.csv"]["missing_columns"] == ["email"] and by_file["acquirer_a__0003.csv"]["valid"] == 1
    assert by_file["acquirer_a__0004.csv"]["quarantined"] == {"schema_mismatch": 2}
    assert by_file["acquirer_a__0005.csv"]["quarantined"] == {"unreadable_file": 1}
    assert by_file["acquirer_a__0006.csv"]["quarantined"] == {"unreadable_file": 1}
    assert by_file["partner_z__0001.csv"]["quarantined"] == {"unreadable_file": 1}
    assert by_file["wallet_c__0001.jsonl"]["quarantined"] == {"malformed_record": 2}
    assert result.rows_duplicate == 1

    raw = {r["event_id"]: r for r in lake.read_table(PartitionRef.of("raw", "transactions", START)).to_pylist()}
    assert set(raw) == {"H1", "H2", "H3", "H4", "G1", "G2", "M1", "J1"}
    assert raw["H1"]["source"] == "acquirer_a"           # the first delivery wins, deterministically
    assert raw["H2"]["merchant_category"] == "multi\nline"
    assert raw["H3"]["amount"] == pytest.approx(1234.56)
    assert raw["H4"]["event_ts"] == dt.datetime(2026, 11, 1, 10, tzinfo=dt.UTC)
    assert raw["J1"]["event_ts"] == dt.datetime(2026, 11, 1, 14, tzinfo=dt.UTC)
    assert len(raw["G2"]["merchant_category"]) == 1_000_000
    assert raw["M1"]["email_token"] is None
    quarantine = lake.read_table(PartitionRef.of("quarantine", "transactions", START)).to_pylist()
    assert all(PAN not in (q["payload"] or "") for q in quarantine)
    assert {q["source_file"].rsplit("/", 1)[1] for q in quarantine} >= {"acquirer_a__0005.csv", "partner_z__0001.csv"}


def test_a_stray_control_byte_rejects_its_record_not_the_file(client, tmp_path, monkeypatch) -> None:
    """A NUL in one record of a large file, rows with too many or too few fields, across several parse blocks: each
    bad record is quarantined with its record number and byte offset; every other record is written."""
    import mlscale.ingest.readers as readers

    monkeypatch.setattr(readers, "CSV_BLOCK_BYTES", 4096)  # the file is parsed in about 25 blocks
    lake = Lake(str(tmp_path / "lake"))
    records = [line(f"R{i}") for i in range(1, 801)]
    records[99] = line("R100", category="groc\x00ery")               # a NUL inside a field
    records[399] = line("R400", extra="one,too,many")                 # too many delimiters (needs a number)
    records[400] = line("R401", extra="x")
    records[649] = "R650,2026-11-01T10:00:00Z,C1"                     # too few fields
    data = (HEADER_A + "\n" + "\n".join(records) + "\n").encode()
    name = "acquirer_a__0001.csv"
    lake.write_bytes(f"landing/transactions/dt={START}/{name}", data)
    jsonl = b"\n".join([
        json.dumps({"id": "J1", "occurred_at": "2026-11-01T09:00:00Z", "customer": "C1", "merchant": "M1",
                    "amount": 3.5, "currency": "EUR", "channel": "ecom", "region": "DE", "card_number": PAN}).encode(),
        b"",
        json.dumps({"id": "J2", "occurred_at": "2026-11-01T09:00:00Z", "customer": "C1", "merchant": "M\u0000",
                    "amount": 3.5, "currency": "EUR", "channel": "ecom", "region": "DE", "card_number": PAN}).encode(),
        b'{"id": "J3", "occurred_at": ',
    ]) + b"\n"
    lake.write_bytes(f"landing/transactions/dt={START}/wallet_c__0001.jsonl", jsonl)
    result = ingest(client, lake, START)
    by_file = {f["file"].rsplit("/", 1)[1]: f for f in result.per_file}
    assert by_file[name]["rows_in"] == 800 and by_file[name]["valid"] == 796
    assert by_file[name]["quarantined"] == {"control_bytes": 1, "malformed_record": 3}
    assert by_file["wallet_c__0001.jsonl"]["quarantined"] == {"control_bytes": 1, "malformed_record": 1}
    raw = set(lake.read_table(PartitionRef.of("raw", "transactions", START)).column("event_id").to_pylist())
    assert len(raw) == 797 and not raw & {"R100", "R400", "R401", "R650", "J2", "J3"}
    quarantine = lake.read_table(PartitionRef.of("quarantine", "transactions", START)).to_pylist()
    located = {(q["source_file"].rsplit("/", 1)[1], q["record"]): q for q in quarantine}
    assert set(located) == {(name, 100), (name, 400), (name, 401), (name, 650),
                            ("wallet_c__0001.jsonl", 3), ("wallet_c__0001.jsonl", 4)}
    assert located[(name, 100)]["reason"] == "control_bytes" and "merchant_category" in located[(name, 100)]["detail"]
    for (file, record), q in located.items():   # the offset lands on the record in the landing file
        content = data if file == name else jsonl
        expected = f"R{record}," if file == name else '{"id": "J' + str(record - 1)
        assert content[q["byte_offset"]:].startswith(expected.encode()), (file, record, q["byte_offset"])


def test_a_file_rejected_whole_counts_its_records(client, tmp_path) -> None:
    lake = Lake(str(tmp_path / "lake"))
    day = f"landing/transactions/dt={START}"
    lake.write_bytes(f"{day}/acquirer_a__0001.csv",   # a duplicate column in the header
                     ("event_id,event_id,x\n" + "\n".join(f"E{i},E{i},1" for i in range(7)) + "\n\n").encode())
    lake.write_bytes(f"{day}/partner_z__0001.csv", (HEADER_A + "\n" + line("Z1") + "\n" + line("Z2") + "\n").encode())
    lake.write_bytes(f"{day}/acquirer_a__0002.csv", b"PK\x03\x04" + bytes(range(256)))   # a ZIP archive
    result = ingest(client, lake, START)
    by_file = {f["file"].rsplit("/", 1)[1]: f for f in result.per_file}
    assert by_file["acquirer_a__0001.csv"]["quarantined"] == {"schema_mismatch": 7}
    assert by_file["partner_z__0001.csv"]["quarantined"] == {"unreadable_file": 2}
    assert by_file["acquirer_a__0002.csv"]["quarantined"] == {"unreadable_file": 1}
    assert result.rows_in == 10 == result.rows_quarantined
    quarantine = lake.read_table(PartitionRef.of("quarantine", "transactions", START)).to_pylist()
    assert len(quarantine) == 3 and {q["detail"].rsplit("(", 1)[1] for q in quarantine} == {"7 records)", "2 records)",
                                                                                          "1 record)"}


def test_a_file_landing_after_its_day_was_ingested_is_reported_and_taken_in_by_a_rerun(client, tmp_path) -> None:
    lake = Lake(str(tmp_path / "lake"))
    day, next_day = START, START + dt.timedelta(days=1)
    lake.write_bytes(f"landing/transactions/dt={day}/acquirer_a__0001.csv", (HEADER_A + "\n" + line("A1") + "\n").encode())
    ingest(client, lake, day)
    late = f"landing/transactions/dt={day}/acquirer_a__0002.csv"
    lake.write_bytes(late, (HEADER_A + "\n" + line("A2") + "\n").encode())   # lands after the day's run
    lake.write_bytes(f"landing/transactions/dt={next_day}/acquirer_a__0001.csv",
                     (HEADER_A + "\n" + line("B1", ts=f"{next_day}T10:00:00Z") + "\n").encode())
    result = ingest(client, lake, next_day)
    assert result.late_files == {day.isoformat(): [late]}
    assert [s["source"] for s in result.sources if s["files"]] == ["acquirer_a"]
    assert ingest(client, lake, day, run_id="rerun").rows_written == 2      # the rerun takes it in
    assert ingest(client, lake, next_day, run_id="next").late_files == {}


def test_late_and_future_events_relative_to_the_day(client, tmp_path) -> None:
    lake = Lake(str(tmp_path / "lake"))
    rows = [line("L1", ts="2026-10-29T00:00:01Z"),   # 3 days back: inside the lateness window
            line("L2", ts="2026-10-28T23:59:59Z"),   # beyond it
            line("F1", ts="2026-11-02T00:30:00Z"),   # within the 1 h skew after the day
            line("F2", ts="2026-11-03T00:00:00Z")]   # in the future
    lake.write_bytes(f"landing/transactions/dt={START}/acquirer_a__0001.csv", (HEADER_A + "\n" + "\n".join(rows) + "\n").encode())
    result = ingest(client, lake, START)
    assert result.quarantine_by_reason == {"late_beyond_window": 1, "future_timestamp": 1}
    assert sorted(lake.read_table(PartitionRef.of("raw", "transactions", START)).column("event_id").to_pylist()) == ["F1", "L1"]


def test_ingestion_on_s3_api(client, s3_lake) -> None:
    generate_world(s3_lake.write_bytes, start=START, days=1, rows_per_day=400, seed=5)
    result = ingest(client, s3_lake, START)
    assert result.rows_written == 400
    assert s3_lake.read_table(PartitionRef.of("raw", "transactions", START)).num_rows == 400
    assert s3_lake.orphans("raw") == []
    assert isinstance(s3_lake.read_table(PartitionRef.of("quarantine", "transactions", START)), pa.Table)


def test_dedupe_in_hash_buckets_gives_the_same_rows(client, world, monkeypatch, tmp_path) -> None:
    lake, reports = world
    for report in reports:
        ingest(client, lake, report.dt)
    expected = [raw_rows(lake, "transactions", r.dt) for r in reports]
    import mlscale.ingest.run as run

    monkeypatch.setattr(run, "DEDUPE_BUCKET_KEYS", 700)  # a 3,000-row day now dedupes in 5 buckets
    for report in reports:
        result = ingest(client, lake, report.dt, run_id="bucketed")
        assert result.rows_duplicate == report.duplicates["transactions"]
    strip = [[{k: v for k, v in row.items() if k != "ingested_run"} for row in day] for day in expected]
    got = [[{k: v for k, v in row.items() if k != "ingested_run"} for row in raw_rows(lake, "transactions", r.dt)]
           for r in reports]
    assert got == strip


PAYMENTS = """
dataset: payments
key: [event_id]
columns:
  event_id: {type: string, required: true}
  merchant: {type: string, required: true}
  amount:   {type: decimal, required: true}
  currency: {type: string, required: true, enum: [EUR, GBP], case: insensitive}
  note:     {type: string}
sources:
  legacy:
    files: "legacy__*"
    format: csv
    delimiter: ";"
    decimal: ","
    encoding: cp1252
    null_values: ["N/A", "NULL"]
  feed:
    files: "feed__*"
    format: jsonl
    encoding: cp1252
"""


def payments_contract(tmp_path) -> str:
    path = tmp_path / "payments.yaml"
    path.write_text(PAYMENTS)
    return str(path)


def payments_rows(lake: Lake) -> dict[str, dict]:
    return {r["event_id"]: r for r in lake.read_table(PartitionRef.of("raw", "payments", START)).to_pylist()}


@pytest.mark.parametrize("path", ["fast", "record_by_record"])
def test_a_cp1252_source_is_decoded_and_its_invalid_bytes_reject_their_record(client, tmp_path, monkeypatch,
                                                                              path) -> None:
    import mlscale.ingest.readers as readers

    if path == "record_by_record":  # the path taken when Arrow's parser gives up on a file
        def give_up(*args, **kwargs):
            raise readers.NeedsRobustRead("forced by the test")
        monkeypatch.setattr(readers, "_parse_csv_block", give_up)
    monkeypatch.setattr(readers, "CSV_BLOCK_BYTES", 32)  # blocks are transcoded one by one
    lake = Lake(str(tmp_path / "lake"))
    day = f"landing/payments/dt={START}"
    lake.write_bytes(f"{day}/legacy__0001.csv", "\r\n".join([
        "event_id;merchant;amount;currency;note",
        "P1;Café Crème;12,50;EUR;5€ off",
        "P2;Brasserie Élysée;3,00;GBP;",
    ]).encode("cp1252") + b"\r\nP3;Bad \x81 byte;1,00;EUR;\r\n"   # 0x81 is no character in cp1252
                     + "P4;Zoë;2,00;EUR;\r\n".encode("cp1252"))
    lake.write_bytes(f"{day}/feed__0001.jsonl", b"\n".join([
        json.dumps({"event_id": "J1", "merchant": "Crêperie", "amount": 4.5, "currency": "EUR",
                    "note": "€"}, ensure_ascii=False).encode("cp1252"),
        b'{"event_id": "J2", "merchant": "Bad \x81 byte", "amount": 1, "currency": "EUR"}',
    ]) + b"\n")
    result = ingest(client, lake, START, contract=payments_contract(tmp_path))
    by_file = {f["file"].rsplit("/", 1)[1]: f for f in result.per_file}
    assert by_file["legacy__0001.csv"]["quarantined"] == {"encoding_error": 1}
    assert by_file["feed__0001.jsonl"]["quarantined"] == {"encoding_error": 1}
    raw = payments_rows(lake)
    assert set(raw) == {"P1", "P2", "P4", "J1"}
    assert (raw["P1"]["merchant"], raw["P1"]["note"], raw["P1"]["amount"]) == ("Café Crème", "5€ off", 12.5)
    assert raw["P2"]["merchant"] == "Brasserie Élysée" and raw["P4"]["merchant"] == "Zoë"
    assert (raw["J1"]["merchant"], raw["J1"]["note"]) == ("Crêperie", "€")
    quarantine = {q["record"]: q for q in lake.read_table(PartitionRef.of("quarantine", "payments", START)).to_pylist()}
    assert quarantine[3]["reason"] == "encoding_error" and quarantine[3]["detail"] == "bytes invalid in cp1252"
    assert quarantine[2]["reason"] == "encoding_error"  # the JSON line


def test_null_values_and_case_insensitive_enums(client, tmp_path) -> None:
    lake = Lake(str(tmp_path / "lake"))
    lake.write_bytes(f"landing/payments/dt={START}/legacy__0001.csv", "\n".join([
        "event_id;merchant;amount;currency;note",
        "N1;M1;1,00;EUR;NULL",          # an optional column: null
        "N2;N/A;1,00;EUR;x",            # a required column: missing_required
        "N3;M3;1,00;EUR; N/A ",         # compared after trimming
        "N4;M4;1,00;EUR;n/a",           # markers are case-sensitive
        "C1;M5;1,00; eur ;",            # normalised to the declared spelling
        "C2;M6;1,00;Eur;",
        "C3;M7;1,00;gbp;",
        "C4;M8;1,00;usd;",              # still not one of the enum's values
        "C5;M9;1,00;EURO;",
    ]).encode() + b"\n")
    result = ingest(client, lake, START, contract=payments_contract(tmp_path))
    assert result.quarantine_by_reason == {"missing_required": 1, "unknown_enum:currency": 2}
    raw = payments_rows(lake)
    assert raw["N1"]["note"] is None and raw["N3"]["note"] is None and raw["N4"]["note"] == "n/a"
    assert [raw[k]["currency"] for k in ("C1", "C2", "C3")] == ["EUR", "EUR", "GBP"]
    assert set(raw) == {"N1", "N3", "N4", "C1", "C2", "C3"}
