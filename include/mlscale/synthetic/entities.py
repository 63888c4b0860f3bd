"""Entities of the simulated world: customers and merchants (and the value domains).

Pure functions of ``(seed, start, rows_per_day)``, drawn from ``default_rng([seed, WORLD_STREAM, k])``
and cached; the cached arrays are read-only.
"""

from __future__ import annotations

import datetime
import logging
from dataclasses import dataclass, fields
from functools import lru_cache

import numpy as np

logger = logging.getLogger(__name__)

REGIONS: tuple[str, ...] = ("NL", "DE", "FR", "ES", "IT", "PL", "GB")
CURRENCIES: tuple[str, ...] = ("EUR", "GBP", "USD", "PLN", "SEK")
CHANNELS: tuple[str, ...] = ("pos", "ecom", "contactless", "atm")
CATEGORIES: tuple[str, ...] = (
    "grocery", "fuel", "restaurants", "travel", "electronics",
    "fashion", "digital_goods", "gambling", "pharmacy", "utilities",
)
DRIFT_CATEGORY = "crypto"
ALL_CATEGORIES: tuple[str, ...] = CATEGORIES + (DRIFT_CATEGORY,)
HIGH_RISK_CATEGORIES: frozenset[str] = frozenset({"digital_goods", "gambling", "electronics", DRIFT_CATEGORY})
GENDERS: tuple[str, ...] = ("F", "M", "X")
AGE_BANDS: tuple[str, ...] = ("18-24", "25-34", "35-44", "45-54", "55-64", "65+")

WORLD_STREAM = 4_294_967_295  # never a day index

_CAT_WEIGHTS = np.array([20, 10, 18, 6, 8, 12, 8, 3, 7, 8], dtype=float)
N_USUAL = 6

_FIRST = ("Anna", "Sophie", "Zoë", "Emma", "Lucía", "Marie", "Julia", "Agnieszka", "Chloé", "Olivia",
          "Lars", "Jan", "Łukasz", "José", "Jürgen", "Pierre", "Marco", "Tom", "Søren", "Noah")
_FIRST_ASCII = ("anna", "sophie", "zoe", "emma", "lucia", "marie", "julia", "agnieszka", "chloe", "olivia",
                "lars", "jan", "lukasz", "jose", "jurgen", "pierre", "marco", "tom", "soren", "noah")
_LAST = ("de Vries", "Müller", "Dubois", "García", "Rossi", "Kowalski", "Smith", "Jansen", "Schmidt",
         "Martin", "López", "Bianchi", "Nowak", "Jones", "Bakker", "Weber", "Bernard", "Fernández")
_LAST_ASCII = ("devries", "muller", "dubois", "garcia", "rossi", "kowalski", "smith", "jansen", "schmidt",
               "martin", "lopez", "bianchi", "nowak", "jones", "bakker", "weber", "bernard", "fernandez")
_DOMAINS = ("example.com", "mail.test", "example.org")
_PHONE_PREFIX = ("+316", "+4915", "+336", "+346", "+393", "+485", "+447")
_IP_FIRST_OCTET = np.array([31, 37, 46, 62, 77, 80, 81, 82, 84, 85, 86, 88, 89, 90, 91, 92, 93, 94,
                            95, 109, 145, 176, 178, 185, 188, 193, 194, 195, 212, 213, 217])


def epoch_day(d: datetime.date) -> int:
    """Days since 1970-01-01 of ``d``."""
    return (d - datetime.date(1970, 1, 1)).days


def zero_pad(values: np.ndarray, width: int) -> np.ndarray:
    """Non-negative integers as zero-padded strings (object array), vectorised."""
    as_str = np.asarray(values, dtype=np.int64).astype(np.dtypes.StringDType())
    return np.strings.zfill(as_str, width).astype(object)


def readonly(obj: object) -> None:
    """Make every numpy array field of a dataclass instance read-only (safe to cache)."""
    for f in fields(obj):  # type: ignore[arg-type]
        value = getattr(obj, f.name)
        if isinstance(value, np.ndarray):
            value.setflags(write=False)


@dataclass(frozen=True)
class Customers:
    """Customer table (one entry per customer; index = position)."""

    customer_id: np.ndarray  # object "C0000001"
    name: np.ndarray
    email: np.ndarray
    phone: np.ndarray
    card_number: np.ndarray  # 16-digit Luhn-valid strings
    gender: np.ndarray
    age_band: np.ndarray
    region: np.ndarray  # int8 code into REGIONS
    signup_day: np.ndarray  # int64 epoch day
    mean_spend: np.ndarray  # float64, the customer's usual spend level
    activity: np.ndarray  # float64 relative transaction rate
    home_ip: np.ndarray  # uint32
    usual_merchants: np.ndarray  # (n, N_USUAL) int32


@dataclass(frozen=True)
class Merchants:
    merchant_id: np.ndarray  # object "M000001"
    category: np.ndarray  # int8 code into ALL_CATEGORIES


def n_customers(rows_per_day: int) -> int:
    return max(200, rows_per_day // 20)


def n_merchants(rows_per_day: int) -> int:
    return max(50, rows_per_day // 200)


def luhn_cards(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` 16-digit card numbers (object strings) that pass the Luhn check."""
    payload = rng.integers(0, 10, size=(n, 15))
    payload[:, 0] = rng.choice([4, 5], size=n)
    doubled = payload.copy()
    doubled[:, 0::2] *= 2  # rightmost payload digit is position 2 from the right
    doubled[doubled > 9] -= 9
    check = (10 - doubled.sum(axis=1) % 10) % 10
    digits = np.concatenate([payload, check[:, None]], axis=1).astype(np.int64)
    number = digits @ (10 ** np.arange(15, -1, -1, dtype=np.int64))
    return number.astype(str).astype(object)


@lru_cache(maxsize=4)
def build_merchants(seed: int, rows_per_day: int) -> Merchants:
    rng = np.random.default_rng([seed, WORLD_STREAM, 1])
    n = n_merchants(rows_per_day)
    ids = "M" + zero_pad(np.arange(1, n + 1), 6)
    cat = rng.choice(len(CATEGORIES), size=n, p=_CAT_WEIGHTS / _CAT_WEIGHTS.sum()).astype(np.int8)
    out = Merchants(merchant_id=ids, category=cat)
    readonly(out)
    return out


@lru_cache(maxsize=4)
def build_customers(seed: int, start: datetime.date, rows_per_day: int) -> Customers:
    """Customer table. Guarantees: ids unique and ordered, cards Luhn-valid, ~10 % sign up after
    ``start`` (spread over the following 120 days, a few per day), the rest before ``start``."""
    rng = np.random.default_rng([seed, WORLD_STREAM, 0])
    n = n_customers(rows_per_day)
    num = zero_pad(np.arange(1, n + 1), 7)
    ids = "C" + num
    fi = rng.integers(0, len(_FIRST), n)
    li = rng.integers(0, len(_LAST), n)
    first, last = np.array(_FIRST, dtype=object), np.array(_LAST, dtype=object)
    first_a, last_a = np.array(_FIRST_ASCII, dtype=object), np.array(_LAST_ASCII, dtype=object)
    name = first[fi] + " " + last[li]
    domain = np.array(_DOMAINS, dtype=object)[rng.integers(0, len(_DOMAINS), n)]
    email = first_a[fi] + "." + last_a[li] + "." + num + "@" + domain
    region = rng.choice(len(REGIONS), size=n, p=[0.25, 0.2, 0.15, 0.12, 0.1, 0.08, 0.1]).astype(np.int8)
    phone = np.array(_PHONE_PREFIX, dtype=object)[region] + zero_pad(rng.integers(0, 10**8, n), 8)
    gender = np.array(GENDERS, dtype=object)[rng.choice(3, size=n, p=[0.49, 0.49, 0.02])]
    age_band = np.array(AGE_BANDS, dtype=object)[rng.choice(6, size=n, p=[0.12, 0.22, 0.22, 0.18, 0.14, 0.12])]
    n_new = n // 10
    signup = epoch_day(start) - rng.integers(30, 3000, n)
    signup[n - n_new:] = epoch_day(start) + (np.arange(n_new) * 120) // max(n_new, 1)
    octets = np.column_stack([rng.choice(_IP_FIRST_OCTET, n), rng.integers(0, 256, (n, 2)), rng.integers(1, 255, n)])
    home_ip = (octets.astype(np.uint32) << np.array([24, 16, 8, 0], dtype=np.uint32)).sum(axis=1, dtype=np.uint32)
    out = Customers(
        customer_id=ids, name=name, email=email, phone=phone, card_number=luhn_cards(rng, n),
        gender=gender, age_band=age_band, region=region, signup_day=signup.astype(np.int64),
        mean_spend=rng.lognormal(3.0, 0.6, n), activity=rng.gamma(0.8, 1.0, n) + 0.05,
        home_ip=home_ip, usual_merchants=rng.integers(0, n_merchants(rows_per_day), (n, N_USUAL)).astype(np.int32),
    )
    readonly(out)
    return out
