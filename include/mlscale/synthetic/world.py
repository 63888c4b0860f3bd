"""The day's core transaction events: behaviour, bursts, late events and fraud ground truth.

Everything here is a pure function of its arguments. Random draws come from
``numpy.random.default_rng([seed, day_index, 0])``, so a day's core events never depend on
whether earlier days were generated. :func:`core_day` is cached (``functools.lru_cache``) and its
arrays are read-only.

Fraud is ``Bernoulli(sigmoid(score))`` where the score is a fixed linear function of learnable
features: amount spike vs the customer's usual spend (and category), merchant outside the
customer's usual set, high-risk category, night-time (00-05 local) e-commerce and a burst of
distinct merchants by the same customer within one clock hour.
"""

from __future__ import annotations

import datetime
import logging
from dataclasses import dataclass, fields
from functools import lru_cache

import numpy as np

from mlscale.synthetic.entities import (
    ALL_CATEGORIES,
    CATEGORIES,
    CHANNELS,
    HIGH_RISK_CATEGORIES,
    N_USUAL,
    REGIONS,
    Customers,
    Merchants,
    build_customers,
    build_merchants,
    epoch_day,
    readonly,
)
from mlscale.synthetic.scenario import CORRECTION_MIN_DAYS, LABEL_DELAY_DAYS, Effects, WorldDynamics

logger = logging.getLogger(__name__)

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
LATENESS_DAYS = 3
_CAT_SPEND = np.array([1.0, 1.6, 1.2, 4.0, 3.0, 1.8, 0.6, 1.5, 0.8, 2.0, 2.5])  # incl. crypto
_HIGH_RISK = np.array([c in HIGH_RISK_CATEGORIES for c in ALL_CATEGORIES])
_REGION_OFFSET_H = np.array([1, 1, 1, 1, 1, 1, 0])  # winter local offset per region
_REGION_CURRENCY = np.array([0, 0, 0, 0, 0, 3, 1])  # EUR.., PLN for PL, GBP for GB
_CHANNEL_P = np.array([0.38, 0.32, 0.25, 0.05])
# UTC hour-of-day activity profile: quiet nights, busy afternoons.
_HOUR_P = np.array([0.6, 0.4, 0.3, 0.3, 0.4, 0.8, 1.5, 2.5, 3.5, 4.0, 4.2, 4.5,
                    5.0, 4.8, 4.5, 4.5, 4.8, 5.2, 5.5, 5.2, 4.5, 3.5, 2.2, 1.2])
_HOUR_P = _HOUR_P / _HOUR_P.sum()
# Files of a day: acquirer_a 0001/0002(gz), acquirer_b 0001, wallet_c 0001/0002 (~45/25/30 %).
SLOT_P = np.array([0.27, 0.18, 0.25, 0.15, 0.15])
FRAUD_INTERCEPT = -6.2


@dataclass(frozen=True)
class Transactions:
    """Columnar transaction records (canonical values, not yet formatted)."""

    id_day: np.ndarray  # int64 epoch day of the event_id prefix (the delivery day of the new event)
    counter: np.ndarray  # int64 counter inside that day
    customer: np.ndarray  # int32 index into Customers
    merchant: np.ndarray  # int32 index into Merchants
    category: np.ndarray  # int8 into ALL_CATEGORIES
    ts_ms: np.ndarray  # int64 UTC epoch milliseconds
    amount_cents: np.ndarray  # int64
    currency: np.ndarray  # int8
    channel: np.ndarray  # int8
    region: np.ndarray  # int8
    ip: np.ndarray  # uint32

    def __len__(self) -> int:
        return int(self.counter.shape[0])

    def take(self, idx: np.ndarray) -> Transactions:
        return Transactions(**{f.name: getattr(self, f.name)[idx] for f in fields(self)})

    def replace(self, **cols: np.ndarray) -> Transactions:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data.update(cols)
        return Transactions(**data)

    @staticmethod
    def concat(parts: list[Transactions]) -> Transactions:
        return Transactions(**{f.name: np.concatenate([getattr(p, f.name) for p in parts])
                               for f in fields(Transactions)})


@dataclass(frozen=True)
class CoreDay:
    """The valid, new transaction events delivered on one day, with ground truth.

    Guarantees: ``len(tx)`` is the day's volume (``rows_per_day`` in a flat world, see
    :meth:`WorldDynamics.volume`); counters 1..N (unique event_ids); ~2 % late events with event day 1..3 days
    before the delivery day; others inside the delivery day (UTC).
    """

    day: int  # epoch day of delivery
    tx: Transactions
    is_fraud: np.ndarray  # bool
    p_fraud: np.ndarray  # float64: the true fraud probability is_fraud was drawn from
    label_delay: np.ndarray  # int16 >= 1: the (first) label is delivered on day + delay (1..5, or a tail)
    slot: np.ndarray  # int8 file slot 0..4
    late: np.ndarray  # bool
    correction: np.ndarray  # int16: 0, or days after the first report when a missed fraud is reported again


def sample_transactions(rng: np.random.Generator, n: int, day: int, customers: Customers,
                        merchants: Merchants, effects: Effects, counter_start: int = 1,
                        left: np.ndarray | None = None) -> tuple[Transactions, np.ndarray, np.ndarray]:
    """Draw ``n`` ordinary transactions on ``day`` (UTC); ``left``: customers who have stopped paying.
    Returns (tx, log_ratio, new_merchant)."""
    active = customers.signup_day <= day - LATENESS_DAYS
    if left is not None:
        active = active & ~left
    weight = np.where(active, customers.activity, 0.0)
    cust = rng.choice(len(weight), size=n, p=weight / weight.sum()).astype(np.int32)
    new_m = rng.random(n) < 0.15
    usual = customers.usual_merchants[cust, rng.integers(0, N_USUAL, n)]
    merch = np.where(new_m, rng.integers(0, len(merchants.merchant_id), n), usual).astype(np.int32)
    cat = merchants.category[merch].copy()
    if effects.new_category_share:
        cat[rng.random(n) < effects.new_category_share] = len(CATEGORIES)
    hour = rng.choice(24, size=n, p=_HOUR_P)
    ts = day * DAY_MS + hour * HOUR_MS + rng.integers(0, HOUR_MS, n)
    noise = rng.normal(0.0, 0.45, n)
    spike = np.where(rng.random(n) < 0.025, np.log(rng.uniform(4.0, 20.0, n)), 0.0)
    log_ratio = noise + spike
    amount = customers.mean_spend[cust] * _CAT_SPEND[cat] * np.exp(log_ratio) * effects.amount_scale
    cents = np.clip(np.rint(amount * 100), 50, 5_000_000).astype(np.int64)
    region = np.where(rng.random(n) < 0.9, customers.region[cust], rng.integers(0, len(REGIONS), n))
    if effects.region_share:
        region = np.where(rng.random(n) < effects.region_share, REGIONS.index(effects.region), region)
    region = region.astype(np.int8)
    u = rng.random(n)
    currency = _REGION_CURRENCY[region]
    currency = np.where((currency != 0) & (u > 0.9), 0, currency)
    currency = np.where(u < 0.04, 2, np.where(u < 0.06, 4, currency)).astype(np.int8)
    channel = rng.choice(len(CHANNELS), size=n, p=_channel_p(effects)).astype(np.int8)
    ip = np.where(rng.random(n) < 0.8, customers.home_ip[cust],
                  rng.integers(16_777_216, 3_758_096_383, n).astype(np.uint32)).astype(np.uint32)
    tx = Transactions(
        id_day=np.full(n, day, dtype=np.int64), counter=np.arange(counter_start, counter_start + n, dtype=np.int64),
        customer=cust, merchant=merch, category=cat, ts_ms=ts.astype(np.int64), amount_cents=cents,
        currency=currency, channel=channel, region=region, ip=ip,
    )
    return tx, log_ratio, new_m


def _channel_p(effects: Effects) -> np.ndarray:
    """The channel mix: ordinary, or with the e-commerce share an episode sets (the others in proportion)."""
    if effects.ecom_share is None:
        return _CHANNEL_P
    ecom = CHANNELS.index("ecom")
    others = np.delete(_CHANNEL_P, ecom)
    return np.insert(others / others.sum() * (1 - effects.ecom_share), ecom, effects.ecom_share)


def _burst(rng: np.random.Generator, n_rows: int, day: int, customers: Customers, merchants: Merchants,
           effects: Effects, left: np.ndarray | None) -> tuple[Transactions, np.ndarray, np.ndarray]:
    """Card-testing style bursts: a few customers hit many distinct merchants within ~45 minutes."""
    lengths = rng.integers(6, 15, max(1, n_rows // 10))
    lengths = lengths[np.cumsum(lengths) <= n_rows]
    total = int(lengths.sum())
    tx, log_ratio, _ = sample_transactions(rng, total, day, customers, merchants, effects, left=left)
    owner = np.repeat(np.arange(len(lengths)), lengths)
    burst_cust = tx.customer[np.cumsum(lengths) - lengths] if total else tx.customer
    window = day * DAY_MS + rng.integers(0, DAY_MS - HOUR_MS, len(lengths))
    merch = rng.integers(0, len(merchants.merchant_id), total).astype(np.int32)
    channel = np.where(rng.random(total) < 0.8, 1, tx.channel).astype(np.int8)
    tx = tx.replace(customer=burst_cust[owner], merchant=merch, category=merchants.category[merch].copy(),
                    ts_ms=window[owner] + rng.integers(0, 45 * 60_000, total), channel=channel)
    return tx, log_ratio, np.ones(total, dtype=bool)


def distinct_merchants_in_hour(tx: Transactions) -> np.ndarray:
    """Per row: distinct merchants of the same customer within the same UTC clock hour."""
    if not len(tx):
        return np.zeros(0, dtype=np.int64)
    hour = tx.ts_ms // HOUR_MS
    n_m = int(tx.merchant.max()) + 1
    key = tx.customer.astype(np.int64) * int(hour.max() - hour.min() + 1) + (hour - hour.min())
    order = np.argsort(key * n_m + tx.merchant)
    k_sorted = key[order]
    pair_sorted = k_sorted * n_m + tx.merchant[order]
    first = np.ones(len(tx), dtype=bool)
    first[1:] = pair_sorted[1:] != pair_sorted[:-1]  # first row of each (key, merchant) pair
    new_key = np.ones(len(tx), dtype=bool)
    new_key[1:] = k_sorted[1:] != k_sorted[:-1]
    group = np.cumsum(new_key) - 1
    distinct = np.bincount(group, weights=first).astype(np.int64)
    out = np.empty(len(tx), dtype=np.int64)
    out[order] = distinct[group]
    return out


def fraud_score(tx: Transactions, log_ratio: np.ndarray, new_merchant: np.ndarray) -> np.ndarray:
    """Logit of the fraud probability from learnable features."""
    local_hour = (tx.ts_ms // HOUR_MS + _REGION_OFFSET_H[tx.region]) % 24
    ecom = tx.channel == 1
    night_ecom = (local_hour < 5) & ecom
    distinct = distinct_merchants_in_hour(tx)
    return (FRAUD_INTERCEPT + 2.0 * np.maximum(log_ratio - 0.9, 0.0) + 1.2 * new_merchant
            + 0.9 * _HIGH_RISK[tx.category] + 2.5 * night_ecom + 0.9 * np.maximum(distinct - 6, 0)
            + 0.3 * ecom)


CHURN_STREAM = 11
LABEL_STREAM = 5
FLAT = WorldDynamics()  # the default world: no seasonality, growth, churn, label tail or corrections


@lru_cache(maxsize=4)
def churn_days(seed: int, start: datetime.date, rows_per_day: int, per_30_days: float) -> np.ndarray:
    """Per customer, the epoch day from which they stop paying (exponential: ``per_30_days`` of those still
    paying leave in any 30 days; far in the future when nobody leaves)."""
    n = len(build_customers(seed, start, rows_per_day).customer_id)
    if per_30_days <= 0:
        return readonly_array(np.full(n, np.iinfo(np.int64).max // 2, dtype=np.int64))
    rate = -np.log1p(-per_30_days) / 30.0
    after = np.random.default_rng([seed, CHURN_STREAM]).exponential(1.0 / rate, n)
    return readonly_array(epoch_day(start) + np.ceil(after).astype(np.int64))


def readonly_array(values: np.ndarray) -> np.ndarray:
    values.setflags(write=False)
    return values


def _label_timing(seed: int, day_index: int, n: int, is_fraud: np.ndarray, base_delay: np.ndarray,
                  dynamics: WorldDynamics) -> tuple[np.ndarray, np.ndarray]:
    """(label delay, correction) per event: the ordinary 1..5 days, a tail of later labels (log-uniform up to
    ``delay_tail_max_days``), and missed frauds reported again later (own random stream: nothing else moves)."""
    delay = base_delay.astype(np.int16)
    correction = np.zeros(n, dtype=np.int16)
    if not (dynamics.delay_tail_share or dynamics.correction_share):
        return delay, correction
    rng = np.random.default_rng([seed, day_index, LABEL_STREAM])
    tail = rng.random(n) < dynamics.delay_tail_share
    low, high = LABEL_DELAY_DAYS[1] + 1, max(LABEL_DELAY_DAYS[1] + 1, dynamics.delay_tail_max_days)
    delay[tail] = np.floor(np.exp(rng.uniform(np.log(low), np.log(high + 1), int(tail.sum())))).astype(np.int16)
    missed = is_fraud & (rng.random(n) < dynamics.correction_share)
    high = max(CORRECTION_MIN_DAYS, dynamics.correction_max_days)
    correction[missed] = rng.integers(CORRECTION_MIN_DAYS, high + 1, int(missed.sum()))
    return delay, correction


@lru_cache(maxsize=96)  # a day's labels reach back up to ~75 days (tail, corrections, backlog)
def core_day(seed: int, start: datetime.date, day_index: int, rows_per_day: int, effects: Effects,
             dynamics: WorldDynamics = FLAT) -> CoreDay:
    """The valid new events delivered on ``start + day_index`` (deterministic, cached)."""
    rng = np.random.default_rng([seed, day_index, 0])
    customers = build_customers(seed, start, rows_per_day)
    merchants = build_merchants(seed, rows_per_day)
    day = epoch_day(start) + day_index
    n = dynamics.volume(start + datetime.timedelta(days=day_index), day_index, rows_per_day)
    left = churn_days(seed, start, rows_per_day, dynamics.churn_per_30_days) <= day \
        if dynamics.churn_per_30_days else None
    n_burst = int(n * 0.003)
    btx, bratio, bnew = _burst(rng, n_burst, day, customers, merchants, effects, left)
    rtx, rratio, rnew = sample_transactions(rng, n - len(btx), day, customers, merchants, effects, left=left)
    tx = Transactions.concat([rtx, btx]).replace(counter=np.arange(1, n + 1, dtype=np.int64))
    log_ratio = np.concatenate([rratio, bratio])
    new_m = np.concatenate([rnew, bnew])
    late = rng.random(n) < 0.02
    tx = tx.replace(ts_ms=tx.ts_ms - late * rng.integers(1, LATENESS_DAYS + 1, n) * DAY_MS)
    p = 1.0 / (1.0 + np.exp(-fraud_score(tx, log_ratio, new_m)))
    is_fraud = rng.random(n) < p
    base_delay = rng.integers(LABEL_DELAY_DAYS[0], LABEL_DELAY_DAYS[1] + 1, n)
    slot = rng.choice(len(SLOT_P), size=n, p=SLOT_P).astype(np.int8)
    delay, correction = _label_timing(seed, day_index, n, is_fraud, base_delay, dynamics)
    out = CoreDay(day=day, tx=tx, is_fraud=is_fraud, p_fraud=p, label_delay=delay, slot=slot, late=late,
                  correction=correction)
    for part in (out, out.tx):
        readonly(part)
    logger.debug("core day %s: %d events, %d fraud", day_index, n, int(out.is_fraud.sum()))
    return out
