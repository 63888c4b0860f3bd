"""Batch scoring: the champion decides, the challenger scores in shadow, a sample of inputs is logged.

The ``score_batch`` DAG calls :func:`score_batch` for its day, then :func:`compare_shadow`. Predictions are
written to ``predictions/<model>/dt=D/role=champion|shadow/`` and the sampled inputs to
``predictions/<model>_features/dt=D/`` (see :mod:`mlscale.scoring.layout`); the shadow report to
``reports/shadow/<model>/<D>/``.
"""

from mlscale.scoring.dedupe import DistinctInputs, distinct_inputs, input_hashes
from mlscale.scoring.engine import ScoredInputs, score_inputs
from mlscale.scoring.layout import champion_filter, features_ref, predictions_ref
from mlscale.scoring.models import (
    CHAMPION_ROLE,
    SHADOW_ROLE,
    ModelFilesMissing,
    NoChampionError,
    ScoringModel,
    ThresholdMissing,
    resolve_models,
)
from mlscale.scoring.sampling import sample_mask
from mlscale.scoring.score import ModelInputsMismatch, ScoringResult, score_batch
from mlscale.scoring.shadow import ModelOutcome, ShadowComparison, compare_shadow, report_prefix
from mlscale.scoring.workers import ModelRef, WorkerScoring

__all__ = [
    "CHAMPION_ROLE", "SHADOW_ROLE", "DistinctInputs", "ModelFilesMissing", "ModelInputsMismatch", "ModelOutcome",
    "ModelRef", "NoChampionError", "ScoredInputs", "ScoringModel", "ScoringResult", "ShadowComparison", "ThresholdMissing",
    "WorkerScoring", "champion_filter", "compare_shadow", "distinct_inputs", "features_ref", "input_hashes",
    "predictions_ref", "report_prefix", "resolve_models", "sample_mask", "score_batch", "score_inputs",
]
