"""Online scoring of one model: validate, look up, compute the inputs as batch does, route, predict, log.

:class:`OnlineScorer` is the service without HTTP (``mlscale.serving.app`` wraps it). Per request:

1. the events are checked against the events contract (:mod:`mlscale.serving.request`; problems → 422);
2. entity features come from the Feast online store (:mod:`mlscale.serving.online`) and the event features
   from :func:`mlscale.training.inputs.event_feature_columns` — the very function of batch scoring and training —
   over the request's events plus the recent events of their keys (:mod:`mlscale.serving.recent`);
3. each event is routed by the hash of its sticky field (``sticky_by``, e.g. the customer): a canary share (the
   rollout record), an A/B share for the challenger (the serving policy), else the champion;
4. the deciding version's score comes from the cache or the model; the decision is ``review`` at or above that
   version's threshold (its holdout ``threshold_at_budget``, as in batch), else ``pass``;
5. after the response (:meth:`OnlineScorer.finish`), shadow versions score the same inputs and every response
   is queued for the response log — shadow scores are logged, never returned.

An unknown entity is scored with missing values (as batch does for a new customer) and flagged
``cold_start``. When the online store cannot be read, every event of the request gets the policy's fallback
decision with a null score and ``fallback: true`` (HTTP 200, counted as an error metric) — never a 500 storm.

Versions: :meth:`OnlineScorer.refresh` re-reads the registry aliases, the rollout record and the serving
policy; a new version is loaded and warmed up beside the old ones, then the routing is swapped in one
assignment, so a request sees either the old routing or the new one, never a mix.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from mlscale.lake import Lake, PartitionRef
from mlscale.scoring.dedupe import canonical_block
from mlscale.scoring.models import ScoringModel, scoring_model
from mlscale.scoring.sampling import sample_mask
from mlscale.scoring.workers import predict_block
from mlscale.serving.cache import PredictionCache
from mlscale.serving.metrics import LatencySlo, ServingMetrics
from mlscale.serving.online import FeatureStoreUnavailable, OnlineFeatures
from mlscale.serving.policy import ModelServingPolicy, load_serving_policy
from mlscale.serving.recent import RecentEvents
from mlscale.serving.request import EventSchema
from mlscale.serving.response_log import ResponseLog
from mlscale.serving.rollout import Rollout, read_rollout
from mlscale.training import registry
from mlscale.training.inputs import entity_frame, event_feature_columns
from mlscale.training.spec import ModelSpec, load_model_spec

logger = logging.getLogger(__name__)

CHAMPION, CHALLENGER, CANARY = "champion", "challenger", "canary"


class NotReady(RuntimeError):
    """The service has no routing yet (no champion, or the first load failed)."""


@dataclass(frozen=True)
class Routing:
    """Who decides and who shadows, at one moment: swapped whole on refresh."""

    champion: ScoringModel
    challenger: ScoringModel | None
    canary: ScoringModel | None
    canary_share: float
    shadows: tuple[ScoringModel, ...]
    policy: ModelServingPolicy
    columns: tuple[str, ...]             #: every served version's inputs (champion's order first)

    def arm(self, sticky: Any) -> ScoringModel:
        position = self.policy.arm_position(sticky)
        if self.canary is not None and position < self.canary_share:
            return self.canary
        if self.challenger is not None and position < self.canary_share + self.policy.challenger_share:
            return self.challenger
        return self.champion

    def roles(self) -> dict[str, str]:
        roles = {CHAMPION: self.champion.version}
        if self.challenger is not None and self.policy.challenger_share > 0:
            roles[CHALLENGER] = self.challenger.version
        if self.canary is not None:
            roles[CANARY] = self.canary.version
        for shadow in self.shadows:
            roles.setdefault(f"shadow:{shadow.role}", shadow.version)
        return roles

    def describe(self) -> dict[str, Any]:
        return {"champion": self.champion.version, "threshold": self.champion.threshold,
                "challenger": self.challenger.version if self.challenger else None,
                "challenger_share": self.policy.challenger_share if self.challenger else 0.0,
                "canary": self.canary.version if self.canary else None, "canary_share": self.canary_share,
                "shadow": [s.version for s in self.shadows], "sticky_by": self.policy.sticky_by}


@dataclass
class Pending:
    """What :meth:`OnlineScorer.finish` does after the response: shadow scores and the response log."""

    routing: Routing
    rows: list[dict[str, Any]]
    block: np.ndarray | None
    responses: list[dict[str, Any]]
    latency_ms: float
    deciders: list[str] = field(default_factory=list)


class OnlineScorer:
    def __init__(self, *, lake: Lake, model: str, store: Any, registry_client: Any, policy_path: str | None = None,
                 response_log: bool = True, alert: Any = None, spec: ModelSpec | None = None) -> None:
        self.lake, self.store, self.registry_client = lake, store, registry_client
        self.spec = spec or load_model_spec(model)
        self.policy_path = policy_path
        self.policy = load_serving_policy(self.spec.name, policy_path)
        self.schema = EventSchema.for_spec(self.spec)
        self.online = OnlineFeatures(store, self.spec)
        self.recent = RecentEvents(self.spec)
        self.metrics = ServingMetrics(self.spec.name)
        self.slo = LatencySlo(p99_ms=self.spec.serving.latency_slo_p99_ms, window_s=self.spec.serving.slo_window_s,
                              alert=alert, gauge=self.metrics.p99.labels(self.spec.name))
        self.cache = PredictionCache(ttl_s=self.policy.cache_ttl_s, max_entries=self.policy.cache_entries)
        self.log = ResponseLog(lake, self.spec.name, flush_rows=self.policy.log_flush_rows,
                               flush_s=self.policy.log_flush_s, buffer_rows=self.policy.log_buffer_rows) \
            if response_log else None
        self.routing: Routing | None = None
        self._loaded: dict[tuple[str, str, str], ScoringModel] = {}   # (version, role, variant) -> loaded model
        self._state_lock = threading.Lock()                         # the recent-events memory and the cache
        self._refresh_lock = threading.Lock()
        self._versions_now: dict[str, str | None] = {}
        self._said_no_champion = False

    # -- versions ------------------------------------------------------------------------------------------------
    @property
    def ready(self) -> bool:
        return self.routing is not None

    def refresh(self) -> bool:
        """Re-read the policy, aliases and rollout; load and warm new versions; swap. True when routing changed."""
        with self._refresh_lock:
            policy = load_serving_policy(self.spec.name, self.policy_path)
            rollout = read_rollout(self.lake, self.spec.name)
            versions = self._versions(rollout)
            if versions[CHAMPION] is None:
                if self.routing is None and not self._said_no_champion:   # said once, not every refresh
                    logger.error("%s has no champion in the registry: not ready (the registry is read again every "
                                 "%g s)", self.spec.name, policy.refresh_s)
                    self._said_no_champion = True
                return False
            current = self.routing
            if current is not None and current.policy == policy and versions == self._versions_now:
                return False
            routing = self._routing(policy, versions, rollout)
            self._warm_up(routing)
            self.routing = routing                         # the swap: one assignment
            self.policy, self._versions_now = policy, versions
            self._loaded = {k: m for k, m in self._loaded.items() if k[0] in routing.roles().values()}
            self.metrics.served(routing.roles())
            logger.info("%s routing now %s", self.spec.name, routing.describe())
            return True

    def _versions(self, rollout: Rollout) -> dict[str, str | None]:
        """The versions to serve: during a canary the previous champion keeps deciding beside the canary (the
        registry's champion already names the new version), else the registry's champion."""
        name = self.spec.name
        in_canary = rollout.canary is not None and rollout.previous is not None
        champion = rollout.previous if in_canary else registry.alias_version(self.registry_client, name,
                                                                             registry.CHAMPION)
        return {CHAMPION: champion,
                CHALLENGER: registry.alias_version(self.registry_client, name, registry.CHALLENGER),
                CANARY: rollout.canary, "canary_share": str(rollout.share if rollout.canary else 0.0)}

    def _model(self, version: str, role: str, variant: str) -> ScoringModel:
        """A version in a role; ``variant`` compressed: its compressed variant when it has one (else the full)."""
        key = (version, role, variant)
        if key not in self._loaded:
            loaded = scoring_model(self.lake, self.spec.name, version, role)
            compressed = loaded.model.compressed(self.lake) if variant == "compressed" else None
            if compressed is not None:   # decides at its own holdout threshold at the review budget
                loaded = dataclasses.replace(
                    loaded, model=compressed, threshold=float(compressed.doc["compressed"]["threshold_at_budget"]),
                    threshold_source=f"compressed variant of version {version} (holdout threshold_at_budget)")
            self._loaded[key] = loaded
        return self._loaded[key]

    def _routing(self, policy: ModelServingPolicy, versions: dict[str, str | None], rollout: Rollout) -> Routing:
        variant = policy.variant
        champion = self._model(str(versions[CHAMPION]), CHAMPION, variant)
        challenger_version = versions[CHALLENGER]
        challenger = self._model(challenger_version, CHALLENGER, variant) \
            if challenger_version and challenger_version != champion.version else None
        canary = self._model(rollout.canary, CANARY, variant) \
            if rollout.canary and rollout.canary != champion.version else None
        by_alias = {CHAMPION: champion, CHALLENGER: challenger, CANARY: canary}
        shadows = tuple(m for alias in policy.shadow if (m := by_alias.get(alias)) is not None)
        served = [champion, challenger, canary, *shadows]
        columns = tuple(dict.fromkeys(c for m in served if m is not None for c in m.model.features))
        return Routing(champion=champion, challenger=challenger if policy.challenger_share > 0 else None,
                       canary=canary, canary_share=rollout.share if canary else 0.0, shadows=shadows, policy=policy,
                       columns=columns)

    def _warm_up(self, routing: Routing) -> None:
        """Score the latest committed raw events through the whole path, then a block per version."""
        started = time.perf_counter()
        rows = self._recent_raw_events(routing.policy.warmup_rows)
        if rows:
            try:
                block, _ = self._inputs(rows, [], routing.columns)
            except FeatureStoreUnavailable as exc:
                logger.warning("warm-up could not read the online store (%s): models warmed on zeros", exc)
                block = np.zeros((routing.policy.warmup_rows, len(routing.columns)), dtype=np.float32)
        else:
            block = np.zeros((routing.policy.warmup_rows, len(routing.columns)), dtype=np.float32)
        models = {m.version: m for m in (routing.champion, routing.challenger, routing.canary, *routing.shadows)
                  if m is not None}
        for m in models.values():
            predict_block(m.model, block, list(routing.columns))
            predict_block(m.model, block[:1], list(routing.columns))
        logger.info("warmed up %s on %d rows in %.2fs", sorted(models), len(block), time.perf_counter() - started)

    def _recent_raw_events(self, n: int) -> list[dict[str, Any]]:
        parts = [r for r in self.lake.partitions("raw", self.spec.events_dataset) if not r.keys]
        if not parts:
            return []
        table = self.lake.read_table(PartitionRef.of("raw", self.spec.events_dataset, parts[-1].dt),
                                     columns=[c.name for c in self.schema.columns])
        return table.slice(0, n).to_pylist()

    # -- scoring ---------------------------------------------------------------------------------------------------
    def _inputs(self, rows: list[dict[str, Any]], context: list[dict[str, Any]],
                columns: tuple[str, ...]) -> tuple[np.ndarray, list[tuple[str, ...]]]:
        """The float32 model inputs (``columns``) of ``rows``, computed over ``context + rows`` with the batch
        functions on the request's columns as arrays (no DataFrame: a request is small), and the cold views."""
        table = entity_frame(pa.Table.from_pylist(context + rows, schema=self.schema.arrow), self.spec)
        arrays: dict[str, Any] = {name: table.column(name).to_numpy(zero_copy_only=False)
                                  for name in table.column_names}
        found = self.online.lookup(arrays, table.num_rows)
        arrays.update(found.values)
        arrays.update(event_feature_columns(arrays, self.spec))
        block = np.column_stack([arrays[c] for c in columns])[len(context):]
        return canonical_block(block.astype(np.float32)), found.cold[len(context):]

    def score(self, body: Any) -> tuple[list[dict[str, Any]], Pending]:
        """Responses for a request body (one event, or ``{"events": [...]}``) and the work left for after."""
        started = time.perf_counter()
        routing = self.routing
        if routing is None:
            raise NotReady(f"{self.spec.name}: no champion loaded yet")
        rows = self.schema.parse(body)
        request_id = uuid.uuid4().hex
        key, name = self.spec.event_key, self.spec.name
        with self._state_lock:
            context = self.recent.context(rows)
            try:
                block, cold = self._inputs(rows, context, routing.columns)
            except FeatureStoreUnavailable as exc:
                self.metrics.errors.labels(name, "feature_store").inc()
                self.metrics.requests.labels(name, "fallback").inc()
                logger.error("%s request %s: %s; %d events get the fallback decision %r", name, request_id, exc,
                             len(rows), routing.policy.fallback_decision)
                routed = [routing.arm(row.get(routing.policy.sticky_by)) for row in rows]
                responses = [{"request_id": request_id, "event_id": row[key], "model": name, "version": m.version,
                              "arm": m.role, "score": None, "decision": routing.policy.fallback_decision,
                              "threshold": None, "cold_start": [], "fallback": True, "cached": False}
                             for row, m in zip(rows, routed, strict=True)]
                return responses, self._pending(routing, rows, None, responses, started)
            deciders = [routing.arm(row.get(routing.policy.sticky_by)) for row in rows]
            scores, cached = self._predict(routing, block, deciders)
            self.recent.remember(rows)
        responses = []
        for i, row in enumerate(rows):
            m = deciders[i]
            self.metrics.events.labels(name, m.role).inc()
            for view in cold[i]:
                self.metrics.cold_start.labels(name, view).inc()
            responses.append({"request_id": request_id, "event_id": row[key], "model": name, "version": m.version,
                              "arm": m.role, "score": float(scores[i]),
                              "decision": "review" if scores[i] >= m.threshold else "pass",
                              "threshold": m.threshold, "cold_start": list(cold[i]), "fallback": False,
                              "cached": bool(cached[i])})
        self.metrics.requests.labels(name, "ok").inc()
        return responses, self._pending(routing, rows, block, responses, started, [m.version for m in deciders])

    def _pending(self, routing: Routing, rows: list[dict[str, Any]], block: np.ndarray | None,
                 responses: list[dict[str, Any]], started: float, deciders: list[str] | None = None) -> Pending:
        seconds = time.perf_counter() - started
        self.metrics.latency.labels(self.spec.name).observe(seconds)
        self.slo.observe(seconds)
        return Pending(routing=routing, rows=rows, block=block, responses=responses, latency_ms=seconds * 1000,
                       deciders=deciders or [])

    def _predict(self, routing: Routing, block: np.ndarray, deciders: list[ScoringModel]) -> tuple[np.ndarray, np.ndarray]:
        scores = np.empty(len(block), dtype=np.float64)
        cached = np.zeros(len(block), dtype=bool)
        columns = list(routing.columns)
        for version in dict.fromkeys(m.version for m in deciders):
            model = next(m for m in deciders if m.version == version)
            rows = [i for i, m in enumerate(deciders) if m.version == version]
            misses = []
            for i in rows:
                hit = self.cache.get(version, block[i].tobytes())
                if hit is None:
                    misses.append(i)
                else:
                    scores[i], cached[i] = hit, True
            if misses:
                predicted = predict_block(model.model, block[misses], columns)
                scores[misses] = predicted
                for i, score in zip(misses, predicted, strict=True):
                    self.cache.put(version, block[i].tobytes(), float(score))
            self.metrics.cache_hits.labels(self.spec.name).inc(len(rows) - len(misses))
            self.metrics.cache_misses.labels(self.spec.name).inc(len(misses))
        return scores, cached

    def finish(self, pending: Pending) -> None:
        """After the response: shadow scores, then the response log (never raises)."""
        try:
            shadow_versions, shadow_scores = self._shadow_scores(pending)
            if self.log is None:
                return
            key, when = self.spec.event_key, self.spec.event_time
            keys = [str(r[key]) for r in pending.rows]
            sampled = sample_mask(pa.array(keys, pa.string()), self.policy.log_sample_rate)
            now = time.time()
            import datetime as dt

            logged_at = dt.datetime.fromtimestamp(now, dt.UTC)
            records = []
            for i, (row, response) in enumerate(zip(pending.rows, pending.responses, strict=True)):
                inputs = pending.block[i].tolist() if pending.block is not None and sampled[i] else None
                records.append({
                    "request_id": response["request_id"], "event_key": keys[i], "event_time": row[when],
                    "model": self.spec.name, "version": response["version"], "arm": response["arm"],
                    "score": response["score"], "decision": response["decision"],
                    "threshold": response["threshold"], "cached": response["cached"],
                    "cold_start": response["cold_start"], "fallback": response["fallback"],
                    "latency_ms": pending.latency_ms, "shadow_versions": shadow_versions[i],
                    "shadow_scores": shadow_scores[i], "inputs": inputs, "logged_at": logged_at})
            if self.log.add(records):
                self.metrics.errors.labels(self.spec.name, "log_dropped").inc(len(records))
            self.metrics.log_depth.labels(self.spec.name).set(self.log.depth)
        except Exception:  # noqa: BLE001 - the response is gone already; log and count
            self.metrics.errors.labels(self.spec.name, "log").inc()
            logger.exception("%s: shadow scoring or response logging failed", self.spec.name)

    def _shadow_scores(self, pending: Pending) -> tuple[list[list[str]], list[list[float]]]:
        n = len(pending.rows)
        versions: list[list[str]] = [[] for _ in range(n)]
        scores: list[list[float]] = [[] for _ in range(n)]
        if pending.block is None:
            return versions, scores
        for shadow in pending.routing.shadows:
            rows = [i for i in range(n) if pending.deciders[i] != shadow.version]
            if not rows:
                continue
            predicted = predict_block(shadow.model, pending.block[rows], list(pending.routing.columns))
            for i, score in zip(rows, predicted, strict=True):
                versions[i].append(shadow.version)
                scores[i].append(float(score))
        return versions, scores

    def close(self) -> None:
        if self.log is not None:
            self.log.close()
