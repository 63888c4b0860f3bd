"""Ingestion throughput vs plain pyarrow CSV/JSON → Parquet of the same files, and peak memory.

    python benchmarks/bench_ingest.py            # 1M rows/day, plus peak memory at 5M rows/day
    python benchmarks/bench_ingest.py --smoke    # tiny, records nothing (CI)

Ours: ``ingest_partition`` (validation, quarantine, dedupe, HMAC pseudonymisation, manifest commit) on a
LocalCluster of 2 single-threaded worker processes; the cluster is started before timing (a standing
resource in production). Baseline: pyarrow reads each landing file and writes it to Parquet (zstd) in this
process. pyarrow's JSON reader stops at the first malformed line, so the baseline reads JSON files with
the malformed and mixed-type lines removed beforehand (outside the timing). Peak memory is what ingestion
adds: the driver's growth during the run plus twice the largest worker (the generator's own memory in this
process is not counted).
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

DAY = dt.date(2026, 11, 2)
CONTRACT_SOURCES = {"acquirer_a": ",", "acquirer_b": ";"}


def plain_conversion(lake_dir: Path, out_dir: Path) -> tuple[float, int]:
    import pyarrow.csv as pcsv
    import pyarrow.json as pjson
    import pyarrow.parquet as pq

    files = sorted((lake_dir / f"landing/transactions/dt={DAY}").iterdir())
    inputs = []
    for f in files:
        if f.name.endswith(".jsonl"):
            clean = out_dir / f"clean-{f.name}"
            good = []
            for line in f.read_bytes().splitlines():
                try:
                    obj = json.loads(line)
                except ValueError:
                    continue
                if isinstance(obj, dict) and isinstance(obj.get("amount"), (int, float)):
                    good.append(line)
            clean.write_bytes(b"\n".join(good) + b"\n")
            inputs.append(("json", clean))
        else:
            inputs.append(("csv", f))
    rows = 0
    start = time.perf_counter()
    for i, (kind, path) in enumerate(inputs):
        if kind == "json":
            table = pjson.read_json(path)
        else:
            delimiter = CONTRACT_SOURCES[path.name.split("__")[0]]
            source = gzip.open(path) if path.suffix == ".gz" else path
            try:
                table = pcsv.read_csv(source, parse_options=pcsv.ParseOptions(
                    delimiter=delimiter, invalid_row_handler=lambda row: "skip"))
            except Exception:  # noqa: BLE001 - a file the plain reader cannot parse is simply skipped
                continue
        pq.write_table(table, out_dir / f"plain-{i}.parquet", compression="zstd")
        rows += table.num_rows
    return time.perf_counter() - start, rows


class PeakRss:
    """Peak resident memory of this process and its children (the Dask workers), sampled."""

    def __init__(self) -> None:
        import psutil

        self.proc = psutil.Process()
        self.peak = 0
        self.driver_peak = 0
        self.worker_peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            driver = self.proc.memory_info().rss
            total = driver
            for child in self.proc.children(recursive=True):
                try:
                    rss = child.memory_info().rss
                except Exception:  # noqa: BLE001 - a child may exit while sampled
                    continue
                total += rss
                self.worker_peak = max(self.worker_peak, rss)
            self.driver_peak = max(self.driver_peak, driver)
            self.peak = max(self.peak, total)

    def __enter__(self) -> PeakRss:
        self.driver_start = self.proc.memory_info().rss
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def run_ours(lake_dir: Path, client) -> tuple[float, object, int, int]:
    """Ingest the day (the day before first, untimed): seconds, result, peak RSS (driver growth + 2 x the largest
    worker) and the largest worker's peak RSS."""
    from mlscale.ingest import ingest_partition
    from mlscale.lake import Lake

    lake = Lake(str(lake_dir))
    # the day before is ingested first (untimed), so dedupe checks re-deliveries against it as in production
    ingest_partition(client=client, lake=lake, dt=str(DAY - dt.timedelta(days=1)), run_id="bench-previous",
                     contract="transactions", pii_key=b"bench-key")
    with PeakRss() as mem:
        start = time.perf_counter()
        result = ingest_partition(client=client, lake=lake, dt=str(DAY), run_id="bench", contract="transactions",
                                  pii_key=b"bench-key")
        elapsed = time.perf_counter() - start
    growth = mem.driver_peak - mem.driver_start
    print(f"  peak RSS: driver {mem.driver_peak / 2**20:,.0f} MiB (+{growth / 2**20:,.0f} MiB during ingestion), "
          f"largest worker {mem.worker_peak / 2**20:,.0f} MiB")
    return elapsed, result, growth + mem.worker_peak * 2, mem.worker_peak


def generate(lake_dir: Path, rows: int) -> None:
    from mlscale.lake import Lake
    from mlscale.synthetic import generate_world

    generate_world(Lake(str(lake_dir)).write_bytes, start=DAY - dt.timedelta(days=1), days=2, rows_per_day=rows,
                   seed=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny data, record nothing")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--memory-rows", type=int, default=5_000_000, help="second size for the memory check")
    args = parser.parse_args()
    rows = 5_000 if args.smoke else args.rows
    from distributed import Client, LocalCluster
    from mlscale.compute import _main_not_reimported

    with tempfile.TemporaryDirectory() as tmp, _main_not_reimported(), \
            LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                         memory_limit="8GiB") as cluster, Client(cluster) as client:
        lake_dir = Path(tmp) / "lake"
        out_dir = Path(tmp) / "plain"
        out_dir.mkdir()
        generate(lake_dir, rows)
        plain_s, plain_rows = plain_conversion(lake_dir, out_dir)
        ours_s, result, peak, worker_peak = run_ours(lake_dir, client)
        ratio = ours_s / plain_s
        print(f"rows/day {rows:,}: plain pyarrow {plain_s:.2f}s ({plain_rows / plain_s:,.0f} rows/s), "
              f"ingest {ours_s:.2f}s ({result.rows_in / ours_s:,.0f} rows/s) -> ratio {ratio:.2f} (goal <= 2.0); "
              f"peak RSS {peak / 2**20:,.0f} MiB; written {result.rows_written:,}, quarantined "
              f"{result.rows_quarantined:,}, duplicates {result.rows_duplicate:,}")
        peaks = {rows: peak}
        if not args.smoke and args.memory_rows:
            big_dir = Path(tmp) / "lake_big"
            generate(big_dir, args.memory_rows)
            big_s, big_result, big_peak, big_worker_peak = run_ours(big_dir, client)
            peaks[args.memory_rows] = big_peak
            worker_growth = (big_worker_peak / worker_peak - 1) * 100
            print(f"rows/day {args.memory_rows:,}: ingest {big_s:.2f}s, peak RSS {big_peak / 2**20:,.0f} MiB; largest "
                  f"worker {worker_peak / 2**20:,.0f} -> {big_worker_peak / 2**20:,.0f} MiB ({worker_growth:+.0f}%, "
                  f"goal <= +10%)")
    if args.smoke:
        return
    from results import record

    command = "python benchmarks/bench_ingest.py"
    record("ingest_vs_pyarrow_ratio", ratio, unit="x (our wall time / plain wall time)", goal="<= 2.0",
           baseline=f"pyarrow CSV/JSON -> Parquet zstd, same {rows:,}-row day: {plain_s:.2f}s", command=command,
           notes=f"ingest {ours_s:.2f}s on LocalCluster 2x1 processes")
    record("ingest_rows_per_s", result.rows_in / ours_s, unit="rows/s", goal="-", baseline=f"{plain_rows / plain_s:,.0f} rows/s plain",
           command=command)
    if len(peaks) > 1:
        record(f"ingest_worker_peak_rss_growth_{rows // 1_000_000}m_to_{args.memory_rows // 1_000_000}m",
               worker_growth, unit="% (largest worker's peak at the larger day over the smaller, minus 100)",
               goal="<= 10", baseline=f"largest worker at {rows:,} rows/day: {worker_peak / 2**20:,.0f} MiB",
               command=command, notes=f"largest worker at {args.memory_rows:,} rows/day: "
                                      f"{big_worker_peak / 2**20:,.0f} MiB; the same 2 worker processes run both "
                                      "days, one after the other")
    for n, value in peaks.items():
        record(f"ingest_peak_rss_mib_{n // 1_000_000}m", value / 2**20, unit="MiB (driver growth + 2 x largest worker)",
               goal="flat in day size", baseline="-", command=command)


if __name__ == "__main__":
    main()
