"""Batch scoring throughput: the Dask scoring path of ``score_batch`` vs one process calling XGBoost directly.

    python benchmarks/bench_scoring.py            # 1M rows x 30 features, LocalCluster 2 workers x 1 thread
    python benchmarks/bench_scoring.py --smoke    # 20k rows, records nothing (CI)

Data: a synthetic frame of 30 float32 features (26 normal, 4 log-normal amounts), every row distinct, with a
binary label from a logistic function of 8 of them. The model is a real XGBoost booster (depth 6, 100
rounds; 20 in smoke mode) trained in the benchmark on 100k rows (not timed), saved to a temporary lake as
a :class:`mlscale.training.StoredModel`, exactly as ``train_model`` stores versions.

* ours: :func:`mlscale.scoring.score_inputs` on a ``LocalCluster(n_workers=2, threads_per_worker=1,
  processes=True)``, from the pandas frame to one score per row in the frame's order: the input-hash
  dedupe, the float32 cast, the warm-up (each worker loads the model from the lake once per run), scatter
  of the partitions (100k rows each, so 10 partitions for 1M rows), scoring with ``nthread=1`` per worker,
  gather, and the release of the models (with the load count). Best of 3 runs after a warm-up run.
* baseline: ``booster.inplace_predict`` on the same booster in this process, with ``nthread=2`` (the same
  two cores as the two single-thread workers), on a float32 NumPy array prepared outside the timing (in
  its favour: no dedupe, no pandas). Best of 3 runs after a warm-up run.

The scores of both paths are checked equal. The ratio is ours rows/s divided by the baseline rows/s
(baseline seconds / our seconds; above 1 means the cluster path is faster). The model loads of a run are
printed and recorded: they must equal the number of workers (not the number of partitions).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

FEATURES = 30
WORKERS = 2
TRAIN_ROWS = 100_000
ROWS_PER_PARTITION = 100_000


def best_of(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    best, out = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def make_frame(n: int, seed: int = 0):
    """``n`` rows x 30 float32 features and a 0/1 label (see the module docstring)."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    values = rng.standard_normal((n, FEATURES)).astype(np.float32)
    values[:, -4:] = np.exp(values[:, -4:])  # amounts
    logit = -4.0 + values[:, :6] @ np.array([0.9, -0.7, 0.5, 0.4, -0.3, 0.2], dtype=np.float32) \
        + 0.6 * np.log1p(values[:, -1]) + 0.3 * values[:, -2]
    label = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int8)
    return pd.DataFrame(values, columns=[f"f{i:02d}" for i in range(FEATURES)]), label


def train(frame, label, rounds: int) -> bytes:
    import xgboost as xgb

    booster = xgb.train({"max_depth": 6, "eta": 0.1, "objective": "binary:logistic", "tree_method": "hist",
                         "nthread": WORKERS}, xgb.DMatrix(frame, label=label), num_boost_round=rounds)
    return bytes(booster.save_raw("ubj"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny data, record nothing")
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    n = 20_000 if args.smoke else args.rows
    rounds = 20 if args.smoke else 100
    repeat = 2 if args.smoke else 3

    import logging
    import warnings

    import numpy as np
    import xgboost as xgb
    from distributed import Client, LocalCluster
    from mlscale.lake import Lake
    from mlscale.scoring import ModelRef, score_inputs
    from mlscale.training import StoredModel

    logging.getLogger("distributed").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message="Port .* is already in use")  # another cluster's dashboard
    frame, label = make_frame(n)
    train_n = min(TRAIN_ROWS, n)
    raw = train(frame.iloc[:train_n], label[:train_n], rounds)
    columns = list(frame.columns)
    X = frame.to_numpy(dtype=np.float32)

    plain = xgb.Booster()
    plain.load_model(bytearray(raw))
    plain.set_param({"nthread": WORKERS})
    plain.inplace_predict(X[:1000])  # warm-up
    plain_s, expected = best_of(lambda: plain.inplace_predict(X), repeat)

    with tempfile.TemporaryDirectory(prefix="bench_scoring_") as root, \
            LocalCluster(n_workers=WORKERS, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        lake = Lake(root)
        StoredModel(name="bench_model", version="1", algorithm="xgboost", features=tuple(columns), raw=raw).save(lake)
        refs = [ModelRef("bench_model", "1", "champion")]

        def ours() -> Any:
            return score_inputs(client, lake, frame, columns, refs, rows_per_partition=ROWS_PER_PARTITION)

        ours()  # warm-up (imports on the workers)
        ours_s, scored = best_of(ours, repeat)
    got = scored.scores["champion"]
    if not np.allclose(got, expected, rtol=0, atol=1e-6):
        raise SystemExit(f"scores differ: max |ours - plain| = {np.abs(got - expected).max()}")
    loads = scored.loads["champion"]
    if loads != scored.workers:
        raise SystemExit(f"model loads {loads} != workers {scored.workers}")

    ours_rate, plain_rate = n / ours_s, n / plain_s
    ratio = ours_rate / plain_rate
    print(f"{n:,} rows x {FEATURES} features, XGBoost {rounds} rounds depth 6; {scored.partitions} partitions on "
          f"{scored.workers} workers x 1 thread")
    print(f"ours (score_inputs on Dask): {ours_s:.3f} s = {ours_rate:,.0f} rows/s; model loads per run "
          f"{loads} (workers {scored.workers}, partitions {scored.partitions})")
    print(f"plain inplace_predict nthread={WORKERS} in one process: {plain_s:.3f} s = {plain_rate:,.0f} rows/s")
    print(f"dask vs single-process throughput -> ratio {ratio:.2f}x")
    if args.smoke:
        return
    from results import record

    command = "python benchmarks/bench_scoring.py"
    record("scoring_dask_vs_single_throughput_ratio", ratio, unit="x (our rows/s / plain rows/s)", goal="-",
           baseline=f"booster.inplace_predict nthread={WORKERS}, one process, float32 NumPy input: {plain_s:.2f}s "
                    f"({plain_rate:,.0f} rows/s)",
           command=command,
           notes=f"ours {ours_s:.2f}s ({ours_rate:,.0f} rows/s): score_inputs on LocalCluster {WORKERS} workers x 1 "
                 f"thread, {scored.partitions} partitions, dedupe + warm-up + scatter + gather included; {n:,} rows x "
                 f"{FEATURES} features, {rounds} rounds; best of {repeat}; load average "
                 f"{os.getloadavg()[0]:.1f} at the end")
    record("scoring_model_loads_per_run", loads, unit="loads", goal=f"= workers ({scored.workers})",
           baseline=f"{scored.partitions} partitions (a load per partition would be {scored.partitions})",
           command=command, notes="counted in the worker-side model cache, collected with client.run")


if __name__ == "__main__":
    main()
