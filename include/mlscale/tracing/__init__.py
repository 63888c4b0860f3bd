"""OpenTelemetry spans for the stages of mlscale's pipelines, and a file collector for them.

``with span("ingest.read", rows=n):`` marks a stage; :func:`in_context` carries the trace to Dask workers;
:class:`RoundSpans` records boosting rounds. Off unless Airflow's ``[traces] otel_on`` set a tracer provider or
the ``OTEL_*`` variables ask for traces (see :mod:`mlscale.tracing.spans`). ``python -m mlscale.tracing.collector``
receives OTLP/HTTP and writes one JSON line per span; ``python -m mlscale.tracing.tree`` prints them as trees.
"""

from mlscale.tracing.spans import (
    InContext,
    RoundSpans,
    annotate,
    carrier,
    configure,
    enabled,
    flush,
    in_context,
    reset,
    span,
    traced,
)

__all__ = ["InContext", "RoundSpans", "annotate", "carrier", "configure", "enabled", "flush", "in_context", "reset",
           "span", "traced"]
