"""Distributed gradient boosting on a Dask LocalCluster vs single-process training, same thread budget.

    python benchmarks/bench_training.py            # 1M rows x 30 features, 800k/200k split, 100 rounds
    python benchmarks/bench_training.py --smoke    # 20k rows, 10 rounds, records nothing (CI)
    python benchmarks/bench_training.py --device cuda   # on a GPU machine: one GPU vs the CPU Dask path

``--device cuda`` (needs a CUDA GPU, dask-cuda and CuPy) trains the same data and rounds with ``xgboost.dask`` on
the ``dask_gpu_default`` cluster (``LocalCUDACluster``, ``device=cuda``) and on this project's default CPU Dask
path (``dask_cpu_default``: a LocalCluster of 2 workers x 1 thread), and records ``xgb_gpu_vs_cpu_speedup`` (CPU
wall / GPU wall, the quantile matrix build + train timed) and ``scoring_gpu_rows_per_s`` (``score_inputs`` on
the GPU workers, ``inplace_predict`` on CuPy input, the validation rows, warm-up excluded), naming the GPU.

Synthetic data (numpy, seeded): 30 float32 features, a binary label drawn from a nonlinear logit whose
intercept is calibrated to ~3% positives. Both libraries are run twice on the same train/validation split:

* distributed: ``distributed.LocalCluster(n_workers=2, threads_per_worker=1)``; the training arrays are
  built with ``dask.array.from_array`` and persisted on the workers (one or more chunks per worker) before
  any timing. XGBoost: ``xgboost.dask.DaskQuantileDMatrix`` + ``xgboost.dask.train``; LightGBM:
  ``lightgbm.DaskLGBMClassifier.fit`` (which sets ``num_threads`` to the worker's 1 thread).
* single process: ``xgboost.QuantileDMatrix`` + ``xgboost.train`` with ``nthread=2``; ``lightgbm.train``
  with ``num_threads=2``.

Same hyper-parameters on both sides (hist, max_depth 8, learning rate 0.1, 256 bins, 100 rounds, no early
stopping). Only the training is timed: the quantile matrix build + ``train`` for XGBoost (its binning,
which LightGBM does inside ``train`` / ``fit``), and ``train`` / ``fit`` for LightGBM; data generation,
persisting, and prediction are outside the timing. Each side gets a small warm-up fit first (imports on
the workers, thread pools). Validation ROC-AUC is computed in this process on the same numpy validation
set from the resulting boosters (the Dask models are brought back as local boosters).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

N_FEATURES = 30
THREADS = 2
MAX_DEPTH = 8
LEARNING_RATE = 0.1
MAX_BIN = 256
TARGET_POSITIVE_RATE = 0.03


def make_data(n: int, seed: int = 0):
    """``X`` float32 ``[n, 30]`` and a 0/1 label from a nonlinear logit with ~3% positives."""
    import numpy as np

    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, N_FEATURES), dtype=np.float32)
    x64 = x.astype(np.float64)
    f = (1.5 * np.sin(2.0 * x64[:, 0]) + x64[:, 1] * x64[:, 2] + 0.6 * x64[:, 3] ** 2
         - 0.8 * np.abs(x64[:, 4]) + 1.2 * np.tanh(x64[:, 5] + x64[:, 6])
         + 0.9 * (x64[:, 7] > 0.5) * x64[:, 8] + 0.3 * x64[:, 9:15].sum(axis=1)
         + 0.5 * np.maximum(x64[:, 15] - x64[:, 16], 0.0))
    lo, hi = -20.0, 5.0  # bisect the intercept so that the mean probability hits the target rate
    for _ in range(60):
        mid = (lo + hi) / 2
        if (1.0 / (1.0 + np.exp(-(f + mid)))).mean() < TARGET_POSITIVE_RATE:
            lo = mid
        else:
            hi = mid
    p = 1.0 / (1.0 + np.exp(-(f + lo)))
    y = (rng.random(n) < p).astype(np.float32)
    return x, y


def xgb_params(nthread: int | None) -> dict[str, Any]:
    params: dict[str, Any] = {"objective": "binary:logistic", "eval_metric": "auc", "tree_method": "hist",
                              "max_depth": MAX_DEPTH, "eta": LEARNING_RATE, "max_bin": MAX_BIN, "seed": 0,
                              "verbosity": 0}
    if nthread is not None:
        params["nthread"] = nthread
    return params


def lgbm_params() -> dict[str, Any]:
    return {"objective": "binary", "max_depth": MAX_DEPTH, "num_leaves": 2 ** MAX_DEPTH - 1,
            "learning_rate": LEARNING_RATE, "max_bin": MAX_BIN - 1, "seed": 0, "verbose": -1}


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def xgb_single(x, y, rounds: int):
    import xgboost as xgb

    def fit():
        dtrain = xgb.QuantileDMatrix(x, y, max_bin=MAX_BIN, nthread=THREADS)
        return xgb.train(xgb_params(THREADS), dtrain, num_boost_round=rounds)

    return timed(fit)


def xgb_dask(client, dx, dy, rounds: int):
    import xgboost as xgb
    import xgboost.dask  # noqa: F401  (the submodule is not imported by ``import xgboost``)

    def fit():
        dtrain = xgb.dask.DaskQuantileDMatrix(client, dx, dy, max_bin=MAX_BIN)
        return xgb.dask.train(client, xgb_params(None), dtrain, num_boost_round=rounds)["booster"]

    return timed(fit)


def lgbm_single(x, y, rounds: int):
    import lightgbm as lgb

    def fit():
        return lgb.train({**lgbm_params(), "num_threads": THREADS}, lgb.Dataset(x, y), num_boost_round=rounds)

    return timed(fit)


def lgbm_dask(client, dx, dy, rounds: int):
    import lightgbm as lgb

    def fit():
        model = lgb.DaskLGBMClassifier(client=client, n_estimators=rounds, **lgbm_params())
        return model.fit(dx, dy).to_local().booster_

    return timed(fit)


def persist_on_workers(client, arr, chunk_rows: int):
    """``arr`` as a dask array persisted on the workers; returns it and ``{worker: n_chunks}``."""
    import dask.array as da
    from distributed import wait

    chunks = (chunk_rows,) + arr.shape[1:]
    darr = client.persist(da.from_array(arr, chunks=chunks))
    wait(darr)
    placement: dict[str, int] = {}
    for workers in client.who_has(darr).values():
        for w in workers:
            placement[w] = placement.get(w, 0) + 1
    return darr, placement


def gpu_name() -> str:
    import subprocess

    out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                         text=True, check=False).stdout.strip()
    return out.splitlines()[0] if out else "unknown GPU"


def gpu_scoring_seconds(client: Any, booster: Any, rows: Any) -> float:
    """Seconds of ``score_inputs(gpu=True)`` over ``rows`` with ``booster`` stored as a model (warm-up excluded)."""
    import tempfile

    import pandas as pd
    from mlscale.lake import Lake
    from mlscale.scoring import ModelRef, score_inputs
    from mlscale.training.model import StoredModel

    features = tuple(f"f{i}" for i in range(N_FEATURES))
    frame = pd.DataFrame(rows, columns=list(features))
    ref = [ModelRef("bench", "1", "champion")]
    with tempfile.TemporaryDirectory() as root:
        lake = Lake(root)
        StoredModel(name="bench", version="1", algorithm="xgboost", features=features,
                    raw=bytes(booster.save_raw("ubj")), doc={}).save(lake)
        score_inputs(client, lake, frame.head(1000), features, ref, rows_per_partition=100_000, gpu=True)
        _, seconds = timed(lambda: score_inputs(client, lake, frame, features, ref, rows_per_partition=100_000,
                                                gpu=True))
    return seconds


def gpu_main(n: int, rounds: int, *, record_results: bool) -> None:
    """One GPU (``dask_gpu_default``) vs the CPU Dask path (``dask_cpu_default``), same data and rounds."""
    import xgboost as xgb
    import xgboost.dask  # noqa: F401
    from mlscale.compute import ClusterSpec, open_client

    x, y = make_data(n)
    n_train = int(n * 0.8)
    x_tr, y_tr, x_va = x[:n_train], y[:n_train], x[n_train:]
    walls: dict[str, float] = {}
    boosters: dict[str, Any] = {}
    for device, spec in (("cuda", ClusterSpec(name="dask_gpu_default", gpu=True, dashboard_address=None)),
                         ("cpu", ClusterSpec(name="dask_cpu_default", n_workers=2, threads_per_worker=1,
                                             dashboard_address=None))):
        with open_client(spec) as client:
            chunk_rows = -(-n_train // 4)
            dx, _ = persist_on_workers(client, x_tr, chunk_rows)
            dy, _ = persist_on_workers(client, y_tr, chunk_rows)
            params = {**xgb_params(None), "device": device}

            def fit(rounds_: int, client=client, dx=dx, dy=dy, params=params):
                dtrain = xgb.dask.DaskQuantileDMatrix(client, dx, dy, max_bin=MAX_BIN)
                return xgb.dask.train(client, params, dtrain, num_boost_round=rounds_)["booster"]

            fit(2)  # warm-up
            boosters[device], walls[device] = timed(lambda fit=fit: fit(rounds))
            if device == "cuda":
                walls["score"] = gpu_scoring_seconds(client, boosters[device], x_va)
    speedup, rows_per_s, gpu = walls["cpu"] / walls["cuda"], len(x_va) / walls["score"], gpu_name()
    print(f"{gpu}: xgboost.dask device=cuda {walls['cuda']:.2f}s vs CPU Dask (2 workers x 1 thread) "
          f"{walls['cpu']:.2f}s -> speedup {speedup:.1f}x; GPU scoring {rows_per_s:,.0f} rows/s "
          f"({len(x_va):,} rows, {os.cpu_count()} CPU cores)")
    if not record_results:
        return
    from results import record

    command = "python benchmarks/bench_training.py --device cuda"
    shape = f"{n_train:,} x {N_FEATURES} rows, {rounds} rounds, max_depth {MAX_DEPTH}, {MAX_BIN} bins"
    record("xgb_gpu_vs_cpu_speedup", speedup, unit="x (CPU Dask wall / GPU wall)", goal="-", command=command,
           baseline=f"xgboost.dask on dask_cpu_default (LocalCluster 2 workers x 1 thread): {walls['cpu']:.2f}s",
           notes=f"{gpu}, LocalCUDACluster, device=cuda: {walls['cuda']:.2f}s; {shape}; quantile matrix build + "
                 f"train timed; {os.cpu_count()} CPU cores on the machine")
    record("scoring_gpu_rows_per_s", rows_per_s, unit="rows/s", goal="-", command=command,
           baseline="-", notes=f"{gpu}: score_inputs(gpu=True), {len(x_va):,} distinct rows x {N_FEATURES}, "
                               f"warm-up excluded, inplace_predict on CuPy input")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny data, record nothing")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                        help="cuda: one GPU vs the CPU Dask path (see the module docstring)")
    args = parser.parse_args()
    n, rounds = (20_000, 10) if args.smoke else (args.rows, args.rounds)
    if args.device == "cuda":
        gpu_main(n, rounds, record_results=not args.smoke)
        return
    n_train = int(n * 0.8)

    import logging

    import xgboost as xgb
    from distributed import Client, LocalCluster
    from sklearn.metrics import roc_auc_score

    warnings.filterwarnings("ignore", category=UserWarning)
    logging.getLogger("distributed").setLevel(logging.ERROR)

    x, y = make_data(n)
    x_tr, y_tr, x_va, y_va = x[:n_train], y[:n_train], x[n_train:], y[n_train:]
    print(f"{n:,} rows x {N_FEATURES} features, train {n_train:,} / validation {n - n_train:,}, "
          f"positives {y.mean():.2%}; {rounds} rounds, max_depth {MAX_DEPTH}, lr {LEARNING_RATE}, "
          f"{MAX_BIN} bins; {THREADS} threads per side")

    def auc_xgb(booster) -> float:
        booster.set_param({"nthread": THREADS})
        return float(roc_auc_score(y_va, booster.predict(xgb.DMatrix(x_va, nthread=THREADS))))

    def auc_lgbm(booster) -> float:
        return float(roc_auc_score(y_va, booster.predict(x_va, num_threads=THREADS)))

    results: dict[str, dict[str, float]] = {}
    warm_n = min(n_train, 5_000)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                      silence_logs=logging.ERROR) as cluster, Client(cluster) as client:
        chunk_rows = -(-n_train // 4)  # 4 chunks, spread over the 2 workers
        dx, placement = persist_on_workers(client, x_tr, chunk_rows)
        dy, _ = persist_on_workers(client, y_tr, chunk_rows)
        wx, _ = persist_on_workers(client, x_tr[:warm_n], -(-warm_n // 2))
        wy, _ = persist_on_workers(client, y_tr[:warm_n], -(-warm_n // 2))
        print("training chunks per worker: " + ", ".join(f"{w.rsplit(':', 1)[-1]}={c}"
                                                          for w, c in sorted(placement.items())))
        # warm-ups (imports on the workers, thread pools, LightGBM's socket setup)
        xgb_dask(client, wx, wy, 2)
        lgbm_dask(client, wx, wy, 2)
        xgb_single(x_tr[:warm_n], y_tr[:warm_n], 2)
        lgbm_single(x_tr[:warm_n], y_tr[:warm_n], 2)

        for lib, dask_fn, single_fn, auc in (("xgb", xgb_dask, xgb_single, auc_xgb),
                                             ("lgbm", lgbm_dask, lgbm_single, auc_lgbm)):
            d_model, d_s = dask_fn(client, dx, dy, rounds)
            s_model, s_s = single_fn(x_tr, y_tr, rounds)
            results[lib] = {"dask_s": d_s, "single_s": s_s, "dask_auc": auc(d_model), "single_auc": auc(s_model)}

    work = n_train * N_FEATURES * rounds

    def rate(seconds: float) -> str:
        return f"{work / seconds / 1e6:,.1f}M rows*features*trees/s"

    names = {"xgb": ("xgboost.dask", "xgboost.train"), "lgbm": ("DaskLGBMClassifier", "lightgbm.train")}
    metrics: dict[str, float] = {}
    for lib, r in results.items():
        dask_name, single_name = names[lib]
        ratio, gap = r["dask_s"] / r["single_s"], abs(r["dask_auc"] - r["single_auc"])
        metrics[f"{lib}_dask_vs_single_wall_ratio"], metrics[f"{lib}_dask_vs_single_auc_gap"] = ratio, gap
        print(f"{dask_name} (2 workers x 1 thread): {r['dask_s']:.2f}s ({rate(r['dask_s'])}), "
              f"validation AUC {r['dask_auc']:.5f}")
        print(f"{single_name} (nthread={THREADS}): {r['single_s']:.2f}s ({rate(r['single_s'])}), "
              f"validation AUC {r['single_auc']:.5f}")
        print(f"{lib}: dask/single wall ratio {ratio:.2f}x (goal <= 1.5); AUC gap {gap:.5f} (goal <= 0.005)")
    load = os.getloadavg()[0]
    print(f"load average {load:.1f} at the end")
    if args.smoke:
        return
    from results import record

    command = "python benchmarks/bench_training.py"
    baseline = "single-process xgboost.train / lightgbm.train, same params and threads"
    shape = (f"{n_train:,} x {N_FEATURES} train / {n - n_train:,} validation rows, {y.mean():.1%} positives, "
             f"{rounds} rounds, max_depth {MAX_DEPTH}, lr {LEARNING_RATE}, {MAX_BIN} bins, no early stopping")
    for lib, r in results.items():
        dask_name, single_name = names[lib]
        timing = ("quantile matrix build + train timed" if lib == "xgb" else "train / fit timed (binning inside)")
        common = (f"{dask_name} on LocalCluster(2 workers x 1 thread) {r['dask_s']:.2f}s ({rate(r['dask_s'])}), "
                  f"AUC {r['dask_auc']:.5f}; {single_name} nthread={THREADS} {r['single_s']:.2f}s "
                  f"({rate(r['single_s'])}), AUC {r['single_auc']:.5f}; {shape}; training arrays persisted on the "
                  f"workers before timing, {timing}, data generation and prediction excluded; "
                  f"load average {load:.1f} at the end")
        record(f"{lib}_dask_vs_single_wall_ratio", metrics[f"{lib}_dask_vs_single_wall_ratio"],
               unit="x (dask wall / single-process wall)", goal="<= 1.5", baseline=baseline, command=command,
               notes=common)
        record(f"{lib}_dask_vs_single_auc_gap", metrics[f"{lib}_dask_vs_single_auc_gap"],
               unit="auc (absolute validation ROC-AUC difference)", goal="<= 0.005", baseline=baseline,
               command=command, notes=common)


if __name__ == "__main__":
    main()
