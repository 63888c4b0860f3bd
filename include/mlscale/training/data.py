"""Reading a committed training set for a trainer: in one process, or as Dask collections on the workers."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from mlscale.lake import Lake, PartitionRef
from mlscale.training.dataset import LABEL, read_split, split_files
from mlscale.training.spec import CLASS_WEIGHTS

logger = logging.getLogger(__name__)

DOWNSAMPLE_NEGATIVE_RATE = 0.2  # share of negatives kept by "downsample_negatives" unless the spec says otherwise


@dataclass(frozen=True)
class TrainingInputs:
    """Where a training set is and which columns are the model's inputs (picklable, small)."""

    lake: Lake
    ref: PartitionRef
    features: tuple[str, ...]
    class_weight: str = "none"
    key: str = "event_id"
    negative_rate: float = DOWNSAMPLE_NEGATIVE_RATE

    def sampling(self, split: str) -> str:
        """The class-weight strategy applied to ``split``: sampling is for the training split only."""
        return self.class_weight if split == "train" else "none"

    def frame(self, split: str) -> tuple[Any, Any, Any]:
        """``(X, y, weight)`` of one split: float32 features, int8 labels, and the sample weights of
        ``downsample_negatives`` (``None`` otherwise). Read column by column into one float32 block, so the
        peak is the Arrow table plus that block (not the pandas float64 copies of a ``to_pandas``)."""
        table = read_split(self.lake, self.ref, split, columns=[self.key, *self.features, LABEL])
        return _arrays(table, self.features, self.key, self.sampling(split), self.negative_rate)

    def dask_frames(self, split: str, partitions: int) -> tuple[Any, Any, Any]:
        """``(X, y, weight)`` of one split as Dask collections read by the workers, ``partitions`` partitions
        (``weight`` is ``None`` unless negatives are downsampled)."""
        import dask.dataframe as dd

        files = split_files(self.lake, self.ref, split)
        sampling = self.sampling(split)
        meta = _empty(self.features)
        frame = dd.from_map(_read_file, files, lake=self.lake, wanted=[self.key, *self.features, LABEL],
                            sampling=sampling, key=self.key, rate=self.negative_rate, meta=meta,
                            enforce_metadata=False)
        if partitions and partitions != frame.npartitions:
            frame = frame.repartition(npartitions=partitions)
        return frame[list(self.features)], frame[LABEL], frame[WEIGHT] if sampling == "downsample_negatives" \
            else None


WEIGHT = "_weight"


def _arrays(table: Any, features: tuple[str, ...], key: str, sampling: str, rate: float) -> tuple[Any, Any, Any]:
    import pandas as pd
    import pyarrow as pa

    labels = table.column(LABEL).to_numpy(zero_copy_only=False).astype("int8")
    keep = kept_rows(table.column(key), labels, sampling, rate)
    if keep is not None:
        table, labels = table.filter(pa.array(keep)), labels[keep]
    block = np.empty((table.num_rows, len(features)), dtype="float32", order="F")
    for i, column in enumerate(features):
        block[:, i] = table.column(column).to_numpy(zero_copy_only=False)
    weight = negative_weights(labels, rate) if keep is not None else None
    return pd.DataFrame(block, columns=list(features), copy=False), pd.Series(labels, name=LABEL), weight


def _read_file(path: str, *, lake: Lake, wanted: list[str], sampling: str, key: str, rate: float) -> Any:
    import pyarrow.parquet as pq

    with lake.fs.open_input_file(path) as f:
        table = pq.read_table(f, columns=wanted)
    X, y, weight = _arrays(table, tuple(c for c in wanted if c not in (key, LABEL)), key, sampling, rate)
    return X.assign(**{LABEL: y.to_numpy(), WEIGHT: weight if weight is not None else np.float32(1.0)})


def _empty(features: tuple[str, ...]) -> Any:
    import pandas as pd

    return pd.DataFrame({c: pd.Series([], dtype="float32") for c in features}
                        | {LABEL: pd.Series([], dtype="int8"), WEIGHT: pd.Series([], dtype="float32")})



def kept_rows(keys: Any, labels: Any, sampling: str, rate: float = DOWNSAMPLE_NEGATIVE_RATE) -> Any:
    """For ``downsample_negatives``: a mask keeping every positive and a deterministic ``rate`` share of the
    negatives (by a hash of the event key, so a rerun keeps the same rows); ``None`` for other strategies."""
    if sampling != "downsample_negatives" or not len(labels):
        return None
    import pandas as pd

    values = keys.to_pandas() if hasattr(keys, "to_pandas") else pd.Series(keys)
    bucket = pd.util.hash_pandas_object(values, index=False).to_numpy() % np.uint64(10_000)
    return (np.asarray(labels) == 1) | (bucket < np.uint64(round(rate * 10_000)))


def negative_weights(labels: Any, rate: float) -> Any:
    """Each kept negative stands for ``1 / rate`` negatives: the loss, the predicted probabilities and the
    validation log loss (early stopping) stay those of the full data."""
    return np.where(np.asarray(labels) == 1, 1.0, 1.0 / rate).astype("float32")


def downsample(frame: Any, class_weight: str, key: str, rate: float = DOWNSAMPLE_NEGATIVE_RATE) -> Any:
    """``frame`` with every positive and a deterministic ``rate`` share of negatives (see :func:`kept_rows`)."""
    keep = kept_rows(frame[key], frame[LABEL].to_numpy(), class_weight, rate)
    return frame if keep is None else frame[keep]


def class_weight_params(class_weight: str, negatives: int, positives: int) -> dict[str, Any]:
    """Booster parameters for the class-weight strategy.

    ``none`` (the default: on the synthetic world's holdout, weighting lowered PR-AUC — the ranking that the review
    budget uses — and inflated probabilities); ``scale_pos_weight``: negatives / positives (balanced classes;
    probabilities are then inflated, see the calibration in the training report); ``sqrt_scale_pos_weight``: its
    square root, milder; ``downsample_negatives`` samples instead and weights each kept negative (see
    :func:`kept_rows`): the same ranking and calibration from a fraction of the rows, several times faster.
    """
    if class_weight not in CLASS_WEIGHTS:
        raise ValueError(f"class_weight {class_weight!r} is not one of {CLASS_WEIGHTS}")
    if class_weight.endswith("scale_pos_weight") and positives:
        ratio = negatives / positives
        return {"scale_pos_weight": round(ratio ** 0.5 if class_weight.startswith("sqrt") else ratio, 4)}
    return {}
