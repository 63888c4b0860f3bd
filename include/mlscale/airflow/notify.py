"""Deliver :class:`~mlscale.alerts.Alert` s to people, through Airflow connections.

The Variable ``mlscale_alert_connections`` names the connections (comma-separated); each is used by its type:

* ``smtp`` — an e-mail through the SMTP provider's hook: host, port, login and password of the connection,
  ``extra``: ``to`` (one address or a list), ``from_email``, and the hook's ``disable_ssl`` / ``disable_tls``;
* ``http`` — a JSON POST (``{"text": ..., "alert": {...}}``) through the HTTP provider's hook to the webhook's
  full URL in the connection's host (port included, the port field empty): a Slack or Teams incoming webhook, a
  paging service's webhook integration, or any receiver of your own.

Every alert is logged, delivered or not; a channel that fails is logged and never fails the task that raised
the alert. Links point into the Airflow UI at ``mlscale_ui_url`` (default: the ``[api] base_url`` setting).
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

from mlscale.alerts import CRITICAL, Alert

logger = logging.getLogger("mlscale.alerts")


def ui_url() -> str:
    from mlscale.airflow.settings import platform

    try:
        configured = platform().ui_url
    except Exception:  # noqa: BLE001 - settings that cannot be read: the default below
        configured = ""
    if configured:
        return configured.rstrip("/")
    try:
        from airflow.configuration import conf

        return str(conf.get("api", "base_url", fallback="") or "http://localhost:8080").rstrip("/")
    except Exception:  # noqa: BLE001 - no Airflow configuration here: the local default
        return "http://localhost:8080"


def run_url(dag_id: str, run_id: str) -> str:
    """The DAG run's page in the Airflow UI."""
    return f"{ui_url()}/dags/{quote(dag_id)}/runs/{quote(run_id, safe='')}"


def task_log_url(dag_id: str, run_id: str, task_id: str, map_index: int = -1, try_number: int = 0) -> str:
    """The task instance's log page in the Airflow UI."""
    url = f"{run_url(dag_id, run_id)}/tasks/{quote(task_id)}"
    if map_index is not None and map_index >= 0:
        url += f"/mapped/{map_index}"
    return url + (f"?try_number={try_number}" if try_number else "")


def report_link(kind: str, key: str, name: str = "report.html") -> str:
    """A report in the reports view (see :func:`mlscale.reports.catalog.report_url`)."""
    from mlscale.reports.catalog import report_url

    return ui_url() + report_url(kind, key, name)


def send_alert(alert: Alert, connections: str | None = None) -> dict[str, str]:
    """Log ``alert`` and deliver it to each connection of ``connections`` (default: the Variable
    ``mlscale_alert_connections``). Returns connection id -> ``sent`` or ``failed: <why>``."""
    (logger.error if alert.severity == CRITICAL else logger.warning)("ALERT %s", alert.text().replace("\n", " | "))
    if connections is None:
        from mlscale.airflow.settings import platform

        try:
            connections = platform().alert_connections
        except Exception as exc:  # noqa: BLE001 - settings that cannot be read: the alert stays in the log
            logger.warning("alert %r: the alert connections could not be read (%s: %s)", alert.subject,
                           type(exc).__name__, exc)
            return {}
    outcome: dict[str, str] = {}
    for conn_id in (c.strip() for c in connections.split(",")):
        if not conn_id:
            continue
        try:
            _deliver(conn_id, alert)
            outcome[conn_id] = "sent"
        except Exception as exc:  # noqa: BLE001 - a channel down must not fail the task that found the condition
            outcome[conn_id] = f"failed: {type(exc).__name__}: {exc}"
            logger.warning("alert %r was not delivered to connection %s: %s: %s", alert.subject, conn_id,
                           type(exc).__name__, exc)
    if outcome:
        logger.info("alert %r: %s", alert.subject, ", ".join(f"{k} {v}" for k, v in outcome.items()))
    return outcome


def _deliver(conn_id: str, alert: Alert) -> None:
    from airflow.sdk import BaseHook

    conn = BaseHook.get_connection(conn_id)
    kind = (conn.conn_type or "").lower()
    extra = conn.extra_dejson
    if kind in ("smtp", "email"):
        _email(conn_id, extra, alert)
    elif kind in ("http", "https"):
        _webhook(conn_id, alert)
    else:
        raise ValueError(f"connection {conn_id} has type {kind!r}: alerts go to 'smtp' or 'http' connections")


def _email(conn_id: str, extra: dict[str, Any], alert: Alert) -> None:
    from airflow.providers.smtp.hooks.smtp import SmtpHook

    to = extra.get("to")
    if not to:
        raise ValueError(f"connection {conn_id} has no 'to' in its extra: set the recipients' addresses")
    with SmtpHook(smtp_conn_id=conn_id) as hook:
        hook.send_email_smtp(to=to, subject=alert.subject, html_content=alert.html(),
                             from_email=extra.get("from_email") or "mlscale-alerts@localhost")


def _webhook(conn_id: str, alert: Alert) -> None:
    from airflow.providers.http.hooks.http import HttpHook

    HttpHook(method="POST", http_conn_id=conn_id).run(json=alert.payload(), extra_options={"timeout": 10})
