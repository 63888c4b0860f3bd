"""Tests of the synthetic landing-drop generator, checked by independent parsing of its files."""

from __future__ import annotations

import csv
import datetime
import gzip
import io
import json
import re
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

import numpy as np
import pytest
from mlscale.synthetic import (
    FAULT_KINDS,
    WORLD_KEY,
    DayReport,
    LandingFile,
    clear_caches,
    generate_day,
    generate_world,
    report_key,
)
from mlscale.synthetic.entities import build_customers, build_merchants
from mlscale.synthetic.scenario import Effects, Scenario
from mlscale.synthetic.sources import canonical_strings, render_lines, render_records
from mlscale.synthetic.world import core_day

START = datetime.date(2026, 11, 1)
ROWS = 5000
DAYS = 7
SEED = 11
DAY = datetime.timedelta(days=1)

HEADER_A = "event_id,event_ts,customer_id,merchant_id,merchant_category,amount,currency,channel,region,card_number,email,ip_address"
HEADER_B = "txn_id;ts_epoch_ms;client_id;merchant;category;amount;currency;channel;region;pan;email;ip"
WALLET_KEYS = ["id", "occurred_at", "customer", "merchant", "merchant_category", "amount", "currency",
               "channel", "region", "card_number", "email", "ip_address"]
CURRENCIES = {"EUR", "GBP", "USD", "PLN", "SEK"}
CHANNELS = {"pos", "ecom", "contactless", "atm"}
ISO_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
ISO_OFF = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{3})?[+-]\d{2}:\d{2}$")
AMOUNT_DOT = re.compile(r"^-?\d+\.\d{2}$")
AMOUNT_COMMA = re.compile(r"^-?(\d{1,3}(\.\d{3})+|\d+),\d{2}$")


@dataclass(frozen=True)
class Rec:
    key: str
    code: str | None  # None = valid
    values: tuple | None  # normalised canonical values of a valid record


def _ms(d: datetime.datetime) -> int:
    return int(d.timestamp() * 1000 + (0.5 if d.timestamp() >= 0 else -0.5))


def _day_ms(dt: datetime.date) -> int:
    return _ms(datetime.datetime(dt.year, dt.month, dt.day, tzinfo=datetime.UTC))


def _classify(raw: dict, fmt: str, dt: datetime.date) -> tuple[str | None, tuple | None]:
    """Reason code of one parsed record (canonical names), independent of the generator."""
    eid, ts, amount = raw["event_id"], raw["event_ts"], raw["amount"]
    if any(v in ("", None) for v in (eid, raw["customer_id"], amount, ts)):
        return "missing_required", None
    if fmt == "c":
        if not isinstance(amount, int | float):
            return "type_error:amount", None
        cents = int(round(Decimal(str(amount)) * 100))
    else:
        if not (AMOUNT_COMMA if fmt == "b" else AMOUNT_DOT).match(amount):
            return "type_error:amount", None
        text = amount.replace(".", "").replace(",", ".") if fmt == "b" else amount
        cents = int(Decimal(text) * 100)
    try:
        if fmt == "b":
            ts_ms = int(ts)
        else:
            if not (ISO_OFF if fmt == "c" else ISO_Z).match(ts):
                raise ValueError(ts)
            ts_ms = _ms(datetime.datetime.fromisoformat(ts))
    except (ValueError, InvalidOperation):
        return "type_error:event_ts", None
    if cents <= 0 or cents > 100_000_000:
        return "out_of_range:amount", None
    if raw["currency"] not in CURRENCIES:
        return "unknown_enum:currency", None
    if raw["channel"] not in CHANNELS:
        return "unknown_enum:channel", None
    if ts_ms >= _day_ms(dt) + 2 * 86_400_000:
        return "future_timestamp", None
    if ts_ms < _day_ms(dt) - 3 * 86_400_000:
        return "late_beyond_window", None
    values = (eid, ts_ms, raw["customer_id"], raw["merchant_id"], raw["merchant_category"], cents,
              raw["currency"], raw["channel"], raw["region"], raw["card_number"], raw["email"], raw["ip_address"])
    return None, values


def parse_transactions(f: LandingFile, dt: datetime.date) -> list[Rec]:
    data = gzip.decompress(f.data) if f.key.endswith(".gz") else f.data
    lines = data.split(b"\n")
    assert lines[-1] == b"", "files end with a newline"
    lines = lines[:-1]
    source = f.key.rsplit("/", 1)[1].split("__")[0]
    fmt = {"acquirer_a": "a", "acquirer_b": "b", "wallet_c": "c"}[source]
    out: list[Rec] = []
    if fmt != "c":
        header = lines.pop(0).decode()
        if header != (HEADER_A if fmt == "a" else HEADER_B):
            return [Rec(f.key, "schema_mismatch", None) for _ in lines]
    for line in lines:
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            out.append(Rec(f.key, "encoding_error", None))
            continue
        if fmt == "c":
            try:
                obj = json.loads(text)
            except json.JSONDecodeError:
                out.append(Rec(f.key, "malformed_record", None))
                continue
            assert list(obj) == WALLET_KEYS
            raw = dict(zip(HEADER_A.split(","), obj.values(), strict=True))
        else:
            parts = next(csv.reader(io.StringIO(text), delimiter="," if fmt == "a" else ";"))
            if len(parts) != 12:
                out.append(Rec(f.key, "malformed_record", None))
                continue
            raw = dict(zip(HEADER_A.split(","), parts, strict=True))
            if fmt == "b" and raw["event_ts"] not in ("", "not-a-date"):
                assert re.fullmatch(r"\d{13}", raw["event_ts"]), raw["event_ts"]
        code, values = _classify(raw, fmt, dt)
        out.append(Rec(f.key, code, values))
    return out


def parse_csv(f: LandingFile) -> tuple[list[str], list[list[str]]]:
    rows = list(csv.reader(io.StringIO(f.data.decode("utf-8"))))
    return rows[0], rows[1:]


@pytest.fixture(scope="module")
def world() -> tuple[dict[str, bytes], list[DayReport]]:
    store: dict[str, bytes] = {}

    def write(key: str, data: bytes) -> None:
        assert key not in store
        store[key] = data

    reports = generate_world(write, start=START, days=DAYS, rows_per_day=ROWS, seed=SEED)
    return store, reports


def _day_files(store: dict[str, bytes], dt: datetime.date, dataset: str) -> list[LandingFile]:
    prefix = f"landing/{dataset}/dt={dt.isoformat()}/"
    return [LandingFile(k, v) for k, v in sorted(store.items()) if k.startswith(prefix)]


@pytest.fixture(scope="module")
def parsed(world: tuple[dict[str, bytes], list[DayReport]]) -> dict[str, list[Rec]]:
    store, _ = world
    out = {}
    for k in range(DAYS):
        dt = START + k * DAY
        out[dt.isoformat()] = [r for f in _day_files(store, dt, "transactions") for r in parse_transactions(f, dt)]
    return out


def test_world_writes_reports_and_metadata(world: tuple[dict[str, bytes], list[DayReport]]) -> None:
    store, reports = world
    assert json.loads(store[WORLD_KEY])["rows_per_day"] == ROWS
    assert [r.dt for r in reports] == [(START + k * DAY).isoformat() for k in range(DAYS)]
    for r in reports:
        assert json.loads(store[report_key(r.dt)]) == json.loads(json.dumps(r.as_dict()))
        for d in ("transactions", "customers", "labels"):
            total = r.valid_unique[d] + sum(r.faults[d].values()) + r.duplicates[d]
            assert r.rows_by_dataset[d] == total
        assert set(r.files) == {k for k in store if f"/dt={r.dt}/" in k and k.startswith("landing/")}


def test_determinism_and_day_independence(world: tuple[dict[str, bytes], list[DayReport]]) -> None:
    store, reports = world
    clear_caches()  # day 4 alone must not rely on cached earlier days
    files, report = generate_day(START + 4 * DAY, start=START, rows_per_day=ROWS, seed=SEED)
    expected = {k: v for k, v in store.items() if k.startswith("landing/") and "/dt=2026-11-05/" in k}
    assert {f.key: f.data for f in files} == expected
    assert report == reports[4]
    again, _ = generate_day(START + 4 * DAY, start=START, rows_per_day=ROWS, seed=SEED)
    assert [(f.key, f.data) for f in again] == [(f.key, f.data) for f in files]
    other, _ = generate_day(START + 4 * DAY, start=START, rows_per_day=ROWS, seed=SEED + 1)
    assert [f.key for f in other] == [f.key for f in files]
    assert all(a.data != b.data for a, b in zip(other, files, strict=True))


def test_file_record_counts(world: tuple[dict[str, bytes], list[DayReport]], parsed: dict[str, list[Rec]]) -> None:
    store, reports = world
    for r in reports:
        per_file = Counter(rec.key for rec in parsed[r.dt])
        for key, n in r.files.items():
            if "/transactions/" in key:
                assert per_file[key] == n, key
            else:
                assert len(parse_csv(LandingFile(key, store[key]))[1]) == n, key


def test_fault_duplicate_and_unique_counts(world: tuple[dict[str, bytes], list[DayReport]],
                                           parsed: dict[str, list[Rec]]) -> None:
    _, reports = world
    seen: dict[str, tuple] = {}
    for i, r in enumerate(reports):
        recs = parsed[r.dt]
        faults = Counter(rec.code for rec in recs if rec.code)
        assert dict(faults) == r.faults["transactions"]
        assert set(FAULT_KINDS) <= set(faults)
        assert ("schema_mismatch" in faults) == (i % 3 == 2)
        assert 0.003 < sum(faults[k] for k in FAULT_KINDS) / ROWS < 0.01
        dups = new = late = 0
        day_start = _day_ms(START + i * DAY)
        for rec in recs:
            if rec.code:
                continue
            eid = rec.values[0]
            if eid in seen:
                dups += 1
                assert seen[eid] == rec.values, "a re-delivery carries the same values"
            else:
                seen[eid] = rec.values
                new += 1
                late += rec.values[1] < day_start
        assert dups == r.duplicates["transactions"] and dups > 0
        assert new == r.valid_unique["transactions"] == ROWS
        assert late == r.late_events and 0.01 < late / ROWS < 0.03


def test_duplicates_go_to_other_files_and_later_days(parsed: dict[str, list[Rec]]) -> None:
    first_seen: dict[str, tuple[str, str]] = {}
    cross_day = 0
    for dt, recs in parsed.items():
        for rec in recs:
            if rec.code:
                continue
            eid = rec.values[0]
            if eid not in first_seen:
                first_seen[eid] = (dt, rec.key)
                continue
            day0, key0 = first_seen[eid]
            assert key0 != rec.key
            gap = (datetime.date.fromisoformat(dt) - datetime.date.fromisoformat(day0)).days
            assert 0 <= gap <= 2
            cross_day += gap > 0
    assert cross_day > 0


def test_source_formats(world: tuple[dict[str, bytes], list[DayReport]]) -> None:
    store, _ = world
    files = {f.key.rsplit("/", 1)[1]: f.data for f in _day_files(store, START + 2 * DAY, "transactions")}
    assert files["acquirer_a__0002.csv.gz"][:2] == b"\x1f\x8b"
    assert gzip.decompress(files["acquirer_a__0002.csv.gz"]).split(b"\n")[0].decode() == HEADER_A
    assert files["acquirer_a__0001.csv"].split(b"\n")[0].decode() == HEADER_A
    assert files["acquirer_a__0003.csv"].split(b"\n")[0].decode() != HEADER_A  # schema-drifted file
    lines_b = files["acquirer_b__0001.csv"].decode("utf-8", "replace").splitlines()
    assert lines_b[0] == HEADER_B
    amounts = [ln.split(";")[5] for ln in lines_b[1:] if ln.count(";") == 11]
    assert sum(bool(re.fullmatch(r"\d+,\d{2}", a)) for a in amounts) > 0.97 * len(amounts)
    wallet = [json.loads(ln) for ln in files["wallet_c__0001.jsonl"].decode().splitlines()
              if ln.endswith("}") and "not-a-date" not in ln]
    offsets = Counter(w["occurred_at"][-6:] for w in wallet if w["occurred_at"])
    assert "Z" not in "".join(offsets) and "+00:00" not in offsets and len(offsets) >= 3
    assert all(isinstance(w["amount"], float | int) for w in wallet if w["amount"] is not None)


def test_formats_agree_on_values() -> None:
    customers, merchants = build_customers(SEED, START, ROWS), build_merchants(SEED, ROWS)
    tx = core_day(SEED, START, 1, ROWS, Effects()).tx
    for fmt in "abc":
        fast = render_records(tx, customers, merchants, fmt)
        assert (fast == render_lines(canonical_strings(tx, customers, merchants, fmt), fmt)).all()


def test_customers_snapshot(world: tuple[dict[str, bytes], list[DayReport]]) -> None:
    store, reports = world
    sizes = []
    for k in range(DAYS):
        (f,) = _day_files(store, START + k * DAY, "customers")
        header, rows = parse_csv(f)
        assert ",".join(header) == "customer_id,name,email,phone,card_number,gender,age_band,region,signup_date"
        assert all(row[8] <= (START + k * DAY).isoformat() for row in rows)
        for row in rows[:200]:
            digits = [int(c) for c in row[4]][::-1]
            assert len(digits) == 16
            assert sum(d if i % 2 == 0 else (2 * d - 9 if d > 4 else 2 * d) for i, d in enumerate(digits)) % 10 == 0
        sizes.append(len(rows))
    assert sizes == sorted(sizes) and sizes[-1] > sizes[0]


def test_labels_each_event_once(world: tuple[dict[str, bytes], list[DayReport]], parsed: dict[str, list[Rec]]) -> None:
    store, reports = world
    labels: Counter[str] = Counter()
    for k, r in enumerate(reports):
        (f,) = _day_files(store, START + k * DAY, "labels")
        header, rows = parse_csv(f)
        assert header == ["event_id", "is_fraud", "reported_at"]
        maybe = [row for row in rows if row[1] == "maybe"]
        assert len(maybe) == r.faults["labels"].get("type_error:is_fraud", 0) == (3 if k % 4 == 3 else 0)
        valid = [row for row in rows if row[1] in ("0", "1")]
        assert len(valid) + len(maybe) == len(rows) and len(valid) == r.valid_unique["labels"]
        assert all(row[2].startswith(r.dt) and ISO_Z.match(row[2]) for row in rows)
        if k == 0:
            assert rows == []
        labels.update(row[0] for row in valid)
    assert max(labels.values()) == 1
    for d in (0, 1):  # fully labelled by the last day
        day_ids = {rec.values[0] for rec in parsed[(START + d * DAY).isoformat()]
                   if rec.code is None and rec.values[0].startswith(f"T{(START + d * DAY):%Y%m%d}")}
        assert len(day_ids) == ROWS and all(labels[e] == 1 for e in day_ids)
    assert all(e[1:9] <= f"{START + (DAYS - 2) * DAY:%Y%m%d}" for e in labels)


def test_fraud_rate_and_signal(world: tuple[dict[str, bytes], list[DayReport]], parsed: dict[str, list[Rec]]) -> None:
    store, reports = world
    label: dict[str, int] = {}
    for k in range(DAYS):
        _, rows = parse_csv(_day_files(store, START + k * DAY, "labels")[0])
        label.update({row[0]: int(row[1]) for row in rows if row[1] in ("0", "1")})
    events = {rec.values[0]: rec.values for recs in parsed.values() for rec in recs if rec.code is None}
    labelled = [(v[2], v[5], label[e]) for e, v in events.items() if e in label]
    assert len(labelled) > 10_000
    cust = np.array([c for c, _, _ in labelled])
    amount = np.array([a for _, a, _ in labelled], dtype=float)
    fraud = np.array([f for _, _, f in labelled], dtype=float)
    base = fraud.mean()
    assert 0.005 <= base <= 0.02
    assert 0.005 <= sum(r.fraud_events for r in reports) / (ROWS * DAYS) <= 0.02
    order = np.argsort(cust, kind="stable")
    uniq, start_idx = np.unique(cust[order], return_index=True)
    medians = np.array([np.median(part) for part in np.split(amount[order], start_idx[1:])])
    ratio = amount / medians[np.searchsorted(uniq, cust)]
    top = fraud[ratio >= np.quantile(ratio, 0.9)].mean()
    assert top > 2.5 * base


def test_drift_adds_crypto_and_raises_amounts() -> None:
    drift = START + 2 * DAY
    _, before = generate_day(START + DAY, start=START, rows_per_day=ROWS, seed=SEED, drift_from=drift)
    plain = core_day(SEED, START, 3, ROWS, Effects())
    drifted = core_day(SEED, START, 3, ROWS, Scenario.drift_from(2).effects(3))
    files, report = generate_day(START + 3 * DAY, start=START, rows_per_day=ROWS, seed=SEED, drift_from=drift)
    recs = [r for f in files if "/transactions/" in f.key for r in parse_transactions(f, START + 3 * DAY)]
    cats = Counter(r.values[4] for r in recs if r.code is None)
    assert 0.03 < cats["crypto"] / sum(cats.values()) < 0.08
    assert "crypto" not in report.faults["transactions"]
    assert np.median(drifted.tx.amount_cents) > 1.15 * np.median(plain.tx.amount_cents)
    assert (drifted.tx.region == 5).mean() > (plain.tx.region == 5).mean() + 0.1
    assert before.valid_unique["transactions"] == ROWS


def test_larger_day_runs_and_rejects_bad_arguments() -> None:
    files, report = generate_day(START + DAY, start=START, rows_per_day=20_000, seed=3)
    assert report.valid_unique["transactions"] == 20_000
    assert report.rows_by_dataset["transactions"] == sum(v for k, v in report.files.items() if "/transactions/" in k)
    assert len({f.key for f in files}) == len(files)
    with pytest.raises(ValueError):
        generate_day(START - DAY, start=START, rows_per_day=10, seed=1)
