"""Tiled windows: the pieces that cover a window, and tiles reused, rebuilt after a late change, and exact."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest
from mlscale.features.definitions import load_feature_set
from mlscale.features.tiles import TILE_LEVELS, TileStore, aligned, pieces
from mlscale.lake import Lake

DAY = dt.timedelta(days=1)


@pytest.mark.parametrize("length", [1, 6, 7, 30, 90, 365, 1000])
def test_pieces_cover_the_window_exactly_with_aligned_tiles(length: int) -> None:
    for offset in range(0, 120, 7):
        last = dt.date(2026, 11, 30) - dt.timedelta(days=offset)
        first = last - dt.timedelta(days=length - 1)
        cut = pieces(first, last)
        days = [start + dt.timedelta(days=i) for level, start in cut for i in range(level)]
        assert days == [first + dt.timedelta(days=i) for i in range(length)]      # each day once, in order
        assert all(level == 1 or (level in TILE_LEVELS and aligned(start, level)) for level, start in cut)
        # bounded whatever the length: the ends (fewer than 7 days, 4 weeks, 4 of 28) plus the largest tiles
        assert len(cut) <= 2 * (6 + 3 + 3) + length // max(TILE_LEVELS) + 1


def test_a_90_day_window_merges_a_dozen_pieces_or_so() -> None:
    counts = [len(pieces(d - dt.timedelta(days=89), d)) for d in
              (dt.date(2026, 1, 1) + dt.timedelta(days=i) for i in range(112))]
    assert max(counts) <= 20 and sum(counts) / len(counts) < 16


def frame(day: dt.date, scale: int = 1) -> pa.Table:
    """One day's partial: entities e0..e4 with n = 1 and amount = the day's ordinal x scale."""
    return pa.table({"e": [f"e{i}" for i in range(5)], "n": [1] * 5, "amount": [day.toordinal() * scale] * 5})


def summed(tables: list[pa.Table]) -> pa.Table:
    if not tables:
        return pa.table({"e": pa.array([], pa.string()), "n": pa.array([], pa.int64()),
                         "amount": pa.array([], pa.int64())})
    out = pa.concat_tables(tables).group_by("e").aggregate([("n", "sum"), ("amount", "sum")])
    return out.rename_columns(["e", "n", "amount"]).select(["e", "n", "amount"]).sort_by("e")


def test_tiles_are_exact_reused_and_rebuilt_after_a_late_change(tmp_path) -> None:
    lake, fs = Lake(str(tmp_path / "lake")), load_feature_set("customer_activity")
    days = {dt.date(2026, 6, 1) + i * DAY: 1 for i in range(200)}

    def store() -> TileStore:
        return TileStore(lake, fs, "run", content=lambda d: f"v{days[d]}" if d in days else None,
                         partial=lambda d: frame(d, days[d]) if d in days else None, merge=summed)

    last = dt.date(2026, 12, 1)
    first = last - dt.timedelta(days=119)
    tiles = store()
    merged = summed(tiles.window(first, last))
    reference = summed([frame(first + i * DAY) for i in range(120)])
    assert merged.equals(reference) and tiles.built > 0 and tiles.reused == 0
    again = store()                                    # a later run: every tile read back, none rebuilt
    assert summed(again.window(first, last)).equals(reference) and again.built == 0 and again.reused > 0
    changed = next(start for level, start in pieces(first, last) if level == 28) + 3 * DAY
    days[changed] = 2                                  # a late event changes a day inside a 28-day tile
    late = store()
    expected = summed([frame(first + i * DAY, days.get(first + i * DAY, 1)) for i in range(120)])
    assert summed(late.window(first, last)).equals(expected)
    assert late.built == 2                             # that 28-day tile and the 7-day one below it
