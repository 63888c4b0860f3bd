"""``mlscale serve``: the online scoring service (uvicorn) over the configured lake, feature store and registry.

The app is built in each worker process by :func:`app_from_env` (a uvicorn factory), from the platform
settings (``MLSCALE_*`` / ``AIRFLOW_VAR_MLSCALE_*``) and ``MLSCALE_SERVE_MODEL``; latency-SLO alerts go to the
connections of ``mlscale_alert_connections`` like every other alert.
"""

from __future__ import annotations

import logging
import os
from typing import Any

logger = logging.getLogger(__name__)

MODEL_ENV = "MLSCALE_SERVE_MODEL"
LAKE_ENV = "MLSCALE_SERVE_LAKE"
POLICY_ENV = "MLSCALE_SERVE_POLICY"


def build_scorer(model: str, *, lake: str | None = None, policy: str | None = None) -> Any:
    from mlscale.airflow.cli.lake_root import lake_for_cli
    from mlscale.feature_store import feature_store_for
    from mlscale.serving.scorer import OnlineScorer
    from mlscale.settings import Platform
    from mlscale.training import registry

    settings = Platform.from_env()
    the_lake = lake_for_cli(lake)
    store = feature_store_for(the_lake, root=settings.feast_root or None, online_store=settings.online_store,
                              redis_connection_string=settings.redis_connection_string)
    client = registry.client_for(registry.RegistryConfig.for_lake(the_lake, settings.tracking_uri))
    return OnlineScorer(lake=the_lake, model=model, store=store, registry_client=client, policy_path=policy,
                        alert=_slo_alert(model))


def _slo_alert(model: str) -> Any:
    def alert(cause: str) -> None:
        from mlscale.airflow.notify import send_alert
        from mlscale.alerts import WARNING, Alert

        send_alert(Alert(kind="latency_slo", severity=WARNING, dag_id="serve", partition=model, cause=cause))

    return alert


def app_from_env() -> Any:
    """The uvicorn factory: one scorer and app per worker process (under ``--autoscale``, counting its requests
    in flight on the supervisor's board, and answering ``GET /v1/workers``)."""
    from mlscale.serving.app import create_app
    from mlscale.serving.autoscale import BOARD_ENV, InFlight, InFlightBoard

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    app = create_app(build_scorer(os.environ[MODEL_ENV], lake=os.environ.get(LAKE_ENV) or None,
                                  policy=os.environ.get(POLICY_ENV) or None))
    if not os.environ.get(BOARD_ENV):
        return app
    board = InFlightBoard(os.environ[BOARD_ENV])
    board.claim()

    async def workers() -> dict[str, int]:
        return {"workers": board.workers, "in_flight": board.total()}

    app.add_api_route("/v1/workers", workers, methods=["GET"])
    return InFlight(app, board)


def serve_command(model: str, *, host: str, port: int, workers: int, lake: str | None, policy: str | None,
                  autoscale: Any = None) -> None:
    """Serve ``model``; ``autoscale`` (an :class:`~mlscale.serving.autoscale.AutoscalePolicy`): worker processes
    follow the requests in flight instead of a fixed ``workers``."""
    import tempfile

    import uvicorn

    os.environ[MODEL_ENV] = model
    os.environ[LAKE_ENV] = lake or ""
    os.environ[POLICY_ENV] = policy or ""
    if autoscale is not None:
        from mlscale.serving.autoscale import serve_autoscaled

        board = os.path.join(tempfile.gettempdir(), f"mlscale-serve-{port}-{os.getpid()}.board")
        serve_autoscaled(f"{__name__}:app_from_env", host=host, port=port, policy=autoscale, board_path=board)
        return
    uvicorn.run(f"{__name__}:app_from_env", factory=True, host=host, port=port, workers=workers,
                log_level="warning", access_log=False)
