"""Spans around the stages of mlscale's pipelines, over the OpenTelemetry API.

Which tracer a process uses is decided once, lazily, on the first span:

* a tracer provider set before (Airflow sets one in each of its processes when ``[traces] otel_on`` is true,
  and the task process opens its ``worker.<task_id>`` span before running the task): our spans use it, so
  they nest under the task's span and are flushed with Airflow's when the task process ends;
* else, when the ``OTEL_*`` variables ask for traces (:mod:`mlscale.tracing.provider`): a provider built from
  them and set as the process's global one (Dask worker processes, scripts);
* else tracing is off: :func:`span` returns a shared do-nothing context manager (a global read and a call),
  :func:`in_context` returns the function unchanged and no callback is installed.

Spans that run on Dask workers join the trace through a W3C ``traceparent`` carrier taken on the driver
(:func:`in_context`, :class:`RoundSpans`). Tracing never fails a pipeline: a broken exporter configuration is
logged once and tracing stays off.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager
from pathlib import PurePath
from typing import Any, TypeVar, cast

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

logger = logging.getLogger(__name__)

SCOPE = "mlscale"
F = TypeVar("F", bound=Callable[..., Any])

_PROPAGATOR = TraceContextTextMapPropagator()
_LOCK = threading.Lock()
_UNSET: Any = object()
_tracer: Any = _UNSET          # trace.Tracer when on, None when off, _UNSET before the first span
_provider: Any = None          # the provider of _tracer (what flush() flushes)


class _Off(AbstractContextManager):
    """The context manager of every span while tracing is off: enters to the invalid (non-recording) span."""

    def __enter__(self) -> trace.Span:
        return trace.INVALID_SPAN

    def __exit__(self, *exc: object) -> None:
        return None


_OFF = _Off()


def _resolve() -> Any:
    global _tracer, _provider
    with _LOCK:
        if _tracer is not _UNSET:
            return _tracer
        current = trace.get_tracer_provider()
        if isinstance(current, trace.NoOpTracerProvider):
            _tracer, _provider = None, None
        elif not isinstance(current, trace.ProxyTracerProvider):       # Airflow's (or another library's)
            _tracer, _provider = current.get_tracer(SCOPE), current
        else:
            _tracer, _provider = _from_environment()
        return _tracer


def _from_environment() -> tuple[Any, Any]:
    from mlscale.tracing.provider import build_provider, requested

    if not requested():
        return None, None
    try:
        provider = build_provider()
    except Exception as exc:  # noqa: BLE001 - tracing must never fail a pipeline
        logger.warning("tracing stays off: the OTEL_* settings do not give a span exporter (%s)", exc)
        return None, None
    trace.set_tracer_provider(provider)
    provider = trace.get_tracer_provider()   # the one that won, should another thread have set one first
    logger.info("tracing on: spans exported as configured by OTEL_* (%s)", provider)
    return provider.get_tracer(SCOPE), provider


def _get() -> Any:
    tracer = _tracer
    return _resolve() if tracer is _UNSET else tracer


def enabled() -> bool:
    """Whether spans of this process are recorded somewhere."""
    return _get() is not None


def configure(provider: Any | None) -> None:
    """Use ``provider`` for mlscale's spans from now on (``None``: tracing off), without touching the global
    provider; for tests and embedding. :func:`reset` returns to the lazy decision."""
    global _tracer, _provider
    with _LOCK:
        _tracer = provider.get_tracer(SCOPE) if provider is not None else None
        _provider = provider


def reset() -> None:
    """Forget the decision: the next span decides again (see the module docstring)."""
    global _tracer, _provider
    with _LOCK:
        _tracer, _provider = _UNSET, None


def flush(timeout_millis: int = 10_000) -> bool:
    """Export what this process's tracer buffered; False if it did not finish in time. Safe when off."""
    provider = _provider
    if provider is None or not hasattr(provider, "force_flush"):
        return True
    return bool(provider.force_flush(timeout_millis))


def span(name: str, **attributes: Any) -> AbstractContextManager[trace.Span]:
    """A span named ``name``, current inside the ``with`` block, that records an exception leaving it.

    ``attributes`` (``rows``, ``bytes``, ``dataset``, ``model``, ``partition``, ...) may be numpy scalars, dates
    or paths; ``None`` values are left out. Off: no allocation beyond the call, the block gets the invalid span.
    """
    tracer = _get()
    if tracer is None:
        return _OFF
    return cast(AbstractContextManager[trace.Span],
                tracer.start_as_current_span(name, attributes=_clean(attributes)))


def annotate(target: trace.Span | None = None, **attributes: Any) -> None:
    """Set ``attributes`` on ``target`` (default: the current span) if it records; cleaned as in :func:`span`."""
    if _get() is None:
        return
    target = target if target is not None else trace.get_current_span()
    if target.is_recording():
        target.set_attributes(_clean(attributes))


def traced(name: str, *, keywords: Iterable[str] = ()) -> Callable[[F], F]:
    """Decorator: run the function inside ``span(name)``, with the keyword arguments named in ``keywords``
    as attributes (for keyword-only entry points such as ``ingest_partition(dt=..., run_id=...)``)."""
    names = tuple(keywords)

    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if _get() is None:
                return fn(*args, **kwargs)
            with span(name, **{k: kwargs[k] for k in names if k in kwargs}):
                return fn(*args, **kwargs)

        return cast(F, wrapper)

    return decorate


def carrier() -> dict[str, str]:
    """The current span as a W3C trace-context carrier (``{"traceparent": ...}``); empty when off or when
    no span is current."""
    if _get() is None:
        return {}
    out: dict[str, str] = {}
    _PROPAGATOR.inject(out)
    return out


class InContext:
    """``fn`` that runs inside the trace context of ``carrier`` wherever it is called (a Dask worker thread or
    process), so the spans it opens are children of the span current where it was wrapped. Keeps ``fn``'s
    name, so Dask task keys and the dashboard still show it."""

    def __init__(self, fn: Callable[..., Any], carrier: Mapping[str, str]) -> None:
        self.fn = fn
        self.carrier = dict(carrier)
        self.__name__ = getattr(fn, "__name__", type(fn).__name__)
        self.__qualname__ = getattr(fn, "__qualname__", self.__name__)
        self.__module__ = getattr(fn, "__module__", __name__)
        self.__doc__ = getattr(fn, "__doc__", None)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        token = otel_context.attach(_PROPAGATOR.extract(self.carrier))
        try:
            return self.fn(*args, **kwargs)
        finally:
            otel_context.detach(token)

    def __repr__(self) -> str:
        return f"InContext({self.fn!r}, {self.carrier!r})"


def in_context(fn: F) -> F:
    """``fn`` wrapped to run in the current trace context when it is called elsewhere (submit the result to
    Dask instead of ``fn``); ``fn`` itself when tracing is off or no span is current."""
    found = carrier()
    return cast(F, InContext(fn, found)) if found else fn


class RoundSpans:
    """One span per round of an iterative job (boosting rounds), each from the round's start (:meth:`start`,
    else the previous round's end) to :meth:`end`, under the span of ``parent`` (a :func:`carrier`; default:
    the span current when the object is made). Picklable, so it can ride in a callback to Dask workers."""

    def __init__(self, name: str, *, parent: Mapping[str, str] | None = None, **attributes: Any) -> None:
        self.name = name
        self.parent = dict(parent) if parent is not None else carrier()
        self.attributes = _clean(attributes)
        self.rounds = 0
        self._started = time.time_ns()

    def start(self) -> None:
        self._started = time.time_ns()

    def end(self, round_: int, **attributes: Any) -> None:
        now = time.time_ns()
        tracer = _get()
        if tracer is not None:
            parent = _PROPAGATOR.extract(self.parent) if self.parent else None
            recorded = tracer.start_span(self.name, context=parent, start_time=self._started,
                                         attributes={**self.attributes, "round": int(round_), **_clean(attributes)})
            recorded.end(end_time=now)
        self.rounds += 1
        self._started = now


def _clean(attributes: Mapping[str, Any]) -> dict[str, Any]:
    """OpenTelemetry attribute values: str/bool/int/float or lists of them; numpy scalars, dates and paths
    converted, ``None`` left out, anything else as its ``str``."""
    out: dict[str, Any] = {}
    for key, value in attributes.items():
        if value is None:
            continue
        out[key] = _value(value)
    return out


def _value(value: Any) -> Any:
    if isinstance(value, str | bool | int | float):
        return value
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 0) == 0:  # numpy scalar
        return _value(value.item())
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, list | tuple | set | frozenset):
        items = [_value(v) for v in value if v is not None]
        kinds = {type(v) for v in items}
        return items if len(kinds) <= 1 and all(isinstance(v, str | bool | int | float) for v in items) \
            else [str(v) for v in items]
    return str(value)
