"""Repeated model inputs: events of a day whose input vectors are identical are scored once.

Rows are grouped by a 64-bit hash of their input values (``pandas.util.hash_pandas_object`` over the
feature columns in a fixed order; NaN hashes alike). Every row keeps its own prediction row: the score of its
group is copied back, so nothing is dropped, only the model work is shared.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistinctInputs:
    """``first``: positions of one row per distinct input vector; ``inverse[i]``: the group of row ``i``."""

    hashes: np.ndarray      # uint64 per row
    first: np.ndarray       # int64, one row position per group, ordered by hash
    inverse: np.ndarray     # int64 per row, into ``first``

    @property
    def rows(self) -> int:
        return int(len(self.hashes))

    @property
    def distinct(self) -> int:
        return int(len(self.first))

    @property
    def repeats(self) -> int:
        """Rows whose inputs equal an earlier row's (scored with it)."""
        return self.rows - self.distinct

    def expand(self, values: np.ndarray) -> np.ndarray:
        """Per-group ``values`` (one per distinct vector) as per-row values."""
        return values[self.inverse]


def input_hashes(frame: Any, columns: Sequence[str]) -> np.ndarray:
    """The 64-bit hash of each row's values in ``columns`` (that order), as uint64."""
    import pandas as pd

    if len(frame) == 0:
        return np.zeros(0, dtype=np.uint64)
    return pd.util.hash_pandas_object(frame[list(columns)], index=False).to_numpy(dtype=np.uint64)


def distinct_inputs(frame: Any, columns: Sequence[str]) -> DistinctInputs:
    """Group the rows of ``frame`` by their input values in ``columns`` (deterministic for equal input)."""
    hashes = input_hashes(frame, columns)
    _, first, inverse = np.unique(hashes, return_index=True, return_inverse=True)
    return DistinctInputs(hashes=hashes, first=first.astype(np.int64), inverse=inverse.reshape(-1).astype(np.int64))
