"""The mlscale reports view inside the Airflow UI (Browse → Reports), served by the api-server.

Mounts the FastAPI app of :mod:`mlscale.airflow.reports_app` at ``/mlscale-reports`` and adds a navigation
entry that shows it in the UI. Every Airflow process loads this file, so it imports only the plugin
base class: the app (FastAPI, pyarrow, the lake) is built on the first request the api-server routes
to it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import urlparse

from airflow.sdk.plugins_manager import AirflowPlugin

logger = logging.getLogger(__name__)

URL_PREFIX = "/mlscale-reports"

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class LazyReportsApp:
    """An ASGI app that builds :func:`mlscale.airflow.reports_app.create_app` on its first request."""

    def __init__(self) -> None:
        self._app: Callable[[Scope, Receive, Send], Awaitable[None]] | None = None
        self._lock = threading.Lock()

    def _build(self) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
        with self._lock:
            if self._app is None:
                from mlscale.airflow.reports_app import create_app

                self._app = create_app()
                logger.info("mlscale reports view ready at %s", URL_PREFIX)
            return self._app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        app = self._app or self._build()
        await app(scope, receive, send)


def _ui_path(path: str) -> str:
    """``path`` below the path of ``[api] base_url`` (Airflow served at the root: ``path`` itself)."""
    try:
        from airflow.configuration import conf

        base_url = conf.get("api", "base_url", fallback="") or ""
    except Exception:  # a process without Airflow's core configuration (task SDK only): serve at the root
        base_url = ""
    return urlparse(base_url).path.rstrip("/") + path


class MlscaleReportsPlugin(AirflowPlugin):
    """Reports written to the lake (health, drift, bias, shadow, cost, model cards), behind Airflow's login."""

    name = "mlscale_reports"
    fastapi_apps = [{"app": LazyReportsApp(), "url_prefix": URL_PREFIX, "name": "mlscale reports"}]
    external_views = [{
        "name": "Reports",
        "href": _ui_path(f"{URL_PREFIX}/"),
        "destination": "nav",
        "category": "browse",
        "url_route": "mlscale-reports",
    }]
