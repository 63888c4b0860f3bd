"""Per-source formatting of transaction records (the contract with the ingestion code).

Three third-party sources deliver the same canonical fields in different shapes:

* ``acquirer_a`` -- CSV, ``,``-delimited, header :data:`HEADER_A`, ``event_ts`` ISO-8601 UTC with
  milliseconds and ``Z``, amount with a decimal dot. Part ``0002`` is gzip-compressed.
* ``acquirer_b`` -- CSV, ``;``-delimited, header :data:`HEADER_B`, ``ts_epoch_ms`` integer epoch
  milliseconds (UTC), amount with a decimal comma (values >= 1000 sometimes with a ``.`` thousands
  separator, e.g. ``1.234,56``).
* ``wallet_c`` -- JSON lines with keys :data:`WALLET_KEYS`; ``occurred_at`` ISO-8601 with
  milliseconds and a non-UTC offset (``+01:00``, ``+02:00``, ``-05:00`` or ``+05:30``; same instant
  as the UTC time); ``amount`` a JSON number; all other values JSON strings.

Formatting is a pure function of the record: a re-delivered record renders identically in the same
format, and parses to the same values in any format. All string building is vectorised over object
arrays (no Python loop per row).
"""

from __future__ import annotations

import gzip
import logging
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from mlscale.synthetic.entities import (
    ALL_CATEGORIES,
    CHANNELS,
    CURRENCIES,
    REGIONS,
    Customers,
    Merchants,
    zero_pad,
)
from mlscale.synthetic.world import DAY_MS, Transactions

logger = logging.getLogger(__name__)

CANONICAL_FIELDS: tuple[str, ...] = (
    "event_id", "event_ts", "customer_id", "merchant_id", "merchant_category", "amount",
    "currency", "channel", "region", "card_number", "email", "ip_address",
)
B_FIELDS: tuple[str, ...] = (
    "txn_id", "ts_epoch_ms", "client_id", "merchant", "category", "amount",
    "currency", "channel", "region", "pan", "email", "ip",
)
WALLET_KEYS: tuple[str, ...] = (
    "id", "occurred_at", "customer", "merchant", "merchant_category", "amount",
    "currency", "channel", "region", "card_number", "email", "ip_address",
)
HEADER_A = ",".join(CANONICAL_FIELDS)
HEADER_B = ";".join(B_FIELDS)
#: Header of the schema-drifted ``acquirer_a__0003.csv`` file: ``amount`` renamed.
HEADER_SCHEMA_MISMATCH = HEADER_A.replace(",amount,", ",txn_amount,")
WALLET_OFFSETS_MIN: tuple[int, ...] = (60, 120, -300, 330)
WALLET_OFFSET_LABELS: tuple[str, ...] = ("+01:00", "+02:00", "-05:00", "+05:30")
_OFFSET_BUCKETS = np.array([0] * 6 + [1] * 2 + [2, 3])  # ~60 % / 20 % / 10 % / 10 %
THOUSANDS_ONE_IN = 2  # acquirer_b: 1 in N amounts >= 1000 written with a thousands separator
GZIP_LEVEL = 1


@dataclass(frozen=True)
class FileSlot:
    """One transaction file of a day: ``{source}__{part}.{ext}``."""

    source: str
    part: str
    ext: str

    @property
    def fmt(self) -> str:
        return {"acquirer_a": "a", "acquirer_b": "b", "wallet_c": "c"}[self.source]

    @property
    def gz(self) -> bool:
        return self.ext.endswith(".gz")

    def key(self, dt_iso: str) -> str:
        return f"landing/transactions/dt={dt_iso}/{self.source}__{self.part}.{self.ext}"


SLOTS: tuple[FileSlot, ...] = (
    FileSlot("acquirer_a", "0001", "csv"),
    FileSlot("acquirer_a", "0002", "csv.gz"),
    FileSlot("acquirer_b", "0001", "csv"),
    FileSlot("wallet_c", "0001", "jsonl"),
    FileSlot("wallet_c", "0002", "jsonl"),
)
SCHEMA_SLOT = FileSlot("acquirer_a", "0003", "csv")


def _obj(values: list[str] | tuple[str, ...]) -> np.ndarray:
    return np.array(values, dtype=object)


@lru_cache(maxsize=1)
def _tables() -> dict[str, np.ndarray]:
    sec = np.arange(86_400)
    two = zero_pad(np.arange(100), 2)
    three = zero_pad(np.arange(1000), 3)
    octet = np.arange(256).astype(str).astype(object)
    ms_off = ("." + np.repeat(three, len(WALLET_OFFSET_LABELS))
              + np.tile(_obj(WALLET_OFFSET_LABELS), 1000))
    return {
        "hms": two[sec // 3600] + ":" + two[(sec // 60) % 60] + ":" + two[sec % 60],
        "ms_z": "." + three + "Z",
        "ms_off": ms_off,
        "ints": np.arange(100_000).astype(str).astype(object),
        "three": three,
        "cents_dot": "." + two,
        "cents_comma": "," + two,
        "octet": octet,
        "octet_dot": octet + ".",
        "categories": _obj(ALL_CATEGORIES),
        "currencies": _obj(CURRENCIES),
        "channels": _obj(CHANNELS),
        "regions": _obj(REGIONS),
    }


def record_hash(tx: Transactions) -> np.ndarray:
    """Deterministic per-record 32-bit hash (drives format choices that must not need an rng)."""
    h = tx.counter.astype(np.uint64) * np.uint64(0x9E3779B1) ^ tx.id_day.astype(np.uint64) * np.uint64(0x85EBCA77)
    return ((h >> np.uint64(13)) & np.uint64(0xFFFFFFFF)).astype(np.int64)


def iso_timestamps(ts_ms: np.ndarray, offset_idx: np.ndarray | None = None, prefix: str = "",
                   suffix: str = "") -> np.ndarray:
    """ISO-8601 strings with milliseconds: ``...Z`` (UTC) or local time with the given offsets.

    ``prefix`` / ``suffix`` are glued on through the lookup tables (no extra pass over the rows).
    """
    if len(ts_ms) == 0:
        return np.zeros(0, dtype=object)
    t = _tables()
    local = ts_ms if offset_idx is None else ts_ms + np.array(WALLET_OFFSETS_MIN)[offset_idx] * 60_000
    days = local // DAY_MS
    tod = local - days * DAY_MS
    d0 = int(days.min())
    dates = np.datetime_as_string(np.arange(d0, int(days.max()) + 1).astype("datetime64[D]")).astype(object)
    dates = prefix + dates + "T"
    milli = tod % 1000
    if offset_idx is None:
        tail = (t["ms_z"] + suffix)[milli]
    else:
        tail = (t["ms_off"] + suffix)[milli * len(WALLET_OFFSETS_MIN) + offset_idx]
    return dates[days - d0] + t["hms"][tod // 1000] + tail


def amount_strings(cents: np.ndarray, comma: bool, thousands: np.ndarray | None = None,
                   suffix: str = "") -> np.ndarray:
    """``12.34`` (or ``12,34``); rows flagged in ``thousands`` (>= 1000 only) as ``1.234,56``."""
    t = _tables()
    ip, cc = cents // 100, cents % 100
    cents_tbl = t["cents_comma" if comma else "cents_dot"] + suffix
    out = t["ints"][ip] + cents_tbl[cc]
    if thousands is not None:
        sel = np.flatnonzero(thousands & (ip >= 1000))
        if len(sel):
            k = ip[sel]
            out[sel] = t["ints"][k // 1000] + "." + t["three"][k % 1000] + cents_tbl[cc[sel]]
    return out


def ip_strings(ip: np.ndarray, suffix: str = "") -> np.ndarray:
    t = _tables()
    ip = ip.astype(np.int64)
    return (t["octet_dot"][ip >> 24] + t["octet_dot"][(ip >> 16) & 255]
            + t["octet_dot"][(ip >> 8) & 255] + (t["octet"] + suffix)[ip & 255])


def event_ids(id_day: np.ndarray, counter: np.ndarray, prefix: str = "") -> np.ndarray:
    """``T{YYYYMMDD}-{counter:08d}`` where the date is the event's first delivery day."""
    if len(counter) == 0:
        return np.zeros(0, dtype=object)
    d0 = int(id_day.min())
    days = np.arange(d0, int(id_day.max()) + 1).astype("datetime64[D]")
    table = prefix + "T" + np.strings.replace(np.datetime_as_string(days), "-", "").astype(object) + "-"
    return table[id_day - d0] + zero_pad(counter, 8)


def _wallet_offsets(tx: Transactions) -> np.ndarray:
    return _OFFSET_BUCKETS[record_hash(tx) % len(_OFFSET_BUCKETS)]


def _thousands(tx: Transactions) -> np.ndarray:
    return (record_hash(tx) % THOUSANDS_ONE_IN) == 0


def canonical_strings(tx: Transactions, customers: Customers, merchants: Merchants, fmt: str,
                      ) -> dict[str, np.ndarray]:
    """Field values (object arrays, keyed by canonical field name) as source ``fmt`` writes them.

    Values are raw: JSON quoting is added by :func:`render_lines`, so overrides stay simple.
    """
    t = _tables()
    if fmt == "a":
        ts, amount = iso_timestamps(tx.ts_ms), amount_strings(tx.amount_cents, comma=False)
    elif fmt == "b":
        ts = tx.ts_ms.astype(str).astype(object)
        amount = amount_strings(tx.amount_cents, comma=True, thousands=_thousands(tx))
    elif fmt == "c":
        ts = iso_timestamps(tx.ts_ms, _wallet_offsets(tx))
        amount = amount_strings(tx.amount_cents, comma=False)
    else:
        raise ValueError(f"unknown source format {fmt!r}")
    return {
        "event_id": event_ids(tx.id_day, tx.counter),
        "event_ts": ts,
        "customer_id": customers.customer_id[tx.customer],
        "merchant_id": merchants.merchant_id[tx.merchant],
        "merchant_category": t["categories"][tx.category],
        "amount": amount,
        "currency": t["currencies"][tx.currency],
        "channel": t["channels"][tx.channel],
        "region": t["regions"][tx.region],
        "card_number": customers.card_number[tx.customer],
        "email": customers.email[tx.customer],
        "ip_address": ip_strings(tx.ip),
    }


@lru_cache(maxsize=4)
def literals(fmt: str) -> tuple[str, ...]:
    """The 13 literal pieces around the 12 field values of a line in source ``fmt``."""
    if fmt in ("a", "b"):
        sep = "," if fmt == "a" else ";"
        return ("",) + (sep,) * 11 + ("",)
    if fmt != "c":
        raise ValueError(f"unknown source format {fmt!r}")
    quote = ['"' if k != "amount" else "" for k in WALLET_KEYS]
    out = ['{"' + WALLET_KEYS[0] + '":' + quote[0]]
    out += [f'{quote[i - 1]},"{WALLET_KEYS[i]}":{quote[i]}' for i in range(1, len(WALLET_KEYS))]
    return (*out, quote[-1] + "}")


def render_lines(fields: dict[str, np.ndarray], fmt: str) -> np.ndarray:
    """One line (object string, no newline) per record from (possibly corrupted) field strings."""
    lit = literals(fmt)
    cols = [fields[name] for name in CANONICAL_FIELDS]
    if not len(cols[0]):
        return np.zeros(0, dtype=object)
    out = lit[0] + cols[0] if lit[0] else cols[0]
    for i in range(1, len(cols)):
        out = out + lit[i] + cols[i]
    return out + lit[-1] if lit[-1] else out


def render_records(tx: Transactions, customers: Customers, merchants: Merchants, fmt: str) -> np.ndarray:
    """Fast path of ``render_lines(canonical_strings(...))`` for clean records (identical output).

    Literals and per-entity field groups are pre-joined in small lookup tables, so a line costs
    ~14 vectorised concatenations instead of ~30.
    """
    if len(tx) == 0:
        return np.zeros(0, dtype=object)
    t, lit = _tables(), literals(fmt)
    if fmt == "a":
        ts = iso_timestamps(tx.ts_ms, prefix=lit[1], suffix=lit[2])
    elif fmt == "b":
        ts = lit[1] + tx.ts_ms.astype(str).astype(object) + lit[2]
    else:
        ts = iso_timestamps(tx.ts_ms, _wallet_offsets(tx), prefix=lit[1], suffix=lit[2])
    merch_cat = ((merchants.merchant_id + lit[4])[:, None] + (t["categories"] + lit[5])[None, :]).ravel()
    enums = ((t["currencies"] + lit[7])[:, None, None] + (t["channels"] + lit[8])[None, :, None]
             + (t["regions"] + lit[9])[None, None, :]).ravel()
    card_email = customers.card_number + lit[10] + customers.email + lit[11]
    amount = amount_strings(tx.amount_cents, comma=fmt == "b", thousands=_thousands(tx) if fmt == "b" else None,
                            suffix=lit[6])
    n_cat, n_ch, n_reg = len(t["categories"]), len(t["channels"]), len(t["regions"])
    out = event_ids(tx.id_day, tx.counter, prefix=lit[0]) + ts
    out = out + (customers.customer_id + lit[3])[tx.customer]
    out = out + merch_cat[tx.merchant.astype(np.int64) * n_cat + tx.category]
    out = out + amount
    out = out + enums[(tx.currency.astype(np.int64) * n_ch + tx.channel) * n_reg + tx.region]
    out = out + card_email[tx.customer]
    return out + ip_strings(tx.ip, suffix=lit[12])


def header_for(slot: FileSlot) -> str | None:
    if slot == SCHEMA_SLOT:
        return HEADER_SCHEMA_MISMATCH
    return {"a": HEADER_A, "b": HEADER_B, "c": None}[slot.fmt]


def encode_file(lines: np.ndarray, header: str | None, gz: bool = False) -> bytes:
    """File bytes: optional header, one record per ``\\n``-terminated line, UTF-8.

    Lone surrogates (``\\udcff``) become the raw invalid bytes (``surrogateescape``), which is how
    encoding faults are injected. Gzip output is deterministic (``mtime=0``).
    """
    parts = ([header] if header is not None else []) + lines.tolist()
    text = "\n".join(parts) + "\n" if parts else ""
    data = text.encode("utf-8", "surrogateescape")
    return gzip.compress(data, compresslevel=GZIP_LEVEL, mtime=0) if gz else data
