"""The HTTP face of the online scorer (FastAPI).

==========================  ===================================================================================
``POST /v1/score``          one event object, or ``{"events": [...]}``; answers ``{"predictions": [...]}``, one
                            per event in order (score, decision, version, arm, request id, cold start, fallback)
``GET /live``               the process is up (200)
``GET /ready``              200 once a champion is loaded and warmed up, else 503 (load balancers wait for it)
``GET /v1/models``          the routing now: champion, challenger and share, canary and share, shadows
``GET /metrics``            Prometheus metrics (:mod:`mlscale.serving.metrics`)
==========================  ===================================================================================

A field that is missing or malformed answers 422 with ``detail: [{"loc": ["events", i, field], "msg": ...}]``.
Shadow scoring and the response log run after the response is sent. A background thread re-reads aliases,
rollout and policy every ``refresh_s`` seconds (:meth:`OnlineScorer.refresh`): no restart for a promotion, a
rollback, a canary step or a policy edit.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections.abc import AsyncIterator
from typing import Any

from fastapi import BackgroundTasks, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from mlscale.serving.request import RequestInvalid
from mlscale.serving.scorer import NotReady, OnlineScorer

logger = logging.getLogger(__name__)


def create_app(scorer: OnlineScorer, *, refresh: bool = True) -> FastAPI:
    app = FastAPI(title=f"mlscale online scoring: {scorer.spec.name}", lifespan=_lifespan(scorer, refresh))
    in_flight = scorer.metrics.in_flight.labels(scorer.spec.name)

    @app.post("/v1/score")
    async def score(request: Request, background: BackgroundTasks) -> Response:
        in_flight.inc()
        try:
            return _scored(scorer, await request.body(), background)
        finally:
            in_flight.dec()

    @app.get("/live")
    async def live() -> dict[str, str]:
        return {"status": "live"}

    @app.get("/ready")
    async def ready() -> Response:
        if scorer.routing is not None:
            return JSONResponse({"status": "ready", **scorer.routing.describe()})
        return JSONResponse({"status": "not ready"}, status_code=503)

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {"model": scorer.spec.name, "ready": scorer.ready,
                "routing": scorer.routing.describe() if scorer.routing else None,
                "latency_slo_p99_ms": scorer.spec.serving.latency_slo_p99_ms}

    @app.get("/metrics")
    async def metrics() -> Response:
        if scorer.log is not None:
            scorer.metrics.log_depth.labels(scorer.spec.name).set(scorer.log.depth)
        return Response(generate_latest(scorer.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app


def _scored(scorer: OnlineScorer, raw: bytes, background: BackgroundTasks) -> Response:
    """The answer to one scoring request: 200 with predictions, 422 naming bad fields, 503 when not ready."""
    requests, name = scorer.metrics.requests, scorer.spec.name
    try:
        try:
            body = json.loads(raw)
        except ValueError as exc:
            requests.labels(name, "invalid").inc()
            return JSONResponse({"detail": [{"loc": ["body"], "msg": f"not JSON: {exc}"}]}, status_code=422)
        try:
            responses, pending = scorer.score(body)
        except RequestInvalid as exc:
            requests.labels(name, "invalid").inc()
            return JSONResponse({"detail": [p.as_dict() for p in exc.problems]}, status_code=422)
        except NotReady as exc:
            requests.labels(name, "error").inc()
            return JSONResponse({"detail": str(exc)}, status_code=503)
        background.add_task(scorer.finish, pending)
        return JSONResponse({"predictions": responses})
    except Exception as exc:  # noqa: BLE001 - counted and answered; the log has the traceback
        requests.labels(name, "error").inc()
        scorer.metrics.errors.labels(name, "model").inc()
        logger.exception("%s: scoring failed", name)
        return JSONResponse({"detail": f"scoring failed: {type(exc).__name__}"}, status_code=500)


def _lifespan(scorer: OnlineScorer, refresh: bool) -> Any:
    """Load and warm up before serving (``/ready``), re-read versions every ``refresh_s``, flush the log at exit."""
    stop = threading.Event()

    def refresher() -> None:
        while not stop.wait(scorer.policy.refresh_s):
            try:
                scorer.refresh()
            except Exception:  # noqa: BLE001 - keep serving the routing we have; say why in the log
                logger.exception("%s: refresh failed; still serving %s", scorer.spec.name,
                                 scorer.routing.describe() if scorer.routing else "nothing")

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            scorer.refresh()
        except Exception:  # noqa: BLE001 - not ready; /ready says so and the refresher tries again
            logger.exception("%s: first load failed", scorer.spec.name)
        if refresh:
            threading.Thread(target=refresher, name="serving-refresh", daemon=True).start()
        yield
        stop.set()
        scorer.close()

    return lifespan
