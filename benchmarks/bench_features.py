"""A day's feature update with 365 vs 30 days of history, and vs a full recompute over 365 days.

    python benchmarks/bench_features.py            # 20,000 transactions a day
    python benchmarks/bench_features.py --smoke    # tiny, records nothing (CI)

Setup (untimed): one generated, ingested day of raw transactions is copied (event times shifted) to every
day of the history; daily partials are computed for the history. Timed:
* incremental: ``build_features`` for the last day (partials of the lateness window from raw, as-of tables
  merged from tiles and partials) with 365 days of partials behind it, and with 30, each after the untimed
  update of the day before (which builds the tiles, as the daily runs do);
* full recompute: partials of every history day from raw, then the as-of table of the last day.
Feature set: customer_activity (windows up to 90 days).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

LAST = dt.date(2026, 11, 30)


def seed_raw(lake, days: int, rows: int) -> None:
    """Raw transactions for ``days`` days up to LAST: one real ingested day, shifted to each day."""
    import pyarrow as pa
    import pyarrow.compute as pc
    from distributed import Client
    from mlscale.ingest import ingest_partition
    from mlscale.lake import PartitionRef
    from mlscale.synthetic import generate_world

    generate_world(lake.write_bytes, start=LAST, days=1, rows_per_day=rows, seed=5)
    with Client(processes=False, n_workers=1, threads_per_worker=2, dashboard_address=None) as client:
        ingest_partition(client=client, lake=lake, dt=str(LAST), run_id="seed", pii_key=b"bench")
    template = lake.read_table(PartitionRef.of("raw", "transactions", LAST))
    ts = template.column("event_ts")
    for back in range(1, days):
        shifted = pc.subtract(ts, pa.scalar(dt.timedelta(days=back), pa.duration("us")))
        table = template.set_column(template.column_names.index("event_ts"), "event_ts", shifted)
        ref = PartitionRef.of("raw", "transactions", LAST - dt.timedelta(days=back))
        parts = table.group_by("region").aggregate([]).column("region").to_pylist()
        with lake.writer(ref, run_id="seed", schema=table.drop_columns(["region"]).schema) as w:
            for region in parts:
                w.write(table.filter(pc.equal(table.column("region"), region)).drop_columns(["region"]),
                        subdir=f"region={region}")


def seed_partials(lake, fs, days: int) -> None:
    """Partials (and first-seen state) of the ``days`` days before LAST, computed untimed."""
    from mlscale.features.build import _write
    from mlscale.features.partials import daily_partials, event_day_rows
    from mlscale.features.windows import update_first_seen
    from mlscale.lake import PartitionRef

    first_seen = None
    for back in range(days, 0, -1):
        day = LAST - dt.timedelta(days=back)
        rows, read = event_day_rows(lake, fs, day, last_drop_day=day, lateness_days=0)
        partial = daily_partials(rows, fs)
        from mlscale.features.build import _fingerprint

        _write(lake, PartitionRef.of("features", fs.partials_table, day), partial, "seed", read,
               {"content": _fingerprint(partial)})
        first_seen = update_first_seen(first_seen, partial, fs)
    _write(lake, PartitionRef.of("features", f"{fs.table}_first_seen", LAST - dt.timedelta(days=1)), first_seen,
           "seed", [])


def full_recompute(lake, fs, days: int) -> float:
    from mlscale.features.partials import daily_partials, event_day_rows
    from mlscale.features.windows import as_of_table, update_first_seen

    start = time.perf_counter()
    partials, first_seen = {}, None
    for back in range(days - 1, -1, -1):
        day = LAST - dt.timedelta(days=back)
        rows, _ = event_day_rows(lake, fs, day, last_drop_day=LAST, lateness_days=3)
        partials[day] = daily_partials(rows, fs)
        first_seen = update_first_seen(first_seen, partials[day], fs)
    as_of_table(partials, fs, LAST, first_seen)
    return time.perf_counter() - start


def incremental(lake) -> float:
    """The update of LAST, after the (untimed) update of the day before: as every day, the tiles of the
    windows exist from the earlier days' runs."""
    from mlscale.features import build_features

    build_features(lake=lake, dt=str(LAST - dt.timedelta(days=1)), run_id="bench-warm", feature_set="customer_activity")
    start = time.perf_counter()
    build_features(lake=lake, dt=str(LAST), run_id="bench", feature_set="customer_activity")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--rows", type=int, default=20_000)
    args = parser.parse_args()
    long_days, short_days, rows = (12, 4, 500) if args.smoke else (365, 30, args.rows)

    from mlscale.features import load_feature_set
    from mlscale.lake import Lake

    fs = load_feature_set("customer_activity")
    with tempfile.TemporaryDirectory() as tmp:
        lake = Lake(f"{tmp}/long")
        seed_raw(lake, long_days, rows)
        full_s = full_recompute(lake, fs, long_days)
        seed_partials(lake, fs, long_days - 1)
        long_s = incremental(lake)
        short = Lake(f"{tmp}/short")
        seed_raw(short, short_days, rows)
        seed_partials(short, fs, short_days - 1)
        short_s = incremental(short)
    from mlscale.features.tiles import pieces

    flat = long_s / short_s
    speedup = full_s / long_s
    window_pieces = len(pieces(LAST - dt.timedelta(days=89), LAST))
    print(f"{rows:,} txns/day: update with {long_days} days of history {long_s:.2f}s, with {short_days} days "
          f"{short_s:.2f}s -> ratio {flat:.2f} (goal <= 1.3); full recompute over {long_days} days {full_s:.2f}s "
          f"-> incremental {speedup:.1f}x faster (goal >= 20); a 90-day window of {LAST} merges {window_pieces} "
          "pieces (tiles and daily partials)")
    if args.smoke:
        return
    from results import record

    command = "python benchmarks/bench_features.py"
    record("feature_update_365d_vs_30d_ratio", flat, unit="x (update time, 365 / 30 days of history)",
           goal="<= 1.3", baseline=f"30 days of history: {short_s:.2f}s", command=command,
           notes=f"{rows:,} txns/day, customer_activity (windows to 90 d): 365 d {long_s:.2f}s")
    record("feature_window_90d_pieces", window_pieces, unit="tables merged for a 90-day window", goal="-",
           baseline="90 daily partials without tiles", command=command,
           notes="7-, 28- and 112-day tiles on fixed boundaries plus daily partials at the ends")
    record("feature_incremental_vs_full_speedup", speedup, unit="x (full recompute / incremental)", goal=">= 20",
           baseline=f"full recompute over 365 days: {full_s:.2f}s", command=command,
           notes=f"incremental {long_s:.2f}s")


if __name__ == "__main__":
    main()
