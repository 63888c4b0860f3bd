"""What recording resource use costs: an ingestion run with and without the usage sampler around it.

    python benchmarks/bench_usage.py            # 200,000 payments, best of 5 runs each way
    python benchmarks/bench_usage.py --smoke    # 5,000 payments, 2 runs each, records nothing (CI)

Both ways run ``ingest_partition`` of the same day on the same LocalCluster (2 worker processes, 1 thread
each; started before timing). "With" wraps it exactly as ``DaskOperator`` does: the sampler (counters of
every worker process at the start and the end, the scheduler's worker metrics every 0.5 s), the cost from the
price table, the summary line, and the record written to the lake. The runs alternate (without, with, ...),
so drift of the machine hits both alike. ``usage_overhead_pct`` = (best with - best without) / best without
x 100 (goal <= 2). The printed ratio is best with / best without.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

DAY = dt.date(2026, 11, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    rows, repeat = (5_000, 2) if args.smoke else (200_000, 5)
    from distributed import Client, LocalCluster
    from mlscale.ingest import ingest_partition
    from mlscale.lake import Lake
    from mlscale.synthetic import generate_world
    from mlscale.usage import UsageSampler, load_prices, write_usage
    from mlscale.usage.cost import usage_cost

    logging.getLogger("mlscale").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp, \
            LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        lake = Lake(f"{tmp}/lake")
        generate_world(lake.write_bytes, start=DAY, days=1, rows_per_day=rows, seed=3)

        def ingest(i: int) -> None:
            ingest_partition(client=client, lake=lake, dt=str(DAY), run_id=f"bench-{i}", contract="transactions",
                             pii_key=b"bench-key")

        def with_usage(i: int) -> None:
            with UsageSampler(client) as usage:
                ingest(i)
            record = usage.record(dag_id="ingest_transactions", task_id="ingest", run_id=f"bench-{i}",
                                  try_number=1, day=str(DAY))
            record.cost = usage_cost(record, load_prices())
            logging.getLogger(__name__).info("%s", record.summary())
            write_usage(lake, record)
            with_usage.last = record  # type: ignore[attr-defined]

        ingest(-1)                                   # warm the workers (imports, first files)
        plain, recorded = [], []
        for i in range(repeat):
            for fn, times in ((ingest, plain), (with_usage, recorded)):
                started = time.perf_counter()
                fn(i)
                times.append(time.perf_counter() - started)
        record = with_usage.last  # type: ignore[attr-defined]
    best_plain, best_recorded = min(plain), min(recorded)
    overhead = (best_recorded - best_plain) / best_plain * 100
    print(f"ingestion of {rows:,} payments: without {best_plain:.3f} s, with usage {best_recorded:.3f} s "
          f"(best of {repeat}); all runs: without {[round(t, 3) for t in plain]}, with {[round(t, 3) for t in recorded]}")
    print(record.summary())
    print(f"ratio with/without: {best_recorded / best_plain:.4f}; usage_overhead_pct {overhead:.2f}")
    if args.smoke:
        return
    from results import record as record_metric

    record_metric("usage_overhead_pct", overhead, unit="%", goal="<= 2", baseline="the same ingestion unrecorded",
                  command="python benchmarks/bench_usage.py",
                  notes=f"{rows:,} payments, LocalCluster 2x1, best of {repeat} each: {best_plain:.3f} s vs "
                        f"{best_recorded:.3f} s")


if __name__ == "__main__":
    main()
