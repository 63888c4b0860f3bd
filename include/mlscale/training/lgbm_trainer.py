"""LightGBM training: ``lightgbm.dask`` across the workers, or single-process on one worker.

``lightgbm.dask`` has no early stopping, so the distributed path trains in chunks of ``checkpoint_every``
rounds, continuing from the previous chunk's booster (``init_model``), scores the validation split on the
workers after each chunk, and stops when ``early_stopping_rounds`` rounds passed without improvement; the
model is then cut at the best chunk's end. Early stopping is therefore exact at chunk granularity (the best
round is a multiple of ``checkpoint_every``). The single-process path uses LightGBM's own early stopping
(exact per round). Both checkpoint to the lake and resume a retried attempt from the last checkpoint.
With tracing on, each round (single-process) or each chunk of rounds (distributed) is a ``train.round`` span.
"""

from __future__ import annotations

import logging
from typing import Any

from mlscale.tracing import RoundSpans, enabled, span
from mlscale.training.checkpoint import CheckpointStore
from mlscale.training.data import TrainingInputs
from mlscale.training.dispatch import dispatch
from mlscale.training.outcome import TrainOutcome

logger = logging.getLogger(__name__)

EVAL_METRIC = "average_precision"


def lgbm_params(params: dict[str, Any], *, gpu: bool) -> dict[str, Any]:
    out = {"objective": "binary", "metric": EVAL_METRIC, "seed": 0, "deterministic": True, "verbosity": -1,
           "learning_rate": params.get("learning_rate", 0.1), "max_depth": params.get("max_depth", -1),
           "num_leaves": params.get("num_leaves", 2 ** min(int(params.get("max_depth", 6)), 8) - 1),
           "bagging_fraction": params.get("subsample", 1.0), "bagging_freq": 1 if params.get("subsample", 1) < 1 else 0,
           "feature_fraction": params.get("colsample_bytree", 1.0),
           "min_sum_hessian_in_leaf": params.get("min_child_weight", 1e-3)}
    if "scale_pos_weight" in params:
        out["scale_pos_weight"] = params["scale_pos_weight"]
    if gpu:
        out["device_type"] = "cuda"
    return out


class _RoundStart:
    """LightGBM callback run before each iteration: the round's span starts here."""

    before_iteration = True

    def __init__(self, rounds: RoundSpans) -> None:
        self.rounds = rounds

    def __call__(self, env: Any) -> None:
        self.rounds.start()


class _RoundEnd:
    """LightGBM callback run after each iteration (before early stopping): records the round's span."""

    def __init__(self, rounds: RoundSpans, resumed: int) -> None:
        self.rounds = rounds
        self.resumed = resumed

    def __call__(self, env: Any) -> None:
        scores = [r[2] for r in env.evaluation_result_list or [] if r[0] == "validation" and r[1] == EVAL_METRIC]
        self.rounds.end(self.resumed + env.iteration + 1 - env.begin_iteration,
                        **{EVAL_METRIC: float(scores[0]) if scores else None})


def _round_spans_callbacks(resumed: int) -> list[Any]:
    """One ``train.round`` span per boosting round when tracing is on here; no callbacks when it is off."""
    if not enabled():
        return []
    rounds = RoundSpans("train.round", algorithm="lightgbm")
    return [_RoundStart(rounds), _RoundEnd(rounds, resumed)]


def _resume(store: CheckpointStore) -> tuple[str | None, int, dict[str, Any]]:
    checkpoint = store.latest()
    if checkpoint is None:
        return None, 0, {}
    logger.info("resuming from checkpoint %s at round %d", store.prefix, checkpoint.rounds)
    return checkpoint.model.decode(), checkpoint.rounds, checkpoint.state


def train_lightgbm(client: Any, data: TrainingInputs, params: dict[str, Any], *, mode: str, partitions: int,
                   max_rounds: int, early_stopping_rounds: int, checkpoints: CheckpointStore, checkpoint_every: int,
                   gpu: bool = False, collective_timeout_s: int = 300) -> TrainOutcome:
    """Train (or resume) and return the booster cut at its best validation round."""
    return dispatch(client, _train_single, _train_dask, data, params, mode=mode, partitions=partitions,
                    max_rounds=max_rounds, early_stopping_rounds=early_stopping_rounds, checkpoints=checkpoints,
                    checkpoint_every=checkpoint_every, gpu=gpu, collective_timeout_s=collective_timeout_s)


def _train_single(data: TrainingInputs, params: dict[str, Any], max_rounds: int, early_stopping_rounds: int,
                  checkpoints: CheckpointStore, checkpoint_every: int, gpu: bool) -> TrainOutcome:
    import lightgbm as lgb

    X, y, weight = data.frame("train")
    Xv, yv, _ = data.frame("validation")
    init, resumed, _ = _resume(checkpoints)
    booster_init = lgb.Booster(model_str=init) if init else None
    history: dict[str, Any] = {}

    def checkpoint(env: Any) -> None:
        rounds = resumed + env.iteration + 1 - env.begin_iteration
        if rounds % checkpoint_every == 0:
            checkpoints.save(rounds, env.model.model_to_string().encode())

    train_set = lgb.Dataset(X, y, weight=weight, free_raw_data=True)
    booster = lgb.train(lgbm_params(params, gpu=gpu), train_set, num_boost_round=max(0, max_rounds - resumed),
                        valid_sets=[lgb.Dataset(Xv, yv, reference=train_set)], valid_names=["validation"],
                        init_model=booster_init,
                        callbacks=[lgb.early_stopping(early_stopping_rounds, verbose=False),
                                   lgb.record_evaluation(history), checkpoint, *_round_spans_callbacks(resumed)])
    scores = [float(s) for s in history.get("validation", {}).get(EVAL_METRIC, [])]
    total = booster.current_iteration()
    best = booster.best_iteration or total
    return _outcome(booster.model_to_string(num_iteration=best), best, total, resumed,
                    float(booster.best_score.get("validation", {}).get(EVAL_METRIC, scores[-1] if scores else 0.0)),
                    tuple(scores), max_rounds, "single")


def _train_dask(client: Any, data: TrainingInputs, params: dict[str, Any], partitions: int, max_rounds: int,
                early_stopping_rounds: int, checkpoints: CheckpointStore, checkpoint_every: int, gpu: bool,
                collective_timeout_s: int) -> TrainOutcome:
    import lightgbm as lgb

    X, y, weight = data.dask_frames("train", partitions)
    Xv, yv, _ = data.dask_frames("validation", partitions)
    X, y, Xv, yv = client.persist([X, y, Xv, yv])
    weight = client.persist(weight) if weight is not None else None
    y_valid = yv.compute().to_numpy()
    init, resumed, state = _resume(checkpoints)
    best_rounds, best_score = int(state.get("best_rounds", resumed)), float(state.get("best_score", -1.0))
    rounds, scores = resumed, []
    base = lgbm_params(params, gpu=gpu) | {"time_out": max(1, collective_timeout_s // 60)}
    while rounds < max_rounds and rounds - best_rounds < early_stopping_rounds + (best_score < 0) * max_rounds:
        step = min(checkpoint_every, max_rounds - rounds)
        with span("train.round", algorithm="lightgbm", first_round=rounds + 1, rounds=step) as chunk_span:
            model = lgb.DaskLGBMClassifier(client=client, n_estimators=step, **base)
            model.fit(X, y, sample_weight=weight, init_model=lgb.Booster(model_str=init) if init else None)
            booster = model.to_local().booster_
            rounds = booster.current_iteration()
            score = _average_precision(y_valid, Xv.map_partitions(_predict, booster.model_to_string(),
                                                                  meta=("score", "float64")).compute().to_numpy())
            chunk_span.set_attribute("round", rounds)
            chunk_span.set_attribute(EVAL_METRIC, score)
        scores.append(score)
        init = booster.model_to_string()
        if score > best_score:
            best_rounds, best_score = rounds, score
        checkpoints.save(rounds, init.encode(), {"best_rounds": best_rounds, "best_score": best_score})
        logger.info("lightgbm.dask: %d rounds, validation %s %.5f (best %.5f at %d)", rounds, EVAL_METRIC, score,
                    best_score, best_rounds)
    final = lgb.Booster(model_str=init).model_to_string(num_iteration=best_rounds) if init else ""
    return _outcome(final, best_rounds, rounds, resumed, best_score, tuple(scores), max_rounds, "distributed")


def _predict(frame: Any, model: str) -> Any:
    import lightgbm as lgb
    import pandas as pd

    return pd.Series(lgb.Booster(model_str=model).predict(frame), index=frame.index, name="score")


def _average_precision(y: Any, score: Any) -> float:
    from sklearn.metrics import average_precision_score

    return float(average_precision_score(y, score)) if 0 < y.sum() < len(y) else 0.0


def _outcome(model: str, best: int, total: int, resumed: int, best_score: float, scores: tuple[float, ...],
             max_rounds: int, mode: str) -> TrainOutcome:
    logger.info("lightgbm (%s): %d rounds (%d this attempt, resumed at %d), best round %d, validation %s %.5f",
                mode, total, total - resumed, resumed, best, EVAL_METRIC, best_score)
    return TrainOutcome(algorithm="lightgbm", model=model.encode(), rounds=best, rounds_trained=total,
                        rounds_this_attempt=total - resumed, resumed_from=resumed, best_score=best_score,
                        stopped_early=total < max_rounds, history=scores, metric=EVAL_METRIC, mode=mode)
