"""Tiled windows: any window of days is a merge of a bounded number of pre-merged tiles.

A tile of level L (days) covers the L days starting on a day whose ordinal is a multiple of L (fixed
boundaries, so every run cuts the calendar the same way); levels are :data:`TILE_LEVELS`, each four times the
one below, so a tile is the merge of the four tiles of the level below (or of 7 daily partials). A window is
cut greedily from its first day: the largest aligned tile that fits, else one daily partial
(:func:`pieces`); a 90-day window is about a dozen pieces instead of 90 partials, and a year about twenty.

Tiles are committed like any partition (``features/<set>_v<version>_partials_t<L>/dt=<first day>/``) with the
content fingerprints of their days in the manifest (``signature``). A tile is used only when that signature
equals the one its days have now: a late event that changes a daily partial changes the signature of every
tile over that day, which is rebuilt on first use (from the tiles below, themselves checked the same way).
Sums, counts, minima, maxima and HyperLogLog registers merge exactly in any grouping; KLL sketches merge within
their error bound.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import pyarrow as pa

from mlscale.features.definitions import FeatureSet
from mlscale.lake import Lake, PartitionRef

logger = logging.getLogger(__name__)

DAILY = 1
TILE_LEVELS = (7, 28, 112)          # each 4x the one below (7 = seven daily partials)


def aligned(day: dt.date, level: int) -> bool:
    return day.toordinal() % level == 0


def pieces(first: dt.date, last: dt.date, levels: tuple[int, ...] = TILE_LEVELS) -> list[tuple[int, dt.date]]:
    """``(level, first day)`` of the pieces that cover ``first..last`` exactly: the largest aligned tile that
    fits at each step, else a daily partial (level 1)."""
    out: list[tuple[int, dt.date]] = []
    day = first
    while day <= last:
        level = next((lv for lv in sorted(levels, reverse=True)
                      if aligned(day, lv) and day + dt.timedelta(days=lv - 1) <= last), DAILY)
        out.append((level, day))
        day += dt.timedelta(days=level)
    return out


def children(level: int, start: dt.date, levels: tuple[int, ...] = TILE_LEVELS) -> list[tuple[int, dt.date]]:
    """The pieces one level down that make up a tile."""
    below = max((lv for lv in levels if lv < level), default=DAILY)
    return [(below, start + dt.timedelta(days=i)) for i in range(0, level, below)]


def tile_table_name(fs: FeatureSet, level: int) -> str:
    return f"{fs.partials_table}_t{level}"


@dataclass
class TileStore:
    """The tiles of one feature set over the daily partials the caller knows.

    ``content(day)`` is a daily partial's content fingerprint (``None``: no partial that day); ``partial(day)``
    its table. Tiles read or built are kept for the run. ``merge`` merges tables with the partials' rules.
    """

    lake: Lake
    fs: FeatureSet
    run_id: str
    content: Callable[[dt.date], str | None]
    partial: Callable[[dt.date], pa.Table | None]
    merge: Callable[[list[pa.Table]], pa.Table]
    levels: tuple[int, ...] = TILE_LEVELS
    built: int = 0
    reused: int = 0
    _cache: dict[tuple[int, dt.date], pa.Table | None] = field(default_factory=dict)

    def signature(self, level: int, start: dt.date) -> str:
        days = [start + dt.timedelta(days=i) for i in range(level)]
        text = "|".join(f"{d.isoformat()}={self.content(d) or '-'}" for d in days)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def table(self, level: int, start: dt.date) -> pa.Table | None:
        """The merged partials of ``level`` days from ``start`` (``None`` when none of the days has data)."""
        if level == DAILY:
            return self.partial(start)
        key = (level, start)
        if key not in self._cache:
            self._cache[key] = self._tile(level, start)
        return self._cache[key]

    def _tile(self, level: int, start: dt.date) -> pa.Table | None:
        signature = self.signature(level, start)
        if signature == self.signature_of_nothing(level, start):
            return None
        ref = PartitionRef.of("features", tile_table_name(self.fs, level), start)
        manifest = self.lake.manifest(ref)
        if manifest is not None and manifest.extra.get("signature") == signature:
            self.reused += 1
            return self.lake.read_table(ref)
        parts = [t for lv, d in children(level, start, self.levels) if (t := self.table(lv, d)) is not None]
        merged = self.merge(parts)
        with self.lake.writer(ref, run_id=self.run_id, schema=merged.schema,
                              extra={"signature": signature, "level": level, "feature_set": self.fs.name,
                                     "version": self.fs.version}) as writer:
            if merged.num_rows:
                writer.write(merged)
        self.built += 1
        logger.debug("tile %s (%d days from %s) %s: %d entities", ref.key, level, start,
                     "rebuilt" if manifest is not None else "built", merged.num_rows)
        return merged

    def signature_of_nothing(self, level: int, start: dt.date) -> str:
        days = [start + dt.timedelta(days=i) for i in range(level)]
        return hashlib.sha256("|".join(f"{d.isoformat()}=-" for d in days).encode()).hexdigest()[:16]

    def window(self, first: dt.date, last: dt.date) -> list[pa.Table]:
        """The tables whose merge is the window ``first..last``."""
        return [t for level, day in pieces(first, last, self.levels) if (t := self.table(level, day)) is not None]
