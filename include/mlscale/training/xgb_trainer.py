"""XGBoost training: ``xgboost.dask`` across the workers, or single-process on one worker.

Both paths use ``tree_method="hist"`` (``device="cuda"`` on GPU workers), early stopping on the validation
split, and a checkpoint every N rounds to the lake; a retried attempt continues from the last checkpoint.
A lost worker makes the collective time out (``collective_timeout_s``), so the attempt fails instead of
hanging, and Airflow's retry resumes it. With tracing on, each boosting round is a ``train.round`` span.
"""

from __future__ import annotations

import logging
from typing import Any

from mlscale.tracing import RoundSpans, enabled
from mlscale.training.checkpoint import CheckpointStore
from mlscale.training.data import TrainingInputs
from mlscale.training.dispatch import dispatch
from mlscale.training.outcome import TrainOutcome

logger = logging.getLogger(__name__)

# Early stopping on the validation log loss: PR-AUC over the few dozen positives of a validation split is so
# noisy that it stops after a handful of rounds (measured: round 8, half the holdout PR-AUC of log loss).
EVAL_METRIC = "logloss"


def booster_params(params: dict[str, Any], *, gpu: bool, threads: int | None = None) -> dict[str, Any]:
    out = {"objective": "binary:logistic", "eval_metric": EVAL_METRIC, "tree_method": "hist",
           "device": "cuda" if gpu else "cpu", "seed": 0, **params}
    if threads:
        out["nthread"] = threads
    return out


def _checkpoint_callback(store: CheckpointStore, every: int) -> Any:
    import xgboost as xgb

    class LakeCheckpoint(xgb.callback.TrainingCallback):
        """Every ``every`` rounds, rank 0 saves the booster to the lake."""

        def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
            rounds = model.num_boosted_rounds()
            if rounds % every == 0 and xgb.collective.get_rank() == 0:
                scores = evals_log.get("validation", {}).get(EVAL_METRIC, [])
                store.save(rounds, bytes(model.save_raw("ubj")), {"last_score": scores[-1] if scores else None})
            return False

    return LakeCheckpoint()


def _round_spans_callback() -> list[Any]:
    """When tracing is on here: a callback recording one ``train.round`` span per boosting round (on rank 0 of
    a distributed fit), with the validation score; nothing when it is off (no per-round cost at all)."""
    if not enabled():
        return []
    import xgboost as xgb

    rounds = RoundSpans("train.round", algorithm="xgboost")

    class RoundTracing(xgb.callback.TrainingCallback):
        def before_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
            rounds.start()
            return False

        def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
            if xgb.collective.get_rank() == 0:
                scores = evals_log.get("validation", {}).get(EVAL_METRIC, [])
                rounds.end(model.num_boosted_rounds(), **{EVAL_METRIC: float(scores[-1]) if scores else None})
            return False

    return [RoundTracing()]


def _resume(store: CheckpointStore, features: tuple[str, ...]) -> tuple[Any, int]:
    import xgboost as xgb

    checkpoint = store.latest()
    if checkpoint is None:
        return None, 0
    booster = xgb.Booster()
    booster.load_model(bytearray(checkpoint.model))
    if booster.feature_names and tuple(booster.feature_names) != features:
        logger.warning("checkpoint %s was trained on other features: starting over", store.prefix)
        return None, 0
    logger.info("resuming from checkpoint %s at round %d", store.prefix, checkpoint.rounds)
    return booster, checkpoint.rounds


def train_xgboost(client: Any, data: TrainingInputs, params: dict[str, Any], *, mode: str, partitions: int,
                  max_rounds: int, early_stopping_rounds: int, checkpoints: CheckpointStore, checkpoint_every: int,
                  gpu: bool = False, collective_timeout_s: int = 300) -> TrainOutcome:
    """Train (or resume) and return the booster truncated at its best validation round."""
    return dispatch(client, _train_single, _train_dask, data, params, mode=mode, partitions=partitions,
                    max_rounds=max_rounds, early_stopping_rounds=early_stopping_rounds, checkpoints=checkpoints,
                    checkpoint_every=checkpoint_every, gpu=gpu, collective_timeout_s=collective_timeout_s)


def _train_single(data: TrainingInputs, params: dict[str, Any], max_rounds: int, early_stopping_rounds: int,
                  checkpoints: CheckpointStore, checkpoint_every: int, gpu: bool) -> TrainOutcome:
    import os

    import xgboost as xgb

    X, y, weight = data.frame("train")
    dtrain = xgb.QuantileDMatrix(X, y, weight=weight)
    del X, y, weight  # the quantised matrix holds what training needs
    Xv, yv, _ = data.frame("validation")
    dvalid = xgb.QuantileDMatrix(Xv, yv, ref=dtrain)
    del Xv, yv
    booster, resumed = _resume(checkpoints, data.features)
    history: dict[str, Any] = {}
    threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    out = xgb.train(booster_params(params, gpu=gpu, threads=threads), dtrain,
                    num_boost_round=max(0, max_rounds - resumed), evals=[(dvalid, "validation")],
                    early_stopping_rounds=early_stopping_rounds, xgb_model=booster, evals_result=history,
                    callbacks=[_checkpoint_callback(checkpoints, checkpoint_every), *_round_spans_callback()],
                    verbose_eval=False)
    return _outcome(out, history, resumed, max_rounds, "single")


def _train_dask(client: Any, data: TrainingInputs, params: dict[str, Any], partitions: int, max_rounds: int,
                early_stopping_rounds: int, checkpoints: CheckpointStore, checkpoint_every: int, gpu: bool,
                collective_timeout_s: int) -> TrainOutcome:
    import xgboost as xgb
    from xgboost import dask as dxgb
    from xgboost.collective import Config

    X, y, weight = data.dask_frames("train", partitions)
    Xv, yv, _ = data.dask_frames("validation", partitions)
    X, y, Xv, yv = client.persist([X, y, Xv, yv])
    weight = client.persist(weight) if weight is not None else None
    dtrain = dxgb.DaskQuantileDMatrix(client, X, y, weight=weight)
    dvalid = dxgb.DaskQuantileDMatrix(client, Xv, yv, ref=dtrain)
    booster, resumed = _resume(checkpoints, data.features)
    result = dxgb.train(client, booster_params(params, gpu=gpu), dtrain, num_boost_round=max(0, max_rounds - resumed),
                        evals=[(dvalid, "validation")], early_stopping_rounds=early_stopping_rounds, xgb_model=booster,
                        callbacks=[_checkpoint_callback(checkpoints, checkpoint_every), *_round_spans_callback()],
                        coll_cfg=Config(timeout=collective_timeout_s, tracker_timeout=collective_timeout_s))
    out: xgb.Booster = result["booster"]
    return _outcome(out, result["history"], resumed, max_rounds, "distributed")


def _outcome(booster: Any, history: dict[str, Any], resumed: int, max_rounds: int, mode: str) -> TrainOutcome:
    scores = [float(s) for s in history.get("validation", {}).get(EVAL_METRIC, [])]
    total = booster.num_boosted_rounds()
    best = int(booster.attr("best_iteration") or (total - 1))
    best_score = float(booster.attr("best_score") or (scores[-1] if scores else float("nan")))
    final = booster[: best + 1] if best + 1 < total else booster
    logger.info("xgboost (%s): %d rounds (%d this attempt, resumed at %d), best round %d, validation %s %.5f",
                mode, total, total - resumed, resumed, best + 1, EVAL_METRIC, best_score)
    return TrainOutcome(algorithm="xgboost", model=bytes(final.save_raw("ubj")), rounds=best + 1,
                        rounds_trained=total, rounds_this_attempt=total - resumed, resumed_from=resumed,
                        best_score=best_score, stopped_early=total < max_rounds, history=tuple(scores),
                        metric=EVAL_METRIC, mode=mode)
