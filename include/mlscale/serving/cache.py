"""The prediction cache: identical model inputs for the same version within ``ttl_s`` are not predicted again.

Keyed by (version, the float32 input row's bytes): the exact vector the model would see, so a hit returns
exactly what a predict would. Bounded to ``max_entries`` (least recently used go first); ``ttl_s`` 0 or
``max_entries`` 0 turns it off.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable


class PredictionCache:
    def __init__(self, *, ttl_s: float, max_entries: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s, self.max_entries, self.clock = ttl_s, max_entries, clock
        self._entries: OrderedDict[tuple[str, bytes], tuple[float, float]] = OrderedDict()

    @property
    def enabled(self) -> bool:
        return self.ttl_s > 0 and self.max_entries > 0

    def get(self, version: str, row: bytes) -> float | None:
        if not self.enabled:
            return None
        found = self._entries.get((version, row))
        if found is None:
            return None
        score, expires = found
        if expires < self.clock():
            del self._entries[(version, row)]
            return None
        self._entries.move_to_end((version, row))
        return score

    def put(self, version: str, row: bytes, score: float) -> None:
        if not self.enabled:
            return
        self._entries[(version, row)] = (score, self.clock() + self.ttl_s)
        self._entries.move_to_end((version, row))
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)
