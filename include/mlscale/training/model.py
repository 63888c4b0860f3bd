"""A trained model as stored in the lake (``models/<model>/<version>/``), loadable anywhere without MLflow.

``model.bin`` holds the booster (XGBoost UBJSON or LightGBM text) and ``model.json`` its card data: algorithm,
input columns, the training set and its fingerprint, metrics, and the lake inputs (for lineage). Scoring,
bias audits and drift checks all load models through :class:`StoredModel`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mlscale.lake import Lake

logger = logging.getLogger(__name__)

MODEL_FILE = "model.bin"
MODEL_DOC = "model.json"
REFERENCE_PROFILE = "reference_profile.json"
COMPRESSED_FILE = "model_compressed.bin"   # the online variant (mlscale.training.compress)
SCORE = "score"


def model_prefix(model: str, version: str | int) -> str:
    return f"models/{model}/{version}"


@dataclass
class StoredModel:
    name: str
    version: str
    algorithm: str
    features: tuple[str, ...]
    raw: bytes
    doc: dict[str, Any] = field(default_factory=dict)
    _booster: Any = None

    @classmethod
    def load(cls, lake: Lake, model: str, version: str | int) -> StoredModel:
        prefix = model_prefix(model, version)
        doc = lake.read_json(f"{prefix}/{MODEL_DOC}")
        return cls(name=model, version=str(version), algorithm=doc["algorithm"], features=tuple(doc["features"]),
                   raw=lake.read_bytes(f"{prefix}/{MODEL_FILE}"), doc=doc)

    def compressed(self, lake: Lake) -> StoredModel | None:
        """The online variant stored beside this version (:mod:`mlscale.training.compress`), or None."""
        if not (self.doc.get("compressed") or {}).get("available"):
            return None
        raw = lake.read_bytes(f"{model_prefix(self.name, self.version)}/{COMPRESSED_FILE}")
        return StoredModel(name=self.name, version=self.version, algorithm=self.algorithm, features=self.features,
                           raw=raw, doc=self.doc)

    def save(self, lake: Lake) -> str:
        prefix = model_prefix(self.name, self.version)
        lake.write_bytes(f"{prefix}/{MODEL_FILE}", self.raw)
        lake.write_json(f"{prefix}/{MODEL_DOC}", {**self.doc, "model": self.name, "version": self.version,
                                                  "algorithm": self.algorithm, "features": list(self.features)})
        return prefix

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_booster": None}  # boosters are rebuilt from bytes on each worker

    @property
    def booster(self) -> Any:
        if self._booster is None:
            if self.algorithm == "xgboost":
                import xgboost as xgb

                booster = xgb.Booster()
                booster.load_model(bytearray(self.raw))
                booster.set_param({"nthread": 1})
            else:
                import lightgbm as lgb

                booster = lgb.Booster(model_str=self.raw.decode())  # type: ignore[assignment]
            self._booster = booster
        return self._booster

    def scored(self, frame: Any) -> Any:
        """The model's inputs of ``frame`` as float64 plus its ``score`` column (what drift is measured on)."""
        return frame[list(self.features)].astype("float64").assign(**{SCORE: self.predict(frame)})

    def predict(self, frame: Any) -> np.ndarray:
        """Probabilities for the rows of ``frame`` (a DataFrame holding at least :attr:`features`)."""
        X = frame[list(self.features)].astype("float32")
        if len(X) == 0:
            return np.zeros(0, dtype=np.float64)
        if self.algorithm == "xgboost":
            import xgboost as xgb

            return np.asarray(self.booster.inplace_predict(X), dtype=np.float64) if hasattr(self.booster, "inplace_predict") \
                else np.asarray(self.booster.predict(xgb.DMatrix(X)), dtype=np.float64)
        return np.asarray(self.booster.predict(X), dtype=np.float64)


def write_reference_profile(lake: Lake, model: StoredModel, frame: Any) -> str:
    """The drift reference of a version: the profile of the model inputs and scores of ``frame`` (the events of
    the last day it was trained on), stored beside the model. Monitoring compares days with it."""
    from mlscale.monitoring import profile_table

    key = f"{model_prefix(model.name, model.version)}/{REFERENCE_PROFILE}"
    lake.write_bytes(key, profile_table(model.scored(frame)).to_json().encode())
    return key


def read_reference_profile(lake: Lake, model: str, version: str | int) -> Any:
    from mlscale.monitoring import FeatureProfile

    return FeatureProfile.from_json(lake.read_bytes(f"{model_prefix(model, version)}/{REFERENCE_PROFILE}"))
