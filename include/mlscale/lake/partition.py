"""Names of things in the lake: zones, datasets and day partitions."""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass

ZONES = (
    "landing", "raw", "quarantine", "features", "training", "models", "checkpoints",
    "predictions", "reports", "cold", "_meta",
)
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")


class PartitionNameError(ValueError):
    """A zone, dataset or partition key is not a valid lake name."""


def check_name(kind: str, value: str) -> str:
    if not _NAME.match(value or ""):
        raise PartitionNameError(f"{kind} {value!r} is not a valid lake name (letters, digits, _ . -)")
    return value


def file_name_of(text: str) -> str:
    """``text`` (a run id, say) as a safe file-name part: anything but letters, digits, ``-_.`` becomes ``_``."""
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in text)


def parse_day(value: str | datetime.date) -> datetime.date:
    """Accept ``YYYY-MM-DD`` (or a date); anything else is a clear error."""
    if isinstance(value, datetime.datetime):
        return value.date()
    if isinstance(value, datetime.date):
        return value
    try:
        return datetime.date.fromisoformat(str(value)[:10])
    except ValueError as exc:
        raise PartitionNameError(f"day {value!r} is not YYYY-MM-DD") from exc


@dataclass(frozen=True, order=True)
class PartitionRef:
    """One committed unit of the lake: ``<zone>/<dataset>/dt=YYYY-MM-DD[/key=value...]``.

    Data files may sit in Hive-style sub-directories below it (``region=NL/part-….parquet``); the
    partition's single manifest lists them all, so a day is committed atomically.
    """

    zone: str
    dataset: str
    dt: str
    keys: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if self.zone not in ZONES:
            raise PartitionNameError(f"zone {self.zone!r} is not one of {', '.join(ZONES)}")
        check_name("dataset", self.dataset)
        object.__setattr__(self, "dt", parse_day(self.dt).isoformat())
        for key, value in self.keys:
            check_name("partition key", key)
            check_name(f"value of {key}", value)

    @classmethod
    def of(cls, zone: str, dataset: str, day: str | datetime.date, **keys: str) -> PartitionRef:
        return cls(zone, dataset, parse_day(day).isoformat(), tuple(sorted(keys.items())))

    @property
    def day(self) -> datetime.date:
        return datetime.date.fromisoformat(self.dt)

    @property
    def key(self) -> str:
        """Path relative to the lake root."""
        tail = "".join(f"/{k}={v}" for k, v in self.keys)
        return f"{self.zone}/{self.dataset}/dt={self.dt}{tail}"

    @classmethod
    def from_key(cls, key: str) -> PartitionRef:
        parts = key.strip("/").split("/")
        if len(parts) < 3 or not parts[2].startswith("dt="):
            raise PartitionNameError(f"{key!r} is not <zone>/<dataset>/dt=YYYY-MM-DD[/k=v]")
        keys = tuple(tuple(p.split("=", 1)) for p in parts[3:])
        return cls(parts[0], parts[1], parts[2][3:], keys)  # type: ignore[arg-type]

    def __str__(self) -> str:
        return self.key
