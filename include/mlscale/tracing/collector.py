"""A small OpenTelemetry collector: OTLP/HTTP (protobuf) traces in, one JSON line per span out.

    python -m mlscale.tracing.collector --port 4318 --out data/traces/spans.jsonl

It serves ``POST /v1/traces`` (``application/x-protobuf``, optionally gzip/deflate-encoded, as the SDK's
``OTLPSpanExporter`` and Airflow send it) and ``GET /health``; ``make stack`` and docker-compose run it so that
Airflow's spans and mlscale's stage spans land in a file with no container or vendor backend. Each line holds
``trace_id``, ``span_id``, ``parent_span_id`` (hex; null for a root), ``name``, ``kind``, ``start``/``end``
(ISO 8601 UTC), ``start_time_unix_nano``/``end_time_unix_nano``, ``duration_ms``, ``status``, ``attributes``,
``events``, ``service`` (the resource's ``service.name``), ``resource`` and ``scope``. Lines are appended and
flushed per request; a reader that catches a line being written skips it (:func:`read_spans`). OTLP/JSON, metrics and logs are not accepted (415/404).
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import gzip
import json
import logging
import signal
import sys
import threading
import zlib
from collections.abc import Iterator
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

TRACES_PATH = "/v1/traces"
DEFAULT_OUT = "data/traces/spans.jsonl"
MAX_BODY_BYTES = 64 << 20
PROTOBUF = "application/x-protobuf"


# --------------------------------------------------------------------------------------------------
# OTLP protobuf -> JSON records
# --------------------------------------------------------------------------------------------------

def any_value(value: Any) -> Any:
    """The Python value of an OTLP ``AnyValue``."""
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [any_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return key_values(value.kvlist_value.values)
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()
    return getattr(value, kind)


def key_values(items: Any) -> dict[str, Any]:
    return {kv.key: any_value(kv.value) for kv in items}


def _iso(nanos: int) -> str | None:
    if not nanos:
        return None
    seconds, rest = divmod(int(nanos), 1_000_000_000)
    moment = dt.datetime.fromtimestamp(seconds, tz=dt.UTC).replace(microsecond=rest // 1000)
    return moment.isoformat().replace("+00:00", "Z")


def _enum_name(enum: Any, number: int, prefix: str) -> str:
    try:
        return str(enum.Name(number)).removeprefix(prefix).lower()
    except ValueError:
        return str(number)


def span_records(request: Any) -> Iterator[dict[str, Any]]:
    """One JSON-ready dict per span of an ``ExportTraceServiceRequest``."""
    from opentelemetry.proto.trace.v1 import trace_pb2

    for resource_spans in request.resource_spans:
        resource = key_values(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            scope = scope_spans.scope.name
            for s in scope_spans.spans:
                yield {
                    "trace_id": s.trace_id.hex(),
                    "span_id": s.span_id.hex(),
                    "parent_span_id": s.parent_span_id.hex() or None,
                    "name": s.name,
                    "kind": _enum_name(trace_pb2.Span.SpanKind, s.kind, "SPAN_KIND_"),
                    "start": _iso(s.start_time_unix_nano),
                    "end": _iso(s.end_time_unix_nano),
                    "start_time_unix_nano": s.start_time_unix_nano,
                    "end_time_unix_nano": s.end_time_unix_nano,
                    "duration_ms": round((s.end_time_unix_nano - s.start_time_unix_nano) / 1e6, 3),
                    "status": {"code": _enum_name(trace_pb2.Status.StatusCode, s.status.code, "STATUS_CODE_"),
                               "message": s.status.message or None},
                    "attributes": key_values(s.attributes),
                    "events": [{"name": e.name, "time": _iso(e.time_unix_nano), "attributes": key_values(e.attributes)}
                               for e in s.events],
                    "service": resource.get("service.name"),
                    "resource": resource,
                    "scope": scope,
                }


def decode_export(body: bytes) -> list[dict[str, Any]]:
    """The span records of one serialized ``ExportTraceServiceRequest``."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    request = ExportTraceServiceRequest()
    request.ParseFromString(body)
    return list(span_records(request))


def read_spans(path: str | Path) -> list[dict[str, Any]]:
    """Every span record of a collector's output file (empty if it does not exist yet)."""
    file = Path(path)
    if not file.exists():
        return []
    spans = []
    for line in file.read_text().splitlines():
        try:
            spans.append(json.loads(line))
        except ValueError:   # blank, or the last line while the collector is still appending it
            continue
    return spans


# --------------------------------------------------------------------------------------------------
# The HTTP receiver
# --------------------------------------------------------------------------------------------------

class SpanFile:
    """Appends span records to a JSONL file, one request's batch at a time."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.spans = 0
        self._lock = threading.Lock()

    def append(self, records: list[dict[str, Any]]) -> None:
        if not records:
            return
        text = "".join(json.dumps(r, separators=(",", ":"), default=str) + "\n" for r in records)
        with self._lock, self.path.open("a", encoding="utf-8") as out:
            out.write(text)
            self.spans += len(records)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        if self.path.split("?")[0] in ("/", "/health"):
            self._reply(HTTPStatus.OK, json.dumps({"status": "ok", "spans": self.server.sink.spans}).encode(),
                        "application/json")
        else:
            self._reply(HTTPStatus.NOT_FOUND, b"not found\n")

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            self._reply(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, b"body too large\n", close=True)
            return
        body = self.rfile.read(length)
        if self.path.split("?")[0] != TRACES_PATH:
            self._reply(HTTPStatus.NOT_FOUND, b"only /v1/traces is collected here\n")
            return
        if (self.headers.get("Content-Type") or "").split(";")[0].strip() != PROTOBUF:
            self._reply(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, b"send OTLP protobuf (application/x-protobuf)\n")
            return
        try:
            records = decode_export(_decoded(body, self.headers.get("Content-Encoding") or ""))
        except Exception as exc:  # noqa: BLE001 - a bad payload is the sender's error, not ours
            self._reply(HTTPStatus.BAD_REQUEST, f"not an OTLP ExportTraceServiceRequest: {exc}\n".encode())
            return
        self.server.sink.append(records)
        self._reply(HTTPStatus.OK, ExportTraceServiceResponse().SerializeToString(), PROTOBUF)

    def _reply(self, status: HTTPStatus, body: bytes, content_type: str = "text/plain", close: bool = False) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's signature
        logger.debug("%s " + format, self.address_string(), *args)


def _decoded(body: bytes, encoding: str) -> bytes:
    encoding = encoding.strip().lower()
    if encoding == "gzip":
        return gzip.decompress(body)
    if encoding == "deflate":
        return zlib.decompress(body)
    return body


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False   # an exporter's idle keep-alive connection must not hold up shutdown

    def __init__(self, address: tuple[str, int], sink: SpanFile) -> None:
        self.sink = sink
        super().__init__(address, _Handler)


class SpanCollector:
    """The receiver as an object: ``with SpanCollector(out, port=0) as c:`` serves on ``c.endpoint`` (the value
    for ``OTEL_EXPORTER_OTLP_ENDPOINT``) from a background thread until the block ends."""

    def __init__(self, out: str | Path, *, host: str = "127.0.0.1", port: int = 4318) -> None:
        self.sink = SpanFile(out)
        self.server = _Server((host, port), self.sink)
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    @property
    def endpoint(self) -> str:
        host = str(self.server.server_address[0])
        return f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{self.port}"

    def serve_forever(self) -> None:
        try:
            self.server.serve_forever()
        finally:
            self.server.server_close()

    def __enter__(self) -> SpanCollector:
        self._thread = threading.Thread(target=self.server.serve_forever, name="span-collector", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mlscale.tracing.collector",
                                     description="Receive OTLP/HTTP traces and append one JSON line per span.")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0 in a container)")
    parser.add_argument("--port", type=int, default=4318, help="port (4318 is OTLP/HTTP's)")
    parser.add_argument("--out", default=DEFAULT_OUT, help="the JSONL file spans are appended to")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    collector = SpanCollector(args.out, host=args.host, port=args.port)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    logger.info("collecting OTLP/HTTP traces on http://%s:%d%s into %s", args.host, collector.port, TRACES_PATH,
                collector.sink.path)
    try:
        collector.serve_forever()
    except KeyboardInterrupt:
        pass
    logger.info("stopped after %d spans", collector.sink.spans)
    return 0


if __name__ == "__main__":
    sys.exit(main())
