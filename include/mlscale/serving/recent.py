"""The service's memory of recent events, for the windowed event features (velocity, distinct merchants).

Batch scoring computes ``recent_count`` and ``bucket_distinct`` among a day's events; a request holds one
event (or a few), so the service keeps the events it scored in the last ``window`` per key and computes those
features over them plus the request's events — with the batch function itself, so the answer is the batch
answer over the events the service has seen. A repeated event (same event key: a client retry) is remembered
once, so retries see the features, and get the score, of the first call.

Semantics to know: online features are causal (only events already seen count; batch counts the whole day's
events of the hour bucket), and the memory is per process (each worker of ``mlscale serve --workers N`` sees
its own share of the traffic). Memory is bounded: events older than the largest window behind the newest time
seen are forgotten, and at most ``max_keys`` keys are kept (least recently seen go first).
"""

from __future__ import annotations

import datetime as dt
from collections import OrderedDict
from typing import Any

from mlscale.training.spec import ModelSpec

WINDOWED_KINDS = ("recent_count", "bucket_distinct")


class RecentEvents:
    def __init__(self, spec: ModelSpec, *, max_keys: int = 1_000_000) -> None:
        windowed = [f for f in spec.event_features if f.kind in WINDOWED_KINDS]
        self.keys = tuple(dict.fromkeys(f.column for f in windowed))
        self.window = dt.timedelta(minutes=max((f.minutes for f in windowed), default=0))
        self.event_key, self.event_time = spec.event_key, spec.event_time
        self.max_keys = max_keys
        self._by_key: OrderedDict[tuple[str, Any], dict[Any, dict[str, Any]]] = OrderedDict()
        self._newest: dt.datetime | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.keys)

    def context(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The remembered events sharing a key with ``rows`` (not ``rows`` themselves), oldest first."""
        if not self.enabled:
            return []
        asked = {row[self.event_key] for row in rows}
        found: dict[Any, dict[str, Any]] = {}
        for row in rows:
            for key in self.keys:
                for event_id, event in self._by_key.get((key, row.get(key)), {}).items():
                    if event_id not in asked:
                        found[event_id] = event
        return sorted(found.values(), key=lambda e: e[self.event_time])

    def remember(self, rows: list[dict[str, Any]]) -> None:
        """Add ``rows`` (already-seen event keys are kept once) and forget what fell out of the window."""
        if not self.enabled:
            return
        for row in rows:
            when = row.get(self.event_time)
            if when is None:
                continue
            self._newest = when if self._newest is None or when > self._newest else self._newest
            for key in self.keys:
                value = row.get(key)
                if value is None:
                    continue
                slot = self._by_key.setdefault((key, value), {})
                slot.setdefault(row[self.event_key], row)
                self._by_key.move_to_end((key, value))
                self._expire(key, value, slot)
        while len(self._by_key) > self.max_keys:
            self._by_key.popitem(last=False)

    def _expire(self, key: str, value: Any, slot: dict[Any, dict[str, Any]]) -> None:
        horizon = self._newest - self.window if self._newest is not None else None
        if horizon is None:
            return
        for event_id in [e for e, row in slot.items() if row[self.event_time] < horizon]:
            del slot[event_id]
        if not slot:
            del self._by_key[(key, value)]

    def __len__(self) -> int:
        return sum(len(slot) for slot in self._by_key.values())
