"""What recording resource use costs: an ingestion run with and without the usage sampler around it.

    python benchmarks/bench_usage.py            # 200,000 payments, 7 runs each way
    python benchmarks/bench_usage.py --smoke    # 5,000 payments, 2 runs each, records nothing (CI)

Both ways run ``ingest_partition`` of the same day on the same LocalCluster (2 worker processes, 1 thread
each; started before timing). "With" wraps it exactly as ``DaskOperator`` does: the sizing advice from the stage's usage history
(14 days of records read), the sampler (counters of every worker process at the start and the end, the
scheduler's worker metrics every 0.5 s), the workload of the result, the cost from the price table, the
summary line, and the record written to the lake. The runs alternate in ABBA order
(without, with, with, without, ...): the second run of a pair is measurably slower (about 6 % here, whichever
it is), so a fixed order would bias the A/B. ``usage_overhead_pct`` = the recording's own time on the task's
path (sizing advice, sampler start, end snapshot, record, cost, write) over the median unrecorded run x 100 (goal <= 2); the A/B
difference of the medians is printed beside it, with the unrecorded runs' own spread. The printed
ratio is median with / median without.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

DAY = dt.date(2026, 11, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    rows, repeat = (5_000, 2) if args.smoke else (200_000, 7)
    from distributed import Client, LocalCluster
    from mlscale.ingest import ingest_partition
    from mlscale.lake import Lake
    from mlscale.sizing import advise_from_history
    from mlscale.synthetic import generate_world
    from mlscale.usage import UsageSampler, write_usage
    from mlscale.usage.history import usage_history
    from mlscale.usage.recording import finished_record

    logging.getLogger("mlscale").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp, \
            LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        lake = Lake(f"{tmp}/lake")
        generate_world(lake.write_bytes, start=DAY, days=1, rows_per_day=rows, seed=3)

        def ingest(i: int) -> Any:
            return ingest_partition(client=client, lake=lake, dt=str(DAY), run_id=f"bench-{i}", contract="transactions",
                             pii_key=b"bench-key")

        critical: list[float] = []   # seconds the recording itself adds on the task's path

        def with_usage(i: int) -> None:
            t0 = time.perf_counter()
            history = [r for r in usage_history(lake, str(DAY), 14) if r.task_id == "ingest"]  # the sizing advice
            logging.getLogger(__name__).info("sizing: %s", advise_from_history(history))
            sampler = UsageSampler(client).__enter__()
            t1 = time.perf_counter()
            result = ingest(i)
            t2 = time.perf_counter()
            sampler.__exit__(None, None, None)
            record = finished_record(sampler, result, dag_id="ingest_transactions", task_id="ingest",
                                     run_id=f"bench-{i}", try_number=1, day=str(DAY))
            logging.getLogger(__name__).info("%s", record.summary())
            write_usage(lake, record)
            critical.append((t1 - t0) + (time.perf_counter() - t2))
            with_usage.last = record  # type: ignore[attr-defined]

        ingest(-1)                                   # warm the workers (imports, first files)
        plain, recorded = [], []
        for i in range(repeat):
            pair = ((ingest, plain), (with_usage, recorded))
            for fn, times in pair if i % 2 == 0 else pair[::-1]:   # ABBA: the second of two runs is slower
                started = time.perf_counter()
                fn(i)
                times.append(time.perf_counter() - started)
        record = with_usage.last  # type: ignore[attr-defined]
    import statistics

    best_plain, best_recorded = min(plain), min(recorded)
    ab = (statistics.median(recorded) - statistics.median(plain)) / statistics.median(plain) * 100
    spread = (max(plain) - min(plain)) / statistics.median(plain) * 100      # of the unrecorded runs themselves
    verdict = "within" if abs(ab) <= spread else "outside"
    overhead = statistics.median(critical) / statistics.median(plain) * 100
    print(f"ingestion of {rows:,} payments: without {best_plain:.3f} s, with usage {best_recorded:.3f} s "
          f"(best of {repeat}); all runs: without {[round(t, 3) for t in plain]}, with {[round(t, 3) for t in recorded]}")
    print(record.summary())
    print(f"recording on the task's path: median {statistics.median(critical) * 1000:.1f} ms per run "
          f"({[round(c * 1000, 1) for c in critical]} ms)")
    print(f"ratio with/without (medians): {statistics.median(recorded) / statistics.median(plain):.4f} "
          f"(A/B difference {ab:+.2f} %, {verdict} the unrecorded runs' spread of {spread:.1f} %); "
          f"usage_overhead_pct {overhead:.2f}")
    if args.smoke:
        return
    from results import record as record_metric

    record_metric("usage_overhead_pct", overhead, unit="%", goal="<= 2", baseline="the same ingestion unrecorded",
                  command="python benchmarks/bench_usage.py",
                  notes=f"{rows:,} payments, LocalCluster 2x1: the recording's own time on the task's path "
                        f"(median {statistics.median(critical) * 1000:.1f} ms) over the median unrecorded run "
                        f"({statistics.median(plain):.3f} s); the A/B of medians, {ab:+.2f} %, is {verdict} the "
                        f"unrecorded runs' spread of {spread:.1f} % ({min(plain):.3f}-{max(plain):.3f} s)")


if __name__ == "__main__":
    main()
