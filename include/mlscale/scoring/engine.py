"""The scoring path from a frame of model inputs to one score per row and model (no lake writes).

Rows with identical inputs are grouped (:mod:`mlscale.scoring.dedupe`); the float32 matrix of one row per group
is split into partitions (at least one per worker, at most ``rows_per_partition`` rows each) and scored on the
Dask workers, each of which loads every model once for the run (:mod:`mlscale.scoring.workers`). Scores come
back in the frame's row order. ``score_batch`` and ``benchmarks/bench_scoring.py`` both call
:func:`score_inputs`, so the benchmark times the production path.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mlscale.lake import Lake
from mlscale.scoring.dedupe import DistinctInputs, distinct_inputs
from mlscale.scoring.workers import ModelRef, WorkerScoring
from mlscale.tracing import annotate, span

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScoredInputs:
    groups: DistinctInputs
    scores: dict[str, np.ndarray]     # role -> one score per row of the frame, in its order
    workers: int
    partitions: int
    loads: dict[str, int]             # role -> model loads during the run


def score_inputs(client: Any, lake: Lake, frame: Any, columns: Sequence[str], refs: Sequence[ModelRef], *,
                 rows_per_partition: int, token: str = "", gpu: bool = False) -> ScoredInputs:
    """Score every row of ``frame`` with every model of ``refs``; identical input rows are scored once.
    ``gpu``: on the workers' GPUs (see :func:`mlscale.scoring.workers.predict_block`)."""
    groups = distinct_inputs(frame, columns)
    logger.info("inputs: %d rows, %d distinct input vectors (%d repeats scored once)", groups.rows,
                groups.distinct, groups.repeats)
    if not groups.distinct:
        empty = np.zeros(0, dtype=np.float64)
        return ScoredInputs(groups, {r.role: empty for r in refs}, 0, 0, {r.role: 0 for r in refs})
    with span("score.predict", rows=groups.rows, distinct=groups.distinct, models=[r.label for r in refs],
              gpu=gpu) as predict_span, WorkerScoring(client, lake, refs, token=token, gpu=gpu) as session:
        workers = len(session.workers)
        partitions = min(groups.distinct, max(workers, math.ceil(groups.distinct / max(1, int(rows_per_partition)))))
        annotate(predict_span, partitions=partitions, workers=workers)
        per_model = session.score(groups.unique, list(columns), partitions)
    scores = {r.role: groups.expand(s) for r, s in zip(refs, per_model, strict=True)}
    return ScoredInputs(groups, scores, workers, partitions, session.loads_by_role())
