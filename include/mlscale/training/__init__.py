"""Model training: specifications, point-in-time training sets, XGBoost/LightGBM on Dask, evaluation, registry.

The ``train_model`` DAG calls :func:`train_model`; scoring and governance reuse :func:`model_inputs` and
:class:`StoredModel` so every consumer builds a model's inputs and loads it the same way.
"""

from mlscale.training.dataset import (
    TrainingDataError,
    TrainingSet,
    build_training_set,
    read_split,
    training_ref,
)
from mlscale.training.evaluate import HoldoutMetrics, holdout_metrics
from mlscale.training.inputs import feature_columns, model_inputs
from mlscale.training.model import StoredModel, model_prefix
from mlscale.training.run import TrainingResult, train_model
from mlscale.training.spec import ModelSpec, ModelSpecError, load_model_spec

__all__ = [
    "HoldoutMetrics", "ModelSpec", "ModelSpecError", "StoredModel", "TrainingDataError", "TrainingResult",
    "TrainingSet", "build_training_set", "feature_columns", "holdout_metrics", "load_model_spec", "model_inputs",
    "model_prefix", "read_split", "train_model", "training_ref",
]
