"""Where alerts are delivered in tests: a local SMTP server (aiosmtpd) and a local HTTP webhook receiver."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from email import message_from_bytes, policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.integration.airflow_stack import _free_port


class Received:
    def __init__(self) -> None:
        self.emails: list[Any] = []
        self.posts: list[dict[str, Any]] = []


@contextmanager
def alert_receivers() -> Iterator[tuple[Received, dict[str, str]]]:
    """Start both receivers; yields what they received and the environment that names them as the alert
    connections (``alerts_email``, ``alerts_webhook``) with a UI address for the links."""
    from aiosmtpd.controller import Controller

    received = Received()

    class Mailbox:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 (aiosmtpd API)
            received.emails.append(message_from_bytes(envelope.content, policy=policy.default))
            return "250 OK"

    class Webhook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server API)
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            received.posts.append({"path": self.path, "body": json.loads(body)})
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    smtp_port = _free_port()
    controller = Controller(Mailbox(), hostname="127.0.0.1", port=smtp_port)
    controller.start()
    http = ThreadingHTTPServer(("127.0.0.1", 0), Webhook)
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    env = {
        "AIRFLOW_CONN_ALERTS_EMAIL": json.dumps({
            "conn_type": "smtp", "host": "127.0.0.1", "port": smtp_port,
            "extra": {"to": "oncall@example.com", "from_email": "mlscale@example.com", "disable_ssl": True,
                      "disable_tls": True}}),
        "AIRFLOW_CONN_ALERTS_WEBHOOK": json.dumps({
            "conn_type": "http", "host": f"http://127.0.0.1:{http.server_address[1]}/hooks/oncall"}),
        "AIRFLOW_VAR_MLSCALE_ALERT_CONNECTIONS": "alerts_email,alerts_webhook",
        "AIRFLOW_VAR_MLSCALE_UI_URL": "http://airflow.example:8080",
    }
    try:
        yield received, env
    finally:
        controller.stop()
        http.shutdown()
