"""Which events get their model inputs logged: a deterministic share chosen by a hash of the event key.

An event is sampled when ``hash64(key) / 2**64 < rate`` (:func:`mlscale.sketches.hashing.hash64_column`, a
hash pinned in this project, so the choice never changes with a library upgrade). The same event is always
sampled or never at a given rate, whatever else the day holds, and a higher rate keeps every event a lower
rate sampled. The expected share is ``rate``; over ``n`` events the count is binomial(n, rate).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mlscale.sketches.hashing import hash64_column

_SCALE = float(2**64)


def check_rate(rate: float) -> float:
    if not 0.0 <= float(rate) <= 1.0:
        raise ValueError(f"sample_rate {rate!r} must be within [0, 1] (0.01 logs the inputs of 1% of events)")
    return float(rate)


def sample_mask(keys: Any, rate: float) -> np.ndarray:
    """A boolean mask over ``keys`` (strings or integers: a pyarrow array, pandas Series or list)."""
    rate = check_rate(rate)
    hashes, valid = hash64_column(keys)
    if rate >= 1.0:
        mask = np.ones(len(hashes), dtype=bool)
    else:
        mask = (hashes.astype(np.float64) / _SCALE) < rate
    return mask if valid is None else mask & valid
