"""Reading a committed training set for a trainer: in one process, or as Dask collections on the workers."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from mlscale.lake import Lake, PartitionRef
from mlscale.training.dataset import LABEL, read_split, split_files

logger = logging.getLogger(__name__)

CLASS_WEIGHTS = ("sqrt_scale_pos_weight", "scale_pos_weight", "downsample_negatives", "none")
DOWNSAMPLE_NEGATIVE_RATE = 0.2  # share of negatives kept by "downsample_negatives" (all positives are kept)


@dataclass(frozen=True)
class TrainingInputs:
    """Where a training set is and which columns are the model's inputs (picklable, small)."""

    lake: Lake
    ref: PartitionRef
    features: tuple[str, ...]
    class_weight: str = "none"
    key: str = "event_id"

    def frame(self, split: str) -> tuple[Any, Any]:
        """``(X, y)`` of one split as pandas (float32 features), after the class-weight sampling for train."""
        table = read_split(self.lake, self.ref, split, columns=[self.key, *self.features, LABEL])
        frame = table.to_pandas()
        if split == "train":
            frame = downsample(frame, self.class_weight, self.key)
        return frame[list(self.features)].astype("float32"), frame[LABEL].astype("int8")

    def dask_frames(self, split: str, partitions: int) -> tuple[Any, Any]:
        """``(X, y)`` of one split as Dask collections read by the workers, ``partitions`` partitions."""
        import dask.dataframe as dd

        files = split_files(self.lake, self.ref, split)
        meta = _typed(_empty(self.features))
        frame = dd.from_map(_read_file, files, lake=self.lake, wanted=[self.key, *self.features, LABEL],
                            sampling=self.class_weight if split == "train" else "none", key=self.key, meta=meta,
                            enforce_metadata=False)
        if partitions and partitions != frame.npartitions:
            frame = frame.repartition(npartitions=partitions)
        return frame[list(self.features)], frame[LABEL]



def _read_file(path: str, *, lake: Lake, wanted: list[str], sampling: str, key: str) -> Any:
    import pyarrow.parquet as pq

    with lake.fs.open_input_file(path) as f:
        frame = pq.read_table(f, columns=wanted).to_pandas()
    frame = downsample(frame, sampling, key)
    return _typed(frame[[c for c in wanted if c != key]])


def _empty(features: tuple[str, ...]) -> Any:
    import pandas as pd

    return pd.DataFrame({c: pd.Series([], dtype="float32") for c in features} | {LABEL: pd.Series([], dtype="int8")})


def _typed(frame: Any) -> Any:
    return frame.astype({c: "float32" for c in frame.columns if c != LABEL} | {LABEL: "int8"})


def downsample(frame: Any, class_weight: str, key: str) -> Any:
    """Keep every positive and a deterministic ``DOWNSAMPLE_NEGATIVE_RATE`` share of negatives (by key hash)."""
    if class_weight != "downsample_negatives" or frame.empty:
        return frame
    import pandas as pd

    bucket = pd.util.hash_pandas_object(frame[key], index=False).to_numpy() % np.uint64(1000)
    keep = (frame[LABEL].to_numpy() == 1) | (bucket < np.uint64(int(DOWNSAMPLE_NEGATIVE_RATE * 1000)))
    return frame[keep]


def class_weight_params(class_weight: str, negatives: int, positives: int) -> dict[str, Any]:
    """Booster parameters for the class-weight strategy.

    ``none`` (the default: on the synthetic world's holdout, weighting lowered PR-AUC — the ranking that the review
    budget uses — and inflated probabilities); ``scale_pos_weight``: negatives / positives (balanced classes;
    probabilities are then inflated, see the calibration in the training report); ``sqrt_scale_pos_weight``: its
    square root, milder; ``downsample_negatives`` samples instead (see :func:`downsample`).
    """
    if class_weight not in CLASS_WEIGHTS:
        raise ValueError(f"class_weight {class_weight!r} is not one of {CLASS_WEIGHTS}")
    if class_weight.endswith("scale_pos_weight") and positives:
        ratio = negatives / positives
        return {"scale_pos_weight": round(ratio ** 0.5 if class_weight.startswith("sqrt") else ratio, 4)}
    return {}
