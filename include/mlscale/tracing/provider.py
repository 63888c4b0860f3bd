"""The OpenTelemetry tracer provider a process builds from the standard ``OTEL_*`` environment variables.

Used only where nobody set a provider before (Airflow sets its own in every Airflow process when
``[traces] otel_on`` is true; see :mod:`mlscale.tracing.spans`), e.g. in Dask worker processes. Tracing is
requested by ``OTEL_TRACES_EXPORTER`` (any value but ``none``) or by an OTLP endpoint
(``OTEL_EXPORTER_OTLP_ENDPOINT`` / ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``); ``OTEL_SDK_DISABLED=true`` turns it
off. The exporter is the ``opentelemetry_traces_exporter`` entry point of that name (``otlp_proto_http``,
``otlp_proto_grpc``, ``console``), as Airflow and the SDK's auto-configuration load it; ``otlp`` and an endpoint
alone follow ``OTEL_EXPORTER_OTLP_(TRACES_)PROTOCOL`` (``grpc`` when unset, the Python SDK's default). The
service name is ``OTEL_SERVICE_NAME`` (or ``service.name`` in ``OTEL_RESOURCE_ATTRIBUTES``), else ``mlscale``.
Batch settings (``OTEL_BSP_*``), headers, timeouts and compression are read by the SDK itself.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

DEFAULT_SERVICE = "mlscale"
EXPORTER_GROUP = "opentelemetry_traces_exporter"


class TracingConfigError(RuntimeError):
    """The OTEL_* variables name an exporter that is not installed."""


def requested(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether the environment asks this process to export traces."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporter = environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter:
        return any(name.strip() not in ("", "none") for name in exporter.split(","))
    return bool(environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"))


def exporter_names(environ: Mapping[str, str] = os.environ) -> list[str]:
    """The entry-point names of the span exporters the environment asks for (``otlp`` resolved by protocol)."""
    names = [n.strip().lower() for n in environ.get("OTEL_TRACES_EXPORTER", "").split(",")]
    names = [n for n in names if n and n != "none"] or ["otlp"]
    protocol = (environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
                or "grpc").strip().lower()
    otlp = "otlp_proto_http" if protocol.startswith("http") else "otlp_proto_grpc"
    return list(dict.fromkeys(otlp if n == "otlp" else n for n in names))


def service_attributes(environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """``{"service.name": "mlscale"}`` unless the environment names the service (the SDK reads it then)."""
    if environ.get("OTEL_SERVICE_NAME") or "service.name=" in environ.get("OTEL_RESOURCE_ATTRIBUTES", ""):
        return {}
    return {"service.name": DEFAULT_SERVICE}


def load_exporter(name: str) -> Any:
    from importlib.metadata import entry_points

    found = next(iter(entry_points(group=EXPORTER_GROUP, name=name)), None)
    if found is None:
        known = sorted(ep.name for ep in entry_points(group=EXPORTER_GROUP))
        raise TracingConfigError(f"OTEL_TRACES_EXPORTER names {name!r}, which is not installed (installed: {known})")
    return found.load()()


def build_provider(environ: Mapping[str, str] = os.environ) -> Any:
    """A ``TracerProvider`` with one batch processor per exporter the environment asks for."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create(service_attributes(environ)))
    for name in exporter_names(environ):
        provider.add_span_processor(BatchSpanProcessor(load_exporter(name)))
    return provider
