"""Full scan of one day stored as 500+ small files vs the same day after compaction on Spark.

    python benchmarks/bench_compaction.py           # 1,000 files x 1,000 rows
    python benchmarks/bench_compaction.py --smoke   # 20 files, records nothing (CI)

Both scans read through the manifest with pyarrow (as every reader in the project does); each is the
best of 3. The compaction job's wall time is split into Spark start-up and work, as reported by the job.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
ROOT = Path(__file__).resolve().parents[1]


def build_day(lake, files: int, rows: int) -> None:
    import numpy as np
    import pyarrow as pa
    from mlscale.lake import PartitionRef

    rng = np.random.default_rng(0)
    schema = pa.schema([("event_id", pa.string()), ("event_ts", pa.timestamp("us", tz="UTC")),
                        ("customer_id", pa.string()), ("merchant_id", pa.string()), ("amount", pa.float64()),
                        ("currency", pa.string()), ("channel", pa.string())])
    ref = PartitionRef.of("raw", "transactions", "2026-11-01")
    with lake.writer(ref, run_id="bench", schema=schema) as writer:
        for i in range(files):
            writer.write(pa.table({
                "event_id": [f"T{i:05d}-{j:06d}" for j in range(rows)],
                "event_ts": pa.array(rng.integers(1_790_000_000_000_000, 1_790_086_400_000_000, rows),
                                     pa.timestamp("us", tz="UTC")),
                "customer_id": [f"C{v:07d}" for v in rng.integers(0, 50_000, rows)],
                "merchant_id": [f"M{v:06d}" for v in rng.integers(0, 5_000, rows)],
                "amount": rng.lognormal(3, 1, rows).round(2),
                "currency": rng.choice(["EUR", "GBP", "PLN"], rows),
                "channel": rng.choice(["pos", "ecom"], rows),
            }, schema=schema), subdir=f"region={['NL', 'DE', 'FR', 'PL'][i % 4]}")


def scan_seconds(lake) -> float:
    from mlscale.lake import PartitionRef

    ref = PartitionRef.of("raw", "transactions", "2026-11-01")
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        table = lake.read_table(ref)
        table.column("amount").to_numpy().sum()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--rows", type=int, default=1_000)
    args = parser.parse_args()
    files, rows = (20, 200) if args.smoke else (args.files, args.rows)

    from mlscale.compaction import plan_compaction
    from mlscale.lake import Lake

    with tempfile.TemporaryDirectory() as tmp:
        lake = Lake(f"{tmp}/lake")
        build_day(lake, files, rows)
        before = scan_seconds(lake)
        plan = plan_compaction(lake, zone="raw", datasets=["transactions"], first_day="2026-11-01",
                               last_day="2026-11-01", run_id="bench", sort_columns={"transactions": ["event_ts"]})
        env = dict(os.environ, PYSPARK_PYTHON=sys.executable, PYSPARK_DRIVER_PYTHON=sys.executable)
        start = time.perf_counter()
        out = subprocess.run([str(Path(sys.executable).with_name("spark-submit")), "--master", "local[*]",
                              str(ROOT / "include/mlscale/spark_apps/compact_partitions.py"), "--plan", plan.plan_key,
                              "--lake", lake.root], env=env, capture_output=True, text=True, check=True)
        job_wall = time.perf_counter() - start
        job = json.loads(next(line for line in out.stdout.splitlines() if line.startswith('{"spark_startup_s"')))
        after = scan_seconds(lake)
        files_after = job["partitions"][0]["files_after"]
    speedup = before / after
    print(f"{files} files x {rows:,} rows: scan {before * 1000:.0f} ms before, {after * 1000:.0f} ms after "
          f"({files_after} files) -> ratio {speedup:.1f}x (goal >= 5); compaction job {job_wall:.1f}s wall = "
          f"Spark start-up {job['spark_startup_s']}s + work {job['work_s']}s (+ JVM launch)")
    if args.smoke:
        return
    from results import record

    command = "python benchmarks/bench_compaction.py"
    record("compaction_scan_speedup", speedup, unit="x (scan before / after)", goal=">= 5",
           baseline=f"{files} files x {rows} rows: {before * 1000:.0f} ms", command=command,
           notes=f"after: {files_after} files, {after * 1000:.0f} ms")
    record("compaction_job_wall_s", job_wall, unit="s", goal="-", baseline="-", command=command,
           notes=f"Spark start-up {job['spark_startup_s']}s, work {job['work_s']}s")


if __name__ == "__main__":
    main()
