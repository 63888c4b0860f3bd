"""Run a trainer single-process on one Dask worker or distributed across the workers, timed."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from mlscale.tracing import annotate, in_context, span
from mlscale.training.checkpoint import CheckpointStore
from mlscale.training.data import TrainingInputs
from mlscale.training.outcome import TrainOutcome


def dispatch(client: Any, single: Callable[..., TrainOutcome], distributed: Callable[..., TrainOutcome],
             data: TrainingInputs, params: dict[str, Any], *, mode: str, partitions: int, max_rounds: int,
             early_stopping_rounds: int, checkpoints: CheckpointStore, checkpoint_every: int, gpu: bool,
             collective_timeout_s: int) -> TrainOutcome:
    """``single`` runs as one task on one worker (the data is read there, never through this process; on a GPU
    connection the task asks for the ``GPU`` resource); ``distributed`` drives the whole cluster from here.
    Traced as a ``train.fit`` span (the trainers add a ``train.round`` span per boosting round or chunk)."""
    started = time.perf_counter()
    with span("train.fit", mode=mode, partitions=partitions if mode != "single" else None, max_rounds=max_rounds,
              gpu=gpu, features=len(data.features)) as fit_span:
        if mode == "single":
            future = client.submit(in_context(single), data, params, max_rounds, early_stopping_rounds, checkpoints,
                                   checkpoint_every, gpu, pure=False, resources={"GPU": 1} if gpu else None)
            outcome: TrainOutcome = future.result()
        else:
            outcome = distributed(client, data, params, partitions, max_rounds, early_stopping_rounds, checkpoints,
                                  checkpoint_every, gpu, collective_timeout_s)
        annotate(fit_span, algorithm=outcome.algorithm, rounds=outcome.rounds_trained, best_round=outcome.rounds,
                 resumed_from=outcome.resumed_from, stopped_early=outcome.stopped_early)
    return outcome.with_seconds(time.perf_counter() - started)
