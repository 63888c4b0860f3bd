"""GPU check of training and scoring on dask-cuda workers, as one short command on a machine with a GPU.

    PYTHONPATH=include python scripts/device/gpu_training_check.py --out /tmp/report.json   # on the GPU machine
    PYTHONPATH=include python scripts/device/gpu_training_check.py --cpu-self-test          # anywhere: CPU twin

It needs the locked wheels (``requirements.txt``: xgboost, lightgbm, dask, distributed, pandas, pyarrow, feast...)
plus ``dask-cuda`` and ``cupy`` on the GPU machine. Steps, each timed; the report is JSON (stdout, ``--out``):

1. **world**: a small generated world replayed day by day (ingestion, features, feature store) with
   :func:`mlscale.simulation.simulate`, and the training set of its last day;
2. **cluster**: the ``dask_gpu_default`` connection's cluster (``AIRFLOW_CONN_DASK_GPU_DEFAULT`` when set, else
   the shipped default ``extra.gpu: true``: a ``LocalCUDACluster``); every worker must offer the ``GPU`` resource;
3. **xgboost**: XGBoost on Dask with ``device=cuda``: 20 rounds with a checkpoint every 10 rounds, then the same
   run resumed to 40 rounds from the checkpoint (``resumed_from == 20``), early stopping on the validation split;
4. **lightgbm**: LightGBM asked for ``device_type=cuda``; its outcome is stated (the locked wheel is built
   without CUDA, so it raises) and the CPU fallback is run explicitly, never silently;
5. **scoring**: the XGBoost model scores the holdout on the GPU workers (``inplace_predict`` on CuPy input);
   the scores must equal the CPU booster's (within 1e-5), and the rows per second are reported;
6. **no GPU**: with ``CUDA_VISIBLE_DEVICES`` emptied, asking for the GPU connection raises ``GPUUnavailable``
   (never a silent CPU cluster).

``--prepare DIR`` runs step 1 only, into ``DIR`` (a few MB); ``--lake DIR`` then skips it on the GPU machine, so
the machine needs only what training and scoring import (xgboost, lightgbm, dask, distributed, dask-cuda, CuPy,
pandas, pyarrow) and not the ingestion and feature-store stack. The GPU machines lent here hold none of the first
four and reach no package index, so their wheels travel with the command (``carry``); xgboost's CUDA library is
236 MB (113 MB compressed), more than one call may carry, so it travels in parts over consecutive calls.

``--cpu-self-test`` runs the same steps on a CPU ``LocalCluster`` (``device=cpu``; step 4 expects LightGBM's CPU
path; step 6 is checked as is, as a machine without a GPU raises ``GPUUnavailable`` anyway), so the script
itself is tested where there is no GPU (``tests/integration/test_device_check.py``).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from typing import Any

START = dt.date(2026, 3, 1)


@contextlib.contextmanager
def step(report: dict[str, Any], name: str) -> Iterator[dict[str, Any]]:
    """Time one step into ``report[name]``; a failure is recorded (and re-raised) with its message."""
    out: dict[str, Any] = {}
    report[name] = out
    started = time.perf_counter()
    try:
        yield out
        out["ok"] = True
    except Exception as exc:
        out.update(ok=False, error=f"{type(exc).__name__}: {exc}")
        raise
    finally:
        out["seconds"] = round(time.perf_counter() - started, 2)


def world(root: str, days: int, rows: int) -> tuple[Any, Any, str]:
    """Replay a small world into ``root``; returns the lake, the model specification and the last day."""
    from distributed import Client, LocalCluster
    from mlscale.lake import Lake
    from mlscale.simulation import SimulationSettings, simulate
    from mlscale.synthetic import generate_world
    from mlscale.training import load_model_spec

    lake = Lake(root)
    last = (START + dt.timedelta(days=days - 1)).isoformat()
    generate_world(lake.write_bytes, start=START, days=days, rows_per_day=rows, seed=11)
    settings = SimulationSettings(models=[], pii_key="device-check-key", lifecycle=False)
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        simulate(lake=lake, client=client, first=START.isoformat(), last=last, settings=settings,
                 report=lambda outcome: None)
    return lake, load_model_spec("fraud_detector"), last


def prepared(root: str) -> tuple[Any, Any, str]:
    """The lake ``--prepare`` built: its last training set's day."""
    from mlscale.lake import Lake
    from mlscale.training import load_model_spec

    lake, spec = Lake(root), load_model_spec("fraud_detector")
    refs = lake.partitions("training", spec.name)
    if not refs:
        raise FileNotFoundError(f"{root} holds no training set: build it with --prepare {root}")
    return lake, spec, refs[-1].dt


def gpu_spec(cpu: bool) -> Any:
    """The cluster of the check: the GPU connection's (environment, else the shipped default) or a CPU twin."""
    from mlscale.compute import ClusterSpec

    if cpu:
        return ClusterSpec(name="dask_cpu_default", n_workers=2, threads_per_worker=1, dashboard_address=None)
    conn = json.loads(os.environ.get("AIRFLOW_CONN_DASK_GPU_DEFAULT") or "{}")
    return ClusterSpec.from_connection("dask_gpu_default", host=conn.get("host"), port=conn.get("port"),
                                       extra={"gpu": True, **(conn.get("extra") or {})})


def check_xgboost(client: Any, lake: Any, spec: Any, data: Any, gpu: bool, out: dict[str, Any]) -> Any:
    from mlscale.training.checkpoint import CheckpointStore
    from mlscale.training.xgb_trainer import train_xgboost

    store = CheckpointStore(lake, spec.name, f"device-check-{'gpu' if gpu else 'cpu'}")
    common = dict(mode="distributed", partitions=2, early_stopping_rounds=40, checkpoints=store,
                  checkpoint_every=10, gpu=gpu)
    params = {"max_depth": 4, "learning_rate": 0.1}
    first = train_xgboost(client, data, params, max_rounds=20, **common)
    resumed = train_xgboost(client, data, params, max_rounds=40, **common)
    out.update(device="cuda" if gpu else "cpu", first_rounds=first.rounds_trained, first_seconds=first.seconds,
               resumed_from=resumed.resumed_from, rounds=resumed.rounds_trained, best_round=resumed.rounds,
               stopped_early=resumed.stopped_early, validation_logloss=resumed.best_score)
    assert first.rounds_trained == 20 and resumed.resumed_from == 20, out
    assert resumed.rounds_trained == 40 or resumed.stopped_early, out
    return resumed


def check_lightgbm(client: Any, lake: Any, spec: Any, data: Any, gpu: bool, out: dict[str, Any]) -> None:
    from mlscale.training.checkpoint import CheckpointStore
    from mlscale.training.lgbm_trainer import train_lightgbm

    def run(on_gpu: bool) -> Any:
        store = CheckpointStore(lake, spec.name, f"device-check-lgbm-{'gpu' if on_gpu else 'cpu'}")
        return train_lightgbm(client, data, {"max_depth": 4, "learning_rate": 0.1}, mode="single", partitions=1,
                              max_rounds=20, early_stopping_rounds=20, checkpoints=store, checkpoint_every=10,
                              gpu=on_gpu)

    if gpu:
        try:
            out["cuda"] = f"trained {run(True).rounds_trained} rounds with device_type=cuda"
        except Exception as exc:  # noqa: BLE001 - the outcome is what this step states
            out["cuda"] = f"unavailable ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})"
    cpu = run(False)
    out["cpu_fallback"] = f"trained {cpu.rounds_trained} rounds on the CPU (asked for explicitly)"


def check_scoring(client: Any, lake: Any, spec: Any, booster_bytes: bytes, gpu: bool, out: dict[str, Any],
                  rows: int = 200_000) -> None:
    import numpy as np
    from mlscale.scoring import ModelRef, score_inputs
    from mlscale.training.dataset import read_split, training_ref
    from mlscale.training.inputs import feature_columns
    from mlscale.training.model import StoredModel

    features = tuple(feature_columns(spec))
    model = StoredModel(name=spec.name, version="9001", algorithm="xgboost", features=features, raw=booster_bytes,
                        doc={"registered_day": "device check"})
    model.save(lake)
    holdout = read_split(lake, training_ref(spec, out["day"]), "holdout").to_pandas()
    frame = holdout.sample(n=max(rows, len(holdout)), replace=True, random_state=0).reset_index(drop=True)
    frame["amount"] += np.arange(len(frame)) * 1e-3  # every row distinct: the throughput of scoring, not dedupe
    started = time.perf_counter()
    scored = score_inputs(client, lake, frame, features, [ModelRef(spec.name, "9001", "champion")],
                          rows_per_partition=50_000, gpu=gpu)
    seconds = time.perf_counter() - started
    expected = model.predict(frame)
    diff = float(np.max(np.abs(scored.scores["champion"] - expected)))
    out.update(rows=len(frame), distinct=scored.groups.distinct, seconds_incl_warmup=round(seconds, 3),
               rows_per_s=round(len(frame) / seconds), max_abs_diff_vs_cpu=diff, loads=scored.loads)
    assert diff < 1e-5, out


def check_no_gpu(out: dict[str, Any]) -> None:
    from mlscale.compute import ClusterSpec, GPUUnavailable, open_client

    saved = os.environ.get("CUDA_VISIBLE_DEVICES")
    os.environ["CUDA_VISIBLE_DEVICES"] = ""
    try:
        with open_client(ClusterSpec(name="dask_gpu_default", gpu=True)):
            raise AssertionError("a GPU connection opened a cluster with no visible GPU")
    except GPUUnavailable as exc:
        out["raised"] = f"GPUUnavailable: {exc}"
    finally:
        if saved is None:
            del os.environ["CUDA_VISIBLE_DEVICES"]
        else:
            os.environ["CUDA_VISIBLE_DEVICES"] = saved


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu-self-test", action="store_true", help="the same steps on a CPU LocalCluster")
    parser.add_argument("--days", type=int, default=8)
    parser.add_argument("--rows-per-day", type=int, default=4000)
    parser.add_argument("--out", default="", help="also write the JSON report here")
    parser.add_argument("--prepare", default="", help="only build the world and its training set into this folder")
    parser.add_argument("--lake", default="", help="a folder --prepare built: skip step 1")
    args = parser.parse_args(argv)
    from mlscale.compute import open_client, visible_gpus
    from mlscale.feature_store import feature_store_for
    from mlscale.training import build_training_set
    from mlscale.training.data import TrainingInputs
    from mlscale.training.dataset import training_ref
    from mlscale.training.inputs import feature_columns

    gpu = not args.cpu_self_test
    report: dict[str, Any] = {"mode": "gpu" if gpu else "cpu self-test", "visible_gpus": visible_gpus()}
    try:
        with tempfile.TemporaryDirectory() as root:
            with step(report, "world") as out:
                if args.lake:
                    lake, spec, last = prepared(args.lake)
                    out.update(day=last, prepared=args.lake)
                else:
                    lake, spec, last = world(args.prepare or os.path.join(root, "lake"), args.days,
                                             args.rows_per_day)
                    built = build_training_set(lake=lake, spec=spec, dt_=last, run_id="device-check",
                                               store=feature_store_for(lake))
                    out.update(day=last, rows=built.rows, positives=built.positives)
            if args.prepare:
                return report
            data = TrainingInputs(lake, training_ref(spec, last), tuple(feature_columns(spec)), "none",
                                  spec.event_key)
            with step(report, "cluster") as out, open_client(gpu_spec(args.cpu_self_test)) as client:
                workers = client.scheduler_info(n_workers=-1)["workers"].values()
                out.update(workers=len(workers), resources=[w.get("resources") for w in workers])
                with step(report, "xgboost") as out:
                    trained = check_xgboost(client, lake, spec, data, gpu, out)
                with step(report, "lightgbm") as out:
                    check_lightgbm(client, lake, spec, data, gpu, out)
                with step(report, "scoring") as out:
                    out["day"] = last
                    check_scoring(client, lake, spec, trained.model, gpu, out)
            with step(report, "no_gpu") as out:
                check_no_gpu(out)
    finally:
        text = json.dumps(report, indent=1, default=str)
        print(text, flush=True)
        if args.out:
            with open(args.out, "w") as f:
                f.write(text + "\n")
    return report


if __name__ == "__main__":
    try:
        main()
    except Exception as exc:  # noqa: BLE001 - the report printed above says which step; exit non-zero
        print(f"device check failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        sys.exit(1)
