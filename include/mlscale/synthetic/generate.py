"""Orchestration: one day's landing files (transactions, customers, labels) plus its report.

Guarantees
----------
* Deterministic: the output of :func:`generate_day` is a pure function of its arguments. Day
  ``start + k`` draws from ``default_rng([seed, k, stream])``; earlier days' core events needed for
  re-deliveries and labels are regenerated from their own seeds (cached), so a day generated alone
  is byte-identical to the same day inside a multi-day :func:`generate_world`.
* Record accounting per day: ``rows_by_dataset[d] == valid_unique[d] + sum(faults[d].values())
  + duplicates[d]`` for every dataset ``d``.
* Every valid transaction event (``valid_unique``) gets exactly one label, delivered 1..5 days after
  the day it was first delivered (in a scenario whose ``world:`` declares a tail, a share arrives later);
  a missed fraud the scenario corrects gets a second report (fraud) days after its first (legitimate) one;
  faulty and schema-mismatched records are never labelled.
"""

from __future__ import annotations

import datetime
import json
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np

from mlscale.layout import GENERATOR
from mlscale.synthetic.entities import REGIONS, build_customers, build_merchants, epoch_day
from mlscale.synthetic.faults import (
    LABEL_FAULT_ROWS,
    LABEL_TYPE_ERROR,
    SCHEMA_MISMATCH,
    SCHEMA_MISMATCH_ROWS,
    corrupt_fields,
    corrupt_lines,
    plan_faults,
    shift_timestamps,
)
from mlscale.synthetic.scenario import Scenario
from mlscale.synthetic.sources import (
    SCHEMA_SLOT,
    SLOTS,
    canonical_strings,
    encode_file,
    event_ids,
    header_for,
    iso_timestamps,
    render_lines,
    render_records,
)
from mlscale.synthetic.world import DAY_MS, CoreDay, Transactions, core_day, sample_transactions

logger = logging.getLogger(__name__)

DATASETS: tuple[str, ...] = ("transactions", "customers", "labels")
DUP_SAME_DAY_RATE = 0.007
DUP_LATER_DAY_RATE = 0.0015  # per lag (1 and 2 days)
CUSTOMERS_HEADER = "customer_id,name,email,phone,card_number,gender,age_band,region,signup_date"
LABELS_HEADER = "event_id,is_fraud,reported_at"


@dataclass(frozen=True)
class LandingFile:
    """One file as a third party drops it; ``key`` is relative to the lake root."""

    key: str
    data: bytes


@dataclass(frozen=True)
class DayReport:
    """Ground truth of one generated day (what a correct ingestion must produce)."""

    dt: str
    files: dict[str, int]
    rows_by_dataset: dict[str, int]
    valid_unique: dict[str, int]
    faults: dict[str, dict[str, int]]
    duplicates: dict[str, int]
    late_events: int
    fraud_events: int

    def as_dict(self) -> dict:
        """JSON-serialisable plain dict (built-in ints and strings only)."""
        return asdict(self)


def _core(seed: int, start: datetime.date, index: int, rows_per_day: int, scenario: Scenario) -> CoreDay:
    return core_day(seed, start, index, rows_per_day, scenario.effects(index), scenario.world)


def _delivered(scenario: Scenario, index: int) -> np.ndarray:
    """Per transaction file slot: delivered on day ``index`` (an outage withholds the last slots)."""
    withheld = round(scenario.outage_share(index, "transactions") * len(SLOTS))
    return np.arange(len(SLOTS)) < len(SLOTS) - withheld


def _scenario(start: datetime.date, drift_from: datetime.date | None, scenario: Scenario | None) -> Scenario:
    if scenario is not None and drift_from is not None:
        raise ValueError("give a scenario or drift_from, not both (a scenario schedules its own drift)")
    return scenario or Scenario.drift_from(None if drift_from is None else (drift_from - start).days)


def _transactions(dt: datetime.date, index: int, rng: np.random.Generator, *, start: datetime.date,
                  rows_per_day: int, seed: int, scenario: Scenario,
                  ) -> tuple[list[LandingFile], dict[str, int], dict[str, int], int, int]:
    """Transaction files of the day -> (files, record counts per key, fault counts, duplicates, valid unique
    events delivered). An outage withholds the files of the last slots (and everything in them)."""
    customers, merchants = build_customers(seed, start, rows_per_day), build_merchants(seed, rows_per_day)
    core = _core(seed, start, index, rows_per_day, scenario)
    n = len(core.tx)  # the day's volume (rows_per_day in a flat world)
    parts, slots = [core.tx], [core.slot]
    same = rng.choice(n, size=round(DUP_SAME_DAY_RATE * n), replace=False)
    parts.append(core.tx.take(same))
    slots.append(((core.slot[same] + rng.integers(1, len(SLOTS), len(same))) % len(SLOTS)).astype(np.int8))
    for lag in (1, 2):
        if index - lag < 0:
            continue
        prev = _core(seed, start, index - lag, rows_per_day, scenario)
        # re-delivered: events delivered that day, inside the lateness window
        on_time = np.flatnonzero(~prev.late & _delivered(scenario, index - lag)[prev.slot])
        pick = rng.choice(on_time, size=min(len(on_time), round(DUP_LATER_DAY_RATE * n)), replace=False)
        parts.append(prev.tx.take(np.sort(pick)))
        slots.append(rng.integers(0, len(SLOTS), len(pick)).astype(np.int8))
    clean, clean_slot = Transactions.concat(parts), np.concatenate(slots)
    effects = scenario.effects(index)
    plan = plan_faults(rng, n)
    ftx, _, _ = sample_transactions(rng, len(plan), core.day, customers, merchants, effects, counter_start=n + 1)
    ftx = shift_timestamps(ftx, plan, rng)
    delivered = _delivered(scenario, index)
    withheld = int((~delivered).sum())
    sent = delivered[clean_slot]
    new = sent[:n].copy()  # today's events delivered in their own file or as a same-day copy in another
    new[same[sent[n:n + len(same)]]] = True
    valid_unique = int(new.sum())
    duplicates = int(sent.sum()) - valid_unique
    faults = plan.take(delivered[plan.slot]).counts()

    files: list[LandingFile] = []
    counts: dict[str, int] = {}
    dt_iso = dt.isoformat()
    for s, slot in enumerate(SLOTS):
        if not delivered[s]:
            continue
        lines = render_records(clean.take(clean_slot == s), customers, merchants, slot.fmt)
        fmask = plan.slot == s
        fplan = plan.take(fmask)
        fields = canonical_strings(ftx.take(fmask), customers, merchants, slot.fmt)
        bad = corrupt_lines(render_lines(corrupt_fields(fields, fplan, slot.fmt, rng), slot.fmt), fplan, slot.fmt)
        lines = np.concatenate([lines, bad])[rng.permutation(len(lines) + len(bad))]
        files.append(LandingFile(slot.key(dt_iso), encode_file(lines, header_for(slot), slot.gz)))
        counts[files[-1].key] = len(lines)
    if index % 3 == 2 and not withheld:
        stx, _, _ = sample_transactions(rng, SCHEMA_MISMATCH_ROWS, core.day, customers, merchants, effects,
                                        counter_start=n + len(plan) + 1)
        lines = render_records(stx, customers, merchants, "a")
        files.append(LandingFile(SCHEMA_SLOT.key(dt_iso), encode_file(lines, header_for(SCHEMA_SLOT))))
        counts[files[-1].key] = len(lines)
        faults[SCHEMA_MISMATCH] = len(lines)
    return files, counts, faults, duplicates, valid_unique


def _customers(dt: datetime.date, *, start: datetime.date, rows_per_day: int, seed: int) -> tuple[LandingFile, int]:
    """Full snapshot of the customers signed up on or before ``dt``."""
    c = build_customers(seed, start, rows_per_day)
    sel = np.flatnonzero(c.signup_day <= epoch_day(dt))
    signup = np.datetime_as_string(c.signup_day[sel].astype("datetime64[D]")).astype(object)
    cols = [c.customer_id[sel], c.name[sel], c.email[sel], c.phone[sel], c.card_number[sel], c.gender[sel],
            c.age_band[sel], np.array(REGIONS, dtype=object)[c.region[sel]], signup]
    lines = cols[0]
    for col in cols[1:]:
        lines = lines + "," + col
    key = f"landing/customers/dt={dt.isoformat()}/customers.csv"
    return LandingFile(key, encode_file(np.asarray(lines, dtype=object), CUSTOMERS_HEADER)), len(sel)


def reported_fraud(core: CoreDay, index: int, *, seed: int, start: datetime.date, rows_per_day: int,
                   scenario: Scenario) -> np.ndarray:
    """The labels the source reports for the events first delivered on day ``index``: the truth, plus, in a
    biased-labels episode, the false fraud reports against one group (own random stream, so nothing else moves)."""
    episode = scenario.biased_labels(index)
    if episode is None:
        return core.is_fraud
    customers = build_customers(seed, start, rows_per_day)
    values = customers.region if episode.attribute == "region" else getattr(customers, episode.attribute)
    group = REGIONS.index(episode.group) if episode.attribute == "region" else episode.group
    member = (values == group)[core.tx.customer]
    rng = np.random.default_rng([seed, index, 7])
    return core.is_fraud | (member & (rng.random(len(core.tx)) < episode.share))


def _labels(dt: datetime.date, index: int, rng: np.random.Generator, *, start: datetime.date,
            rows_per_day: int, seed: int, scenario: Scenario,
            ) -> tuple[LandingFile, int, dict[str, int]]:
    """Labels of the events first delivered ``k`` days ago whose label delay (plus a backlog's extra days) is
    ``k`` (a missed fraud first reported as legitimate), and the corrections due today."""
    ids, flags = [np.zeros(0, dtype=object)], [np.zeros(0, dtype=object)]
    for k in range(1, scenario.world.max_label_days() + scenario.max_extra_label_delay() + 1):
        if index - k < 0:
            break
        prev = _core(seed, start, index - k, rows_per_day, scenario)
        first = prev.label_delay + scenario.extra_label_delay(index - k)
        reported = reported_fraud(prev, index - k, seed=seed, start=start, rows_per_day=rows_per_day, scenario=scenario)
        m = first == k
        ids.append(event_ids(prev.tx.id_day[m], prev.tx.counter[m]))
        flags.append(np.where(reported[m] & (prev.correction[m] == 0), "1", "0").astype(object))
        fixed = (prev.correction > 0) & (first + prev.correction == k)
        ids.append(event_ids(prev.tx.id_day[fixed], prev.tx.counter[fixed]))
        flags.append(np.full(int(fixed.sum()), "1", dtype=object))
    n_valid = sum(len(i) for i in ids)
    faults: dict[str, int] = {}
    if index % 4 == 3:
        today = _core(seed, start, index, rows_per_day, scenario)
        pick = np.sort(rng.choice(len(today.tx), size=min(LABEL_FAULT_ROWS, len(today.tx)), replace=False))
        ids.append(event_ids(today.tx.id_day[pick], today.tx.counter[pick]))
        flags.append(np.full(len(pick), "maybe", dtype=object))
        faults[LABEL_TYPE_ERROR] = len(pick)
    all_ids, all_flags = np.concatenate(ids), np.concatenate(flags)
    reported = epoch_day(dt) * DAY_MS + rng.integers(0, DAY_MS, len(all_ids))
    order = np.argsort(reported, kind="stable")
    lines = all_ids[order] + "," + all_flags[order] + "," + iso_timestamps(reported[order])
    key = f"landing/labels/dt={dt.isoformat()}/labels.csv"
    return LandingFile(key, encode_file(np.asarray(lines, dtype=object), LABELS_HEADER)), n_valid, faults


def generate_day(dt: datetime.date, *, start: datetime.date, rows_per_day: int, seed: int,
                 drift_from: datetime.date | None = None, scenario: Scenario | None = None,
                 ) -> tuple[list[LandingFile], DayReport]:
    """All landing files of day ``dt`` and the report of what a correct ingestion must produce.

    ``rows_per_day`` is the number of valid new transaction events of the day (the base volume: a scenario's
    ``world:`` varies it by weekday, month and growth); about 1 % duplicate
    re-deliveries and 0.5 % faulty records come on top (an outage of the ``scenario`` withholds some files,
    and the report counts what was delivered). ``drift_from``: the one drift episode of
    :meth:`Scenario.drift_from`, from that day on. Raises ``ValueError`` for ``dt < start``,
    ``rows_per_day < 1`` or a negative ``seed``.
    """
    if dt < start:
        raise ValueError(f"dt {dt} is before start {start}")
    if rows_per_day < 1 or seed < 0:
        raise ValueError("rows_per_day must be >= 1 and seed >= 0")
    index = (dt - start).days
    scenario = _scenario(start, drift_from, scenario)
    rng = np.random.default_rng([seed, index, 1])
    tx_files, counts, tx_faults, dups, delivered = _transactions(
        dt, index, rng, start=start, rows_per_day=rows_per_day, seed=seed, scenario=scenario)
    cust_file, n_customers = _customers(dt, start=start, rows_per_day=rows_per_day, seed=seed)
    label_file, n_labels, label_faults = _labels(
        dt, index, rng, start=start, rows_per_day=rows_per_day, seed=seed, scenario=scenario)
    counts[cust_file.key] = n_customers
    counts[label_file.key] = n_labels + sum(label_faults.values())
    core = _core(seed, start, index, rows_per_day, scenario)
    report = DayReport(
        dt=dt.isoformat(),
        files=counts,
        rows_by_dataset={"transactions": sum(counts[f.key] for f in tx_files), "customers": n_customers,
                         "labels": counts[label_file.key]},
        valid_unique={"transactions": delivered, "customers": n_customers, "labels": n_labels},
        faults={"transactions": dict(sorted(tx_faults.items())), "customers": {}, "labels": label_faults},
        duplicates={"transactions": dups, "customers": 0, "labels": 0},
        late_events=int(core.late.sum()),
        fraud_events=int(core.is_fraud.sum()),
    )
    logger.info("generated %s: %d transaction records, %d faults, %d duplicates", report.dt,
                report.rows_by_dataset["transactions"], sum(tx_faults.values()), dups)
    return [*tx_files, cust_file, label_file], report


def clear_caches() -> None:
    """Drop the cached entity tables and core events (frees memory; output is unaffected)."""
    for fn in (core_day, build_customers, build_merchants):
        fn.cache_clear()


def report_key(dt: datetime.date | str) -> str:
    """Key of a day's generator report."""
    iso = dt if isinstance(dt, str) else dt.isoformat()
    return f"{GENERATOR}/dt={iso}/report.json"


WORLD_KEY = f"{GENERATOR}/world.json"
SCENARIO_KEY = f"{GENERATOR}/scenario.json"


def truth_key(dt: datetime.date | str) -> str:
    """Key of a day's per-event truth (``event_id``, ``p_fraud``, ``is_fraud``; Parquet)."""
    iso = dt if isinstance(dt, str) else dt.isoformat()
    return f"{GENERATOR}/truth/dt={iso}/events.parquet"


def day_truth(dt: datetime.date, *, start: datetime.date, rows_per_day: int, seed: int,
              scenario: Scenario | None = None) -> bytes:
    """The true fraud probability of each new event of day ``dt`` (what a model's ceiling is computed from)."""
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    core = _core(seed, start, (dt - start).days, rows_per_day, scenario or Scenario("ordinary"))
    table = pa.table({"event_id": event_ids(core.tx.id_day, core.tx.counter).astype(str),
                      "p_fraud": core.p_fraud, "is_fraud": core.is_fraud,
                      "label_delay_days": core.label_delay, "corrected_after_days": core.correction})
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()


def generate_world(write_bytes: Callable[[str, bytes], None], *, start: datetime.date, days: int,
                   rows_per_day: int, seed: int = 7, drift_from: datetime.date | None = None,
                   scenario: Scenario | None = None, first_day: int = 0) -> list[DayReport]:
    """Generate days ``first_day .. days - 1`` of the world starting on ``start``; write files, reports, the
    per-event truth, ``world.json`` and the scenario's episodes (``scenario.json``).

    Every file goes through ``write_bytes(key, data)``; reports are written as sorted-key JSON at
    :func:`report_key`, the truth at :func:`truth_key`. Returns the reports in day order.
    """
    if days < 1:
        raise ValueError("days must be >= 1")
    plan = _scenario(start, drift_from, scenario)
    world = {"start": start.isoformat(), "days": days, "end": (start + datetime.timedelta(days=days - 1)).isoformat(),
             "rows_per_day": rows_per_day, "seed": seed, "scenario": plan.name,
             "drift_from": drift_from.isoformat() if drift_from else None, "generator": "mlscale.synthetic"}
    write_bytes(WORLD_KEY, json.dumps(world, indent=2, sort_keys=True).encode())
    write_bytes(SCENARIO_KEY, json.dumps(plan.as_dict(start), indent=2, sort_keys=True).encode())
    reports: list[DayReport] = []
    for k in range(first_day, days):
        dt = start + datetime.timedelta(days=k)
        files, report = generate_day(dt, start=start, rows_per_day=rows_per_day, seed=seed, scenario=plan)
        for f in files:
            write_bytes(f.key, f.data)
        write_bytes(report_key(dt), json.dumps(report.as_dict(), indent=2, sort_keys=True).encode())
        write_bytes(truth_key(dt), day_truth(dt, start=start, rows_per_day=rows_per_day, seed=seed, scenario=plan))
        reports.append(report)
    clear_caches()  # the cached days (up to ~96 of them) are not needed once the world is written
    return reports
