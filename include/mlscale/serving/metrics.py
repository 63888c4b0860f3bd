"""Prometheus metrics of the online service, and the latency SLO watch.

Metrics (``GET /metrics``, Prometheus text format), all labelled by ``model``:

* ``mlscale_serving_requests_total{status}`` — requests by outcome: ``ok``, ``invalid`` (422), ``fallback``
  (the feature store could not be read), ``error``;
* ``mlscale_serving_events_total{arm}`` — events decided by ``champion``, ``challenger`` or ``canary``;
* ``mlscale_serving_request_latency_seconds`` — a histogram of the time spent in the service per request;
* ``mlscale_serving_cache_hits_total`` / ``..._cache_misses_total`` — the prediction cache (hit rate = hits /
  (hits + misses));
* ``mlscale_serving_cold_start_total{view}`` — events whose entity the feature store does not know;
* ``mlscale_serving_errors_total{kind}`` — ``feature_store``, ``model``, ``log_dropped``;
* ``mlscale_serving_model_info{role,version}`` — 1 for each version served now;
* ``mlscale_serving_log_queue_depth``, ``mlscale_serving_in_flight`` — the response log's buffer and the
  requests being handled;
* ``mlscale_serving_latency_p99_seconds`` — the p99 of the last SLO window.

The SLO (:class:`LatencySlo`): the model specification's ``serving.latency_slo_p99_ms`` over windows of
``serving.slo_window_s``. When a whole window's p99 is above it (and the window saw at least
``min_requests``), one ``latency_slo`` alert goes out; the next goes out only after a window back within it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

logger = logging.getLogger(__name__)

LATENCY_BUCKETS = (0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class ServingMetrics:
    def __init__(self, model: str, registry: CollectorRegistry | None = None) -> None:
        self.model = model
        self.registry = registry if registry is not None else CollectorRegistry()
        r, m = self.registry, ("model",)
        self.requests = Counter("mlscale_serving_requests", "Scoring requests by outcome", [*m, "status"], registry=r)
        self.events = Counter("mlscale_serving_events", "Events decided, by arm", [*m, "arm"], registry=r)
        self.latency = Histogram("mlscale_serving_request_latency_seconds", "Time in the service per request", m,
                                 buckets=LATENCY_BUCKETS, registry=r)
        self.cache_hits = Counter("mlscale_serving_cache_hits", "Predictions served from the cache", m, registry=r)
        self.cache_misses = Counter("mlscale_serving_cache_misses", "Predictions computed", m, registry=r)
        self.cold_start = Counter("mlscale_serving_cold_start", "Events whose entity has no online features",
                                  [*m, "view"], registry=r)
        self.errors = Counter("mlscale_serving_errors", "Errors by kind", [*m, "kind"], registry=r)
        self.model_info = Gauge("mlscale_serving_model_info", "Versions served now", [*m, "role", "version"],
                                registry=r)
        self.log_depth = Gauge("mlscale_serving_log_queue_depth", "Response-log records waiting", m, registry=r)
        self.in_flight = Gauge("mlscale_serving_in_flight", "Requests being handled", m, registry=r)
        self.p99 = Gauge("mlscale_serving_latency_p99_seconds", "p99 latency of the last SLO window", m, registry=r)
        self._served: set[tuple[str, str]] = set()

    def served(self, roles: dict[str, str]) -> None:
        """Mark the versions served now (``role -> version``); versions no longer served go to 0."""
        now = set(roles.items())
        for role, version in self._served - now:
            self.model_info.labels(self.model, role, version).set(0)
        for role, version in now:
            self.model_info.labels(self.model, role, version).set(1)
        self._served = now

    def hit_rate(self) -> float | None:
        hits = self.cache_hits.labels(self.model)._value.get()
        misses = self.cache_misses.labels(self.model)._value.get()
        return hits / (hits + misses) if hits + misses else None


class LatencySlo:
    """Windows of request latencies; one alert per breach (a window whose p99 is above the SLO)."""

    def __init__(self, *, p99_ms: float, window_s: float, min_requests: int = 50,
                 alert: Callable[[str], Any] | None = None, clock: Callable[[], float] = time.monotonic,
                 gauge: Any = None) -> None:
        self.p99_ms, self.window_s, self.min_requests = p99_ms, window_s, min_requests
        self.alert, self.clock, self.gauge = alert, clock, gauge
        self._lock = threading.Lock()
        self._started = clock()
        self._latencies: list[float] = []
        self.breached = False
        self.alerts = 0
        self.last_p99_ms: float | None = None

    def observe(self, seconds: float) -> None:
        with self._lock:
            self._latencies.append(seconds)
            if self.clock() - self._started < self.window_s:
                return
            window, self._latencies, self._started = self._latencies, [], self.clock()
        self._close_window(window)

    def _close_window(self, window: list[float]) -> None:
        if len(window) < self.min_requests:
            return
        p99_ms = float(np.percentile(np.asarray(window), 99)) * 1000
        self.last_p99_ms = p99_ms
        if self.gauge is not None:
            self.gauge.set(p99_ms / 1000)
        if p99_ms <= self.p99_ms:
            if self.breached:
                logger.info("latency back within the SLO: p99 %.2f ms <= %.2f ms over %d requests", p99_ms,
                            self.p99_ms, len(window))
            self.breached = False
            return
        if self.breached:
            return
        self.breached = True
        self.alerts += 1
        cause = (f"p99 latency {p99_ms:.1f} ms > SLO {self.p99_ms:g} ms over the last {self.window_s:g} s "
                 f"({len(window)} requests)")
        logger.error("latency SLO breached: %s", cause)
        if self.alert is not None:
            try:
                self.alert(cause)
            except Exception:  # noqa: BLE001 - an alert channel that fails never fails a request
                logger.exception("latency SLO alert could not be delivered")
