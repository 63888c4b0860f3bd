"""One day's drift check: sketch profiles + PSI/KS vs Evidently's full ``DataDriftPreset`` report.

    python benchmarks/bench_drift.py            # days of 1M and 5M rows x 30 features, 1M-row reference
    python benchmarks/bench_drift.py --smoke    # 20k rows, records nothing (CI)

Data: 30 features (19 normal, 5 Poisson counts, a model score in (0, 1), 5 string categoricals). The
training reference has ``--reference-rows`` rows; the current day is drawn from the same distributions
except 5 injected shifts: ``num_03`` +0.5 sd, ``num_08`` x1.65 (log-normal, +0.5 sd in log space),
``num_13`` sd x1.5, ``score`` +0.6 on the logit scale, ``cat_2`` a new category on 5 % of rows.

* ours: ``profile_table`` over the day's full data (vectorised, in-process, one thread, from the
  pyarrow Table as read from Parquet) + ``compare_profiles`` against the reference profile, which is
  built once at training time (its build time is printed, not counted). Best of 3 runs.
* baseline: ``evidently_drift_report(reference, day, sample_rows=None)``: Evidently 0.7
  ``Report([DataDriftPreset()]).run`` on the full reference and full day as pandas DataFrames (its
  input format; the Arrow -> pandas conversion and Evidently's import are not counted, in its favour),
  plus reading its per-column verdicts from the snapshot; no HTML is written. One run per size, in a
  separate process (same seeds, same data) stopped after 15 minutes, so that running out of memory or
  time is reported instead of ending the benchmark.

The ratio is baseline seconds / ours; each size is recorded as soon as it is measured.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

INJECTED = {"num_03", "num_08", "num_13", "score", "cat_2"}
CATEGORIES = [list("abcdef"), list("abcdefghij"), [f"m{i}" for i in range(12)], ["web", "app", "pos"],
              [f"r{i}" for i in range(8)]]
EVIDENTLY_LIMIT_S = 15 * 60


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def make_day(n: int, seed: int, *, drift: bool):
    """A pyarrow Table of ``n`` rows x 30 features (see the module docstring)."""
    import numpy as np
    import pyarrow as pa

    rng = np.random.default_rng(seed)
    cols: dict[str, Any] = {}
    for i in range(24):
        name = f"num_{i:02d}"
        if i in (5, 10, 15, 20):  # Poisson counts
            cols[name] = rng.poisson(3 + i % 4, n).astype(np.int64)
            continue
        if i in (8, 22):  # log-normal amounts
            z = rng.standard_normal(n) + (0.5 if drift and i == 8 else 0.0)
            cols[name] = np.exp(3.0 + z)
            continue
        x = rng.standard_normal(n) * (1.5 if drift and i == 13 else 1.0) + (0.5 if drift and i == 3 else 0.0)
        cols[name] = 10.0 * i + (1 + i % 3) * x
    cols["score"] = 1.0 / (1.0 + np.exp(-(rng.standard_normal(n) - 1.0 + (0.6 if drift else 0.0))))
    for j, cats in enumerate(CATEGORIES):
        dictionary = pa.array(cats + ["new"])
        codes = rng.integers(0, len(cats), n).astype(np.int32)
        if drift and j == 2:
            codes[rng.random(n) < 0.05] = len(cats)
        cols[f"cat_{j}"] = pa.DictionaryArray.from_arrays(pa.array(codes), dictionary).cast(pa.string())
    return pa.table(cols)


def best_of(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    best, out = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def evidently_child(n: int, ref_rows: int) -> None:
    """Child process: rebuild the same data (same seeds), time Evidently on it, print one JSON line."""
    import json

    import evidently  # noqa: F401  (import time is not Evidently's drift work)
    from mlscale.monitoring import evidently_drift_report

    ref_frame = make_day(ref_rows, seed=0, drift=False).to_pandas()
    frame = make_day(n, seed=1, drift=True).to_pandas()
    start = time.perf_counter()
    ev = evidently_drift_report(ref_frame, frame, None, sample_rows=None)
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "drifted": ev["drifted_columns"], "peak_rss_gib": peak_rss_gib()}))


def run_evidently(n: int, ref_rows: int) -> dict[str, Any]:
    """Evidently in a separate process, so that running out of memory or time ends only that process."""
    import json
    import subprocess

    cmd = [sys.executable, __file__, "--evidently-child", str(n), "--reference-rows", str(ref_rows)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=EVIDENTLY_LIMIT_S)
    except subprocess.TimeoutExpired:
        return {"error": f"did not finish within {EVIDENTLY_LIMIT_S}s (stopped)"}
    if proc.returncode != 0:
        reason = "killed by signal 9, most likely out of memory" if proc.returncode == -9 else \
            f"exit code {proc.returncode}: {proc.stderr.strip().splitlines()[-1:]}"
        return {"error": reason}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def time_ours(data: Any, reference: Any, repeat: int) -> tuple[float, Any]:
    """Best-of-``repeat`` seconds of profiling ``data`` on the reference's edges and comparing."""
    from mlscale.monitoring import DriftThresholds, compare_profiles, profile_table, reference_edges

    edges = reference_edges(reference)
    thresholds = DriftThresholds(critical=("score",))
    return best_of(lambda: compare_profiles(reference, profile_table(data, edges=edges), thresholds), repeat)


def run_size(n: int, reference: Any, ref_rows: int, repeat: int) -> dict[str, Any]:
    day = make_day(n, seed=1, drift=True)
    ours_s, result = time_ours(day, reference, repeat)
    ours_set = set(result.drifted_features)
    print(f"[{n:,} rows] ours: profile + compare {ours_s:.2f}s ({n / ours_s / 1e6:.2f}M rows/s), verdict "
          f"{result.verdict}, drifted {sorted(ours_set)}; peak RSS {peak_rss_gib():.1f} GiB", flush=True)
    frame = day.to_pandas()
    del day
    pandas_s, _ = time_ours(frame, reference, 1)
    print(f"[{n:,} rows] (info) ours from a pandas DataFrame instead: {pandas_s:.2f}s", flush=True)
    del frame
    out: dict[str, Any] = {"n": n, "ours_s": ours_s, "ours_set": ours_set, "pandas_s": pandas_s}
    ev = run_evidently(n, ref_rows)
    if "error" in ev:
        out["evidently_error"] = ev["error"]
        print(f"[{n:,} rows] evidently DataDriftPreset full report: {ev['error']}; no ratio for this size",
              flush=True)
    else:
        out["evidently_s"], out["evidently_set"] = ev["seconds"], set(ev["drifted"])
        out["evidently_rss"] = ev["peak_rss_gib"]
        print(f"[{n:,} rows] evidently DataDriftPreset full report: {ev['seconds']:.2f}s, drifted "
              f"{sorted(ev['drifted'])}; its process peak RSS {ev['peak_rss_gib']:.1f} GiB", flush=True)
    return out


def report(r: dict[str, Any], ref_rows: int, smoke: bool) -> None:
    n = r["n"]
    if "evidently_s" not in r:
        print(f"{n:,} rows: ours {r['ours_s']:.2f}s; evidently {r['evidently_error']}: no ratio measured")
        return
    ratio = r["evidently_s"] / r["ours_s"]
    print(f"{n:,} rows x 30 features: evidently {r['evidently_s']:.2f}s / ours {r['ours_s']:.2f}s -> ratio "
          f"{ratio:.1f}x (goal >= 20 at 5M); ours == evidently: {r['ours_set'] == r['evidently_set']}; "
          f"ours == injected: {r['ours_set'] == INJECTED}; evidently == injected: {r['evidently_set'] == INJECTED}",
          flush=True)
    if smoke:
        return
    from results import record

    millions = n // 1_000_000
    record(f"drift_vs_evidently_speedup_{millions}m", ratio, unit="x",
           goal=">= 20" if millions == 5 else "- (goal is set at 5M rows)",
           baseline=f"evidently DataDriftPreset full report, same data: {r['evidently_s']:.1f}s "
                    f"({n:,}-row day + {ref_rows:,}-row reference, 30 features, peak RSS "
                    f"{r['evidently_rss']:.1f} GiB)",
           command="python benchmarks/bench_drift.py",
           notes=f"ours {r['ours_s']:.2f}s = profile_table over the full day (in-process, 1 thread, Arrow "
                 f"input; {r['pandas_s']:.2f}s from pandas) + compare_profiles vs a stored reference profile; "
                 f"drifted sets: ours == injected {r['ours_set'] == INJECTED}, evidently == injected "
                 f"{r['evidently_set'] == INJECTED}; load average {os.getloadavg()[0]:.1f} at the end")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="20k rows, record nothing")
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 5_000_000])
    parser.add_argument("--reference-rows", type=int, default=1_000_000)
    parser.add_argument("--evidently-child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.evidently_child:
        evidently_child(args.evidently_child, args.reference_rows)
        return
    sizes, ref_rows = ([20_000], 20_000) if args.smoke else (args.rows, args.reference_rows)
    repeat = 1 if args.smoke else 3

    from mlscale.monitoring import profile_table

    ref_table = make_day(ref_rows, seed=0, drift=False)
    start = time.perf_counter()
    reference = profile_table(ref_table)
    build_s = time.perf_counter() - start
    del ref_table
    print(f"reference: {ref_rows:,} rows x {len(reference.columns)} features, profile built once in "
          f"{build_s:.2f}s, {len(reference.to_json()) / 1024:.0f} KiB as JSON; injected drift: "
          f"{sorted(INJECTED)}; critical: score", flush=True)
    for n in sizes:
        r = run_size(n, reference, ref_rows, repeat)
        report(r, ref_rows, args.smoke)
        if "evidently_s" not in r:
            print("larger sizes are not run for Evidently's sake either")
            break


if __name__ == "__main__":
    main()
