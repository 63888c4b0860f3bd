"""mlscale.tracing: the OTLP/HTTP file collector fed by the SDK's real exporter, spans when tracing is off or
on, the provider built from the OTEL_* variables (in a subprocess), and the tree printer."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from mlscale import tracing
from mlscale.tracing.collector import SpanCollector, read_spans
from mlscale.tracing.provider import exporter_names, requested, service_attributes
from mlscale.tracing.tree import format_trace, traces


@pytest.fixture
def collector(tmp_path) -> Iterator[SpanCollector]:
    with SpanCollector(tmp_path / "traces" / "spans.jsonl", port=0) as running:
        yield running


@pytest.fixture
def exported(collector):
    """mlscale's spans exported by the SDK's OTLP/HTTP exporter (gzip) to the collector; yields a function that
    flushes and returns the spans the collector wrote."""
    from opentelemetry.exporter.otlp.proto.http import Compression
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": "unit-test"}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{collector.endpoint}/v1/traces",
                                                                    compression=Compression.Gzip)))
    tracing.configure(provider)

    def spans() -> list[dict]:
        assert tracing.flush()
        return read_spans(collector.sink.path)

    yield spans
    tracing.reset()
    provider.shutdown()


def by_name(spans: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for s in spans:
        out.setdefault(s["name"], []).append(s)
    return out


def test_collector_writes_one_json_line_per_span_with_parents_attributes_and_service(exported, collector) -> None:
    with tracing.span("stage", rows=np.int64(1200), bytes=4096, dataset="transactions",
                      day=dt.date(2026, 11, 1), ratio=np.float32(0.5), skipped=None) as outer:
        with tracing.span("stage.part", partition="region=NL", files=["a.csv", "b.csv"], ok=True):
            pass
        tracing.annotate(outer, rows_written=1100)
    with pytest.raises(ValueError), tracing.span("failing"):
        raise ValueError("boom")
    spans = by_name(exported())
    (stage,), (part,), (failing,) = spans["stage"], spans["stage.part"], spans["failing"]
    assert stage["parent_span_id"] is None and part["parent_span_id"] == stage["span_id"]
    assert part["trace_id"] == stage["trace_id"] != failing["trace_id"]
    assert len(stage["trace_id"]) == 32 and len(stage["span_id"]) == 16
    assert stage["attributes"] == {"rows": 1200, "bytes": 4096, "dataset": "transactions", "day": "2026-11-01",
                                   "ratio": 0.5, "rows_written": 1100}
    assert part["attributes"] == {"partition": "region=NL", "files": ["a.csv", "b.csv"], "ok": True}
    assert stage["service"] == "unit-test" and stage["scope"] == "mlscale" and stage["kind"] == "internal"
    assert stage["start_time_unix_nano"] <= part["start_time_unix_nano"] <= part["end_time_unix_nano"] \
        <= stage["end_time_unix_nano"]
    assert stage["start"].endswith("Z") and stage["duration_ms"] >= part["duration_ms"] >= 0
    assert failing["status"]["code"] == "error" and "boom" in (failing["status"]["message"] or "")
    assert [e["name"] for e in failing["events"]] == ["exception"]
    lines = collector.sink.path.read_text().splitlines()
    assert len(lines) == 3 and all(json.loads(line)["name"] for line in lines)


def test_collector_health_and_what_it_refuses(collector) -> None:
    with urllib.request.urlopen(f"{collector.endpoint}/health", timeout=10) as response:
        assert json.loads(response.read()) == {"status": "ok", "spans": 0}

    def post(path: str, body: bytes, content_type: str, encoding: str = "") -> int:
        headers = {"Content-Type": content_type} | ({"Content-Encoding": encoding} if encoding else {})
        request = urllib.request.Request(f"{collector.endpoint}{path}", data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status
        except urllib.error.HTTPError as error:
            return error.code

    assert post("/v1/traces", b"{}", "application/json") == 415          # OTLP/JSON is not collected
    assert post("/v1/metrics", b"", "application/x-protobuf") == 404
    assert post("/v1/traces", b"\xff\x00garbage", "application/x-protobuf") == 400
    assert post("/v1/traces", gzip.compress(b""), "application/x-protobuf", "gzip") == 200  # an empty export
    assert read_spans(collector.sink.path) == []


def test_spans_cross_to_other_threads_through_in_context_and_rounds_get_spans(exported) -> None:
    import threading

    def work(results: list[str]) -> None:
        with tracing.span("on.worker", partition=3):
            results.append(tracing.carrier()["traceparent"])

    with tracing.span("driver") as driver:
        wrapped = tracing.in_context(work)
        assert isinstance(wrapped, tracing.InContext) and wrapped.__name__ == "work"
        results: list[str] = []
        thread = threading.Thread(target=wrapped, args=(results,))
        thread.start()
        thread.join()
        rounds = tracing.RoundSpans("train.round", algorithm="xgboost")
        for r in (1, 2):
            rounds.start()
            rounds.end(r, logloss=0.5 / r)
    spans = by_name(exported())
    driver_id = format(driver.get_span_context().span_id, "016x")
    assert spans["on.worker"][0]["parent_span_id"] == driver_id
    assert results[0].split("-")[2] == spans["on.worker"][0]["span_id"]
    assert [(s["attributes"]["round"], s["parent_span_id"]) for s in spans["train.round"]] == \
        [(1, driver_id), (2, driver_id)]
    assert spans["train.round"][1]["attributes"] == {"algorithm": "xgboost", "round": 2, "logloss": 0.25}


def test_off_costs_no_span_no_wrapper_and_no_carrier() -> None:
    tracing.configure(None)
    try:
        assert not tracing.enabled()
        first, second = tracing.span("a", rows=1), tracing.span("b")
        assert first is second                       # one shared do-nothing context manager
        with first as current:
            assert not current.is_recording()
            tracing.annotate(current, rows=2)        # no-op
        assert tracing.carrier() == {}

        def fn() -> int:
            return 1

        assert tracing.in_context(fn) is fn
        assert tracing.traced("x")(fn)() == 1
        tracing.RoundSpans("r").end(1)               # records nothing, fails nothing
        assert tracing.flush()
    finally:
        tracing.reset()


def test_provider_settings_follow_the_standard_variables() -> None:
    assert not requested({})
    assert requested({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"})
    assert requested({"OTEL_TRACES_EXPORTER": "console"})
    assert not requested({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"})
    assert not requested({"OTEL_TRACES_EXPORTER": "console", "OTEL_SDK_DISABLED": "true"})
    assert exporter_names({"OTEL_EXPORTER_OTLP_ENDPOINT": "x"}) == ["otlp_proto_grpc"]
    assert exporter_names({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}) == \
        ["otlp_proto_http"]
    assert exporter_names({"OTEL_TRACES_EXPORTER": "otlp_proto_http,console"}) == ["otlp_proto_http", "console"]
    assert service_attributes({}) == {"service.name": "mlscale"}
    assert service_attributes({"OTEL_SERVICE_NAME": "airflow"}) == {}
    assert service_attributes({"OTEL_RESOURCE_ATTRIBUTES": "service.name=x,team=ml"}) == {}


PROBE = """
from mlscale import tracing
with tracing.span("probe", rows=3):
    with tracing.span("probe.child"):
        pass
print(tracing.enabled())
"""


def run_probe(env: dict[str, str]) -> str:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    result = subprocess.run([sys.executable, "-c", PROBE], env={**clean, **env}, capture_output=True, text=True,
                            timeout=120, cwd=Path(__file__).parent)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_a_process_sets_up_its_provider_from_the_otel_variables_and_flushes_at_exit(collector) -> None:
    assert run_probe({}) == "False"
    assert read_spans(collector.sink.path) == []
    assert run_probe({"OTEL_TRACES_EXPORTER": "otlp_proto_http", "OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint,
                      "OTEL_SERVICE_NAME": "probe-service"}) == "True"
    spans = by_name(read_spans(collector.sink.path))   # exported by the SDK's shutdown at exit
    assert spans["probe.child"][0]["parent_span_id"] == spans["probe"][0]["span_id"]
    assert spans["probe"][0]["service"] == "probe-service" and spans["probe"][0]["attributes"] == {"rows": 3}
    # an exporter that is not installed leaves tracing off instead of failing the process
    assert run_probe({"OTEL_TRACES_EXPORTER": "no_such_exporter"}) == "False"


def test_tree_prints_traces_with_offsets_durations_and_sizes() -> None:
    base = 1_700_000_000_000_000_000
    spans = [
        {"trace_id": "t1", "span_id": "a", "parent_span_id": "x", "name": "ingest", "service": "airflow",
         "start_time_unix_nano": base, "duration_ms": 2000.0, "status": {"code": "unset"},
         "attributes": {"dataset": "transactions", "rows": 10}},
        {"trace_id": "t1", "span_id": "c", "parent_span_id": "a", "name": "ingest.commit", "service": "airflow",
         "start_time_unix_nano": base + 1_500_000_000, "duration_ms": 100.0, "status": {"code": "error"},
         "attributes": {"zone": "raw"}},
        {"trace_id": "t1", "span_id": "b", "parent_span_id": "a", "name": "ingest.read", "service": "mlscale",
         "start_time_unix_nano": base + 1_000_000, "duration_ms": 900.0, "status": {"code": "ok"},
         "attributes": {"rows": 10, "bytes": 512}},
    ]
    assert list(traces(spans)) == ["t1"]
    assert format_trace(spans) == [
        "trace t1",
        "    0.000s     2.000s  ingest [airflow] dataset=transactions rows=10",
        "    0.001s     0.900s    ingest.read [mlscale] rows=10 bytes=512",
        "    1.500s     0.100s    ingest.commit [airflow] ERROR zone=raw",
    ]
