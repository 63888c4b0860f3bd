"""The online service's response log: every response (and every shadow score), written to the lake in batches.

Requests never wait for the lake: :meth:`ResponseLog.add` appends to a bounded in-memory buffer and returns;
a background thread writes a Parquet file per flush (every ``flush_s`` seconds, or sooner once ``flush_rows``
are waiting) to ``_meta/serving_log/<model>/dt=<day answered (UTC)>/<flush>.parquet``. A file is written whole
(temporary name, then rename on a local lake; one PUT on S3), so a flushed batch is either there or retried:
a failed write keeps its rows for the next flush. When the buffer is full (the lake is down for long) new
records are dropped and counted (:attr:`dropped`, a metric), never blocking a request. :meth:`close` flushes
what is left.

Each record holds the request id, the event key and time, the version and arm that decided, score, decision,
threshold, whether it came from the cache, cold-start views, the fallback flag, the latency, and the shadow
versions' scores; a sampled share of events (``sample_rate``, the batch feature log's sampling by event key)
also carries its model inputs.
"""

from __future__ import annotations

import collections
import io
import logging
import threading
import time
import uuid
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from mlscale.lake import Lake
from mlscale.layout import SERVING_LOG, day_prefix

logger = logging.getLogger(__name__)

SCHEMA = pa.schema([
    ("request_id", pa.string()), ("event_key", pa.string()), ("event_time", pa.timestamp("us", tz="UTC")),
    ("model", pa.string()), ("version", pa.string()), ("arm", pa.string()), ("score", pa.float64()),
    ("decision", pa.string()), ("threshold", pa.float64()), ("cached", pa.bool_()),
    ("cold_start", pa.list_(pa.string())), ("fallback", pa.bool_()), ("latency_ms", pa.float64()),
    ("shadow_versions", pa.list_(pa.string())), ("shadow_scores", pa.list_(pa.float64())),
    ("inputs", pa.list_(pa.float32())), ("logged_at", pa.timestamp("us", tz="UTC")),
])


def log_prefix(model: str, day: str) -> str:
    return day_prefix(f"{SERVING_LOG}/{model}", day)


class ResponseLog:
    def __init__(self, lake: Lake, model: str, *, flush_rows: int = 2000, flush_s: float = 5.0,
                 buffer_rows: int = 200_000, input_columns: tuple[str, ...] = ()) -> None:
        self.lake, self.model = lake, model
        self.flush_rows, self.flush_s, self.buffer_rows = flush_rows, flush_s, buffer_rows
        self.input_columns = input_columns
        self.dropped = 0
        self.written = 0
        self.files = 0
        self._buffer: collections.deque[dict[str, Any]] = collections.deque()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()     # one flush at a time (the thread, or close())
        self._thread = threading.Thread(target=self._run, name=f"serving-log-{model}", daemon=True)
        self._thread.start()

    @property
    def depth(self) -> int:
        return len(self._buffer)

    def add(self, records: list[dict[str, Any]]) -> int:
        """Queue ``records``; returns how many were dropped because the buffer is full."""
        room = self.buffer_rows - len(self._buffer)
        kept = records[:max(room, 0)]
        self._buffer.extend(kept)             # deque.extend is atomic under the GIL: no lock on the hot path
        dropped = len(records) - len(kept)
        if dropped:
            self.dropped += dropped
            logger.warning("serving log buffer full (%d rows): dropped %d records", self.buffer_rows, dropped)
        if len(self._buffer) >= self.flush_rows:
            self._wake.set()
        return dropped

    def flush(self) -> int:
        """Write what is buffered now (one file per event day); returns the rows written."""
        with self._lock:
            batch = [self._buffer.popleft() for _ in range(len(self._buffer))]
            if not batch:
                return 0
            by_day: dict[str, list[dict[str, Any]]] = {}
            for record in batch:
                by_day.setdefault(record["logged_at"].date().isoformat(), []).append(record)
            written = 0
            for day, records in sorted(by_day.items()):
                try:
                    self._write(day, records)
                    written += len(records)
                except Exception:  # noqa: BLE001 - the lake is unreachable: keep the rows for the next flush
                    logger.exception("serving log: writing %d records of %s failed; kept for the next flush",
                                     len(records), day)
                    self._buffer.extendleft(reversed(records))
            return written

    def _write(self, day: str, records: list[dict[str, Any]]) -> None:
        table = pa.Table.from_pylist(records, schema=SCHEMA)
        table = table.replace_schema_metadata({"input_columns": ",".join(self.input_columns)})
        sink = io.BytesIO()
        pq.write_table(table, sink, compression="zstd")
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        key = f"{log_prefix(self.model, day)}/{stamp}-{uuid.uuid4().hex[:12]}.parquet"
        self.lake.write_bytes(key, sink.getvalue())
        self.written += len(records)
        self.files += 1
        logger.info("serving log: wrote %d records to %s", len(records), self.lake.uri(key))

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.flush_s)
            self._wake.clear()
            self.flush()

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=30)
        self.flush()


def read_response_log(lake: Lake, model: str, day: str) -> pa.Table:
    """Every answer ``model``'s service gave on ``day`` (UTC; empty when none)."""
    prefix = log_prefix(model, day)
    keys = sorted(f.key for f in lake.list_files(prefix) if f.key.endswith(".parquet"))
    tables = [pq.read_table(io.BytesIO(lake.read_bytes(k))) for k in keys]
    return pa.concat_tables([t.replace_schema_metadata(None) for t in tables]) if tables else SCHEMA.empty_table()
