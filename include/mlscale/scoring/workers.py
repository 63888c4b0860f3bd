"""Scoring on Dask workers, with each model loaded once per worker per run (not once per partition).

A run opens a :class:`WorkerScoring` session with a token of its own. On entry one warm-up task pinned to
each worker loads every model of the run from the lake into a worker-side cache (a module-level dict in the
worker process, keyed by worker, token, model and version, guarded by a lock so the threads of one worker
never load twice). The input partitions are then scattered to the workers and scored there; each task takes
its models from the cache. On exit the session collects, with ``client.run``, how many loads each worker did
for the token and drops the cached models, so a long-lived cluster does not keep every version ever scored.

The load count of a run therefore equals the number of workers (per model). A worker that joined during
the run loads lazily on its first task, which the count shows (and the run log says).
"""

from __future__ import annotations

import inspect
import logging
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mlscale.compute import GPU_RESOURCE
from mlscale.lake import Lake
from mlscale.tracing import annotate, in_context, traced
from mlscale.training.model import StoredModel

logger = logging.getLogger(__name__)

_LOCK = threading.Lock()
_MODELS: dict[tuple[str, str, str, str, str], StoredModel] = {}   # (worker, token, lake root, model, version)
_LOADS: dict[tuple[str, str, str, str], int] = {}                 # (worker, token, model, version) -> loads


@dataclass(frozen=True)
class ModelRef:
    """A model version to score with, and the name its scores go by (``champion`` / ``shadow``)."""

    name: str
    version: str
    role: str

    @property
    def label(self) -> str:
        return f"{self.name}/{self.version}"


def _worker_address(dask_worker: Any = None) -> str:
    if dask_worker is not None:
        return str(dask_worker.address)
    from distributed import get_worker

    try:
        return str(get_worker().address)
    except ValueError:  # not on a worker (a plain function call): one cache for the process
        return "local"


def worker_model(lake: Lake, token: str, ref: ModelRef) -> StoredModel:
    """The cached model of this worker for ``token``; loaded (and counted) on first use only."""
    address = _worker_address()
    key = (address, token, lake.root, ref.name, ref.version)
    with _LOCK:
        found = _MODELS.get(key)
        if found is None:
            found = StoredModel.load(lake, ref.name, ref.version)
            found.booster  # noqa: B018 - deserialise the booster once, here, not in the first partition
            _MODELS[key] = found
            counted = (address, token, ref.name, ref.version)
            _LOADS[counted] = _LOADS.get(counted, 0) + 1
        return found


@traced("score.load_models")
def _warm(lake: Lake, token: str, refs: Sequence[ModelRef]) -> str:
    annotate(models=[r.label for r in refs])
    for ref in refs:
        worker_model(lake, token, ref)
    return _worker_address()


def predict_block(model: StoredModel, block: np.ndarray, columns: Sequence[str], gpu: bool = False) -> np.ndarray:
    """``model``'s scores of a float32 block whose columns are named by ``columns``.

    XGBoost boosters predict from the block itself (its columns reordered to the model's inputs when they
    differ), other models through :meth:`StoredModel.predict`; the float32 values, hence the scores, are the same.
    ``gpu``: XGBoost predicts on the worker's GPU (``device=cuda``, the block copied to a CuPy array); LightGBM
    models predict on the CPU (its wheel has no CUDA predictor).
    """
    if model.algorithm == "xgboost":
        names = list(columns)
        if tuple(names) != model.features:
            block = block[:, [names.index(f) for f in model.features]]
        if gpu:
            return _predict_on_gpu(model.booster, block)
        return np.asarray(model.booster.inplace_predict(block), dtype=np.float64)
    import pandas as pd

    return model.predict(pd.DataFrame(block, columns=list(columns), copy=False))


def _predict_on_gpu(booster: Any, block: np.ndarray) -> np.ndarray:
    import cupy

    booster.set_param({"device": "cuda"})  # the worker's own GPU (dask-cuda pins one per worker)
    return np.asarray(cupy.asnumpy(booster.inplace_predict(cupy.asarray(block))), dtype=np.float64)


@traced("score.partition")
def _score_block(block: np.ndarray, partition: int, columns: Sequence[str], lake: Lake, token: str,
                 refs: Sequence[ModelRef], gpu: bool = False) -> list[np.ndarray]:
    annotate(partition=partition, rows=len(block), models=[r.label for r in refs], gpu=gpu)
    return [predict_block(worker_model(lake, token, ref), block, columns, gpu) for ref in refs]


def _release(token: str, dask_worker: Any = None) -> dict[str, int]:
    """Drop this worker's models of ``token``; returns its load count per ``model/version``."""
    address = _worker_address(dask_worker)
    with _LOCK:
        for key in [k for k in _MODELS if k[0] == address and k[1] == token]:
            del _MODELS[key]
        done = [k for k in _LOADS if k[0] == address and k[1] == token]
        return {f"{k[2]}/{k[3]}": _LOADS.pop(k) for k in done}


def worker_addresses(client: Any) -> list[str]:
    """Every worker of the cluster (newer ``distributed`` lists only 5 unless asked for all)."""
    takes_n = "n_workers" in inspect.signature(client.scheduler_info).parameters
    info = client.scheduler_info(n_workers=-1) if takes_n else client.scheduler_info()
    return sorted(info["workers"])


def split_rows(rows: int, partitions: int) -> list[tuple[int, int]]:
    """``partitions`` contiguous, nearly equal ``[start, stop)`` ranges covering ``rows`` (none empty)."""
    parts = max(1, min(int(partitions), rows))
    edges = np.linspace(0, rows, parts + 1).round().astype(int)
    return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:], strict=True) if b > a]


class WorkerScoring:
    """One run's scoring session on a Dask cluster (see the module docstring).

    ``with WorkerScoring(client, lake, refs) as session: scores = session.score(matrix, columns, partitions)``;
    after the block, :attr:`loads` holds the loads per ``model/version`` and :attr:`loads_by_worker` the detail.
    """

    def __init__(self, client: Any, lake: Lake, refs: Sequence[ModelRef], token: str = "", gpu: bool = False) -> None:
        self.client = client
        self.gpu = gpu                        # score on the workers' GPUs (tasks ask for the GPU resource)
        self.lake = lake
        self.refs = tuple(refs)
        self.token = token or uuid.uuid4().hex[:12]
        self.workers: list[str] = []
        self.futures: list[Any] = []          # the job handles, for cancel()
        self.loads: dict[str, int] = {}
        self.loads_by_worker: dict[str, dict[str, int]] = {}

    def __enter__(self) -> WorkerScoring:
        self.workers = worker_addresses(self.client)
        if not self.workers:
            raise RuntimeError("the Dask cluster has no workers: check the dask connection (dask_cpu_default) "
                               "or the cluster's logs, then re-run")
        warm = in_context(_warm)
        self.futures = [self.client.submit(warm, self.lake, self.token, self.refs, workers=[address],
                                           allow_other_workers=False, pure=False,
                                           key=f"scoring-warm-{self.token}-{i}")
                        for i, address in enumerate(self.workers)]
        try:
            self.client.gather(self.futures)
        except BaseException:
            self.__exit__()
            raise
        self.futures = []
        logger.info("models %s loaded on %d workers", ", ".join(r.label for r in self.refs), len(self.workers))
        return self

    def score(self, matrix: np.ndarray, columns: Sequence[str], partitions: int) -> list[np.ndarray]:
        """Scores of every row of ``matrix`` (float32, its columns named by ``columns``), in row order, one
        array per model of :attr:`refs`."""
        if len(matrix) == 0:
            return [np.zeros(0, dtype=np.float64) for _ in self.refs]
        blocks = [matrix[a:b] for a, b in split_rows(len(matrix), partitions)]
        data = self.client.scatter(blocks, hash=False)
        self.futures = self.client.map(in_context(_score_block), data, list(range(len(blocks))), columns=list(columns),
                                       lake=self.lake, token=self.token,
                                       refs=self.refs, gpu=self.gpu, pure=False,
                                       key=[f"scoring-{self.token}-{i}" for i in range(len(blocks))],
                                       resources={GPU_RESOURCE: 1} if self.gpu else None)
        results = self.client.gather(self.futures)
        self.futures = []
        del data
        logger.info("scored %d input rows in %d partitions on %d workers", len(matrix), len(blocks), len(self.workers))
        return [np.concatenate([r[i] for r in results]) for i in range(len(self.refs))]

    def cancel(self) -> None:
        if self.futures:
            self.client.cancel(self.futures)
            self.futures = []

    def __exit__(self, *exc: Any) -> None:
        self.cancel()
        self.loads_by_worker = self.client.run(_release, self.token)
        self.loads = {r.label: sum(w.get(r.label, 0) for w in self.loads_by_worker.values()) for r in self.refs}
        extra = {label: n for label, n in self.loads.items() if n != len(self.workers)}
        if extra:
            logger.warning("model loads %s differ from the %d workers (workers joined or restarted during the "
                           "run): %s", extra, len(self.workers), self.loads_by_worker)

    def loads_by_role(self) -> dict[str, int]:
        return {r.role: self.loads.get(r.label, 0) for r in self.refs}
