"""Fault injection: malformed transaction records with a known, unambiguous reason code.

Each faulty record is built from an otherwise valid fresh record (its own event_id, never reused)
and receives exactly ONE fault, so it maps to exactly one reason code:

==========================  ==========================================================  ===========
code                        what the record looks like                                  sources
==========================  ==========================================================  ===========
``missing_required``        event_id, customer_id, amount or event_ts empty             a, a.gz, b, c
                            (JSON: ``""`` for strings, ``null`` for amount)
``type_error:amount``       amount ``abc`` / ``12.3.4x`` (JSON: a string)               all
``type_error:event_ts``     event_ts ``not-a-date``                                     all
``out_of_range:amount``     negative amount, or > 1,000,000                             all
``unknown_enum:currency``   currency ``XXX``                                            all
``unknown_enum:channel``    channel ``telepathy``                                       all
``malformed_record``        CSV row with 11 or 13 fields; JSON line truncated           a, a.gz, c
``encoding_error``          raw bytes ``\\xff\\xfe`` inside merchant_id                 a, b (plain CSV)
``future_timestamp``        event_ts 3..29 days after the delivery day                  all
``late_beyond_window``      event_ts 5..29 days before the delivery day                 all
==========================  ==========================================================  ===========

Plus ``schema_mismatch`` (a whole ``acquirer_a__0003.csv`` with a renamed ``amount`` column) and,
for labels, ``type_error:is_fraud`` (``is_fraud`` = ``maybe``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from mlscale.synthetic.world import DAY_MS, Transactions

logger = logging.getLogger(__name__)

FAULT_KINDS: tuple[str, ...] = (
    "missing_required", "type_error:amount", "type_error:event_ts", "out_of_range:amount",
    "unknown_enum:currency", "unknown_enum:channel", "malformed_record", "encoding_error",
    "future_timestamp", "late_beyond_window",
)
SCHEMA_MISMATCH = "schema_mismatch"
LABEL_TYPE_ERROR = "type_error:is_fraud"
FAULT_RATE = 0.005
SCHEMA_MISMATCH_ROWS = 50
LABEL_FAULT_ROWS = 3
_WEIGHTS = np.array([2.0, 1.5, 1.0, 1.5, 1.0, 1.0, 1.5, 1.0, 1.0, 1.0])
_ALL = (0, 1, 2, 3, 4)
#: kind -> eligible file slots (indices into sources.SLOTS)
ELIGIBLE_SLOTS: dict[str, tuple[int, ...]] = {k: _ALL for k in FAULT_KINDS} | {
    "malformed_record": (0, 1, 3, 4),
    "encoding_error": (0, 2),
}
_MISSING_FIELDS = ("event_id", "customer_id", "amount", "event_ts")
_BAD_AMOUNTS = ("abc", "12.3.4x")


@dataclass(frozen=True)
class FaultPlan:
    """Which fresh records become faulty: a kind, a file slot and a sub-variant per record."""

    kind: np.ndarray  # int8 index into FAULT_KINDS
    slot: np.ndarray  # int8 index into sources.SLOTS
    variant: np.ndarray  # int8 sub-variant (meaning depends on the kind)

    def __len__(self) -> int:
        return int(self.kind.shape[0])

    def counts(self) -> dict[str, int]:
        c = np.bincount(self.kind, minlength=len(FAULT_KINDS))
        return {k: int(c[i]) for i, k in enumerate(FAULT_KINDS) if c[i]}

    def take(self, idx: np.ndarray) -> FaultPlan:
        return FaultPlan(kind=self.kind[idx], slot=self.slot[idx], variant=self.variant[idx])


def plan_faults(rng: np.random.Generator, n_valid: int) -> FaultPlan:
    """About ``FAULT_RATE`` of ``n_valid`` records, every kind at least once."""
    k = len(FAULT_KINDS)
    total = max(k, round(FAULT_RATE * n_valid))
    per_kind = 1 + rng.multinomial(total - k, _WEIGHTS / _WEIGHTS.sum())
    kind = np.repeat(np.arange(k, dtype=np.int8), per_kind)
    slot = np.empty(total, dtype=np.int8)
    for i, name in enumerate(FAULT_KINDS):
        mask = kind == i
        slot[mask] = rng.choice(ELIGIBLE_SLOTS[name], size=int(mask.sum()))
    variant = rng.integers(0, 4, total).astype(np.int8)
    return FaultPlan(kind=kind, slot=slot, variant=variant)


def shift_timestamps(tx: Transactions, plan: FaultPlan, rng: np.random.Generator) -> Transactions:
    """Move ``future_timestamp`` / ``late_beyond_window`` records far outside the accepted window."""
    shift = np.zeros(len(tx), dtype=np.int64)
    fut = plan.kind == FAULT_KINDS.index("future_timestamp")
    late = plan.kind == FAULT_KINDS.index("late_beyond_window")
    shift[fut] = rng.integers(3, 30, int(fut.sum())) * DAY_MS
    shift[late] = -rng.integers(5, 30, int(late.sum())) * DAY_MS
    return tx.replace(ts_ms=tx.ts_ms + shift)


def _set(fields: dict[str, np.ndarray], name: str, mask: np.ndarray, value: np.ndarray | str) -> None:
    if mask.any():
        fields[name][mask] = value if isinstance(value, str) else value[mask]


def corrupt_fields(fields: dict[str, np.ndarray], plan: FaultPlan, fmt: str,
                   rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Field-level faults on the raw strings of ``plan``'s records (returns modified copies)."""
    out = {k: v.copy() for k, v in fields.items()}
    kind, var = plan.kind, plan.variant
    is_json = fmt == "c"
    missing = kind == FAULT_KINDS.index("missing_required")
    for i, name in enumerate(_MISSING_FIELDS):
        empty = "null" if (is_json and name == "amount") else ""
        _set(out, name, missing & (var == i), empty)
    bad_amount = kind == FAULT_KINDS.index("type_error:amount")
    for i, token in enumerate(_BAD_AMOUNTS):
        _set(out, "amount", bad_amount & (var % 2 == i), f'"{token}"' if is_json else token)
    _set(out, "event_ts", kind == FAULT_KINDS.index("type_error:event_ts"), "not-a-date")
    oor = kind == FAULT_KINDS.index("out_of_range:amount")
    _set(out, "amount", oor & (var % 2 == 0), "-" + out["amount"])
    absurd = rng.integers(1_000_001, 10_000_000, len(kind)).astype(str).astype(object)
    _set(out, "amount", oor & (var % 2 == 1), absurd + (",00" if fmt == "b" else ".00"))
    _set(out, "currency", kind == FAULT_KINDS.index("unknown_enum:currency"), "XXX")
    _set(out, "channel", kind == FAULT_KINDS.index("unknown_enum:channel"), "telepathy")
    enc = kind == FAULT_KINDS.index("encoding_error")
    if enc.any():
        m = out["merchant_id"]
        # lone surrogates are written as the raw bytes 0xff 0xfe (see sources.encode_file)
        m[enc] = np.array([s[:3] + "\udcff\udcfe" + s[3:] for s in m[enc]], dtype=object)
    return out


def corrupt_lines(lines: np.ndarray, plan: FaultPlan, fmt: str) -> np.ndarray:
    """Record-level faults (``malformed_record``) on rendered lines (returns a modified copy)."""
    out = lines.copy()
    sel = np.flatnonzero(plan.kind == FAULT_KINDS.index("malformed_record"))
    for i in sel:  # per fault record: few
        line = str(out[i])
        if fmt == "c":
            out[i] = line[: len(line) // 2]  # a JSON object prefix is never valid JSON
        elif plan.variant[i] % 2 == 0:
            out[i] = line.rsplit("," if fmt == "a" else ";", 1)[0]  # one field short
        else:
            out[i] = line + ("," if fmt == "a" else ";") + "extra"  # one field too many
    return out
