"""Ingest one day of one dataset: landing → validation → quarantine → dedupe → pseudonymisation → raw.

Guarantees: every input record is written, quarantined with a reason code, or counted as a duplicate
(the run fails loudly otherwise); reruns and backfills of a day replace its partitions exactly; clear
PAN, e-mail, phone and name values never leave ``landing/``.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import posixpath
import time
from collections import Counter
from typing import Any

from mlscale import __version__
from mlscale.contracts import load_contract
from mlscale.ingest.completeness import is_data_file, landing_drop_status, late_files
from mlscale.ingest.dedupe import dedupe_bucket, duplicate_rows, previous_keys
from mlscale.ingest.files import FileOutcome, output_schema, process_file
from mlscale.ingest.finalize import finalize_subpartition, stage_subdir
from mlscale.ingest.pseudonymise import check_key
from mlscale.ingest.quarantine import QUARANTINE_SCHEMA
from mlscale.ingest.report import IngestionResult, QuarantineRateExceeded, RowsUnaccounted, log_summary
from mlscale.lake import Lake, PartitionRef, file_name_of, new_attempt_id, parse_day
from mlscale.layout import INGESTION_RUNS
from mlscale.tracing import annotate, in_context, span, traced

logger = logging.getLogger(__name__)
RUN_LOG = INGESTION_RUNS
DEDUPE_BUCKET_KEYS = 1_000_000


def landing_files(lake: Lake, dataset: str, day: dt.date) -> list[str]:
    """The day's drop, sorted by name; markers and hidden files (``_SUCCESS``, ``.tmp``) are skipped."""
    prefix = f"landing/{dataset}/dt={day.isoformat()}"
    keys = [f.key for f in lake.list_files(prefix)]
    return sorted(k for k in keys if is_data_file(posixpath.basename(k)))


@traced("ingest", keywords=("dt", "run_id", "try_number", "dry_run"))
def ingest_partition(*, client: Any, lake: Lake, dt: str, run_id: str, contract: str = "transactions",
                     pii_key: bytes | str | None = None, try_number: int = 1, dry_run: bool = False,
                     strict: bool = False, max_quarantine_rate: float = 0.05) -> IngestionResult:
    """Ingest ``landing/<dataset>/dt=<dt>/`` into ``raw/`` and ``quarantine/`` on the Dask ``client``.

    Traced (:mod:`mlscale.tracing`): an ``ingest`` span with ``ingest.read`` (per file ``ingest.read_file``,
    per chunk ``ingest.validate``), ``ingest.dedupe``, ``ingest.write`` and one ``ingest.commit`` per zone."""
    started = time.perf_counter()
    spec = load_contract(contract)
    key = check_key(pii_key)
    day = parse_day(dt)
    raw_ref = PartitionRef.of("raw", spec.dataset, day)
    q_ref = PartitionRef.of("quarantine", spec.dataset, day)
    attempt = new_attempt_id()
    stage_prefix = f"{raw_ref.key}/_staging/{attempt}"
    files = landing_files(lake, spec.dataset, day)
    annotate(dataset=spec.dataset, files=len(files), attempt=attempt)
    logger.info("ingesting %s for %s: %d landing files, contract %s v%s (%s), attempt %s%s", spec.dataset,
                day, len(files), spec.path, spec.version, spec.fingerprint, attempt, " [dry run]" if dry_run else "")
    sources = landing_drop_status(lake, spec, day)
    late = _late_files(lake, spec, day)

    with span("ingest.read", dataset=spec.dataset, files=len(files)) as read_span:
        process = in_context(process_file)
        futures = [client.submit(process, lake, spec, file_key, rank, day, run_id=run_id, attempt=attempt,
                                 pii_key=key, stage_prefix=stage_prefix, quarantine_ref=q_ref, write=not dry_run,
                                 pure=False, key=f"ingest-file-{attempt}-{rank}")
                   for rank, file_key in enumerate(files)]
        outcomes: list[FileOutcome] = client.gather(futures)
        annotate(read_span, rows=sum(o.rows_in for o in outcomes), bytes=sum(o.bytes_in for o in outcomes),
                 valid=sum(o.valid for o in outcomes))
    parsed_s = time.perf_counter() - started

    with span("ingest.dedupe", dataset=spec.dataset, rows=sum(o.valid for o in outcomes)) as dedupe_span:
        drops = _find_duplicates(client, lake, spec, day, outcomes, attempt, dry_run)
        rows_duplicate = sum(len(rows) for rows in drops.values())
        annotate(dedupe_span, duplicates=rows_duplicate)

    quarantined: Counter[str] = Counter()
    for outcome in outcomes:
        quarantined.update(outcome.quarantined)
    rows_in = sum(o.rows_in for o in outcomes)
    rows_valid = sum(o.valid for o in outcomes)
    rows_written = rows_valid - rows_duplicate
    rows_quarantined = sum(quarantined.values())
    if rows_in != rows_written + rows_quarantined + rows_duplicate:
        raise RowsUnaccounted(f"{spec.dataset} {day}: {rows_in} records in but {rows_written} written + "
                              f"{rows_quarantined} quarantined + {rows_duplicate} duplicates; nothing committed")

    raw_bytes = 0
    rate = rows_quarantined / rows_in if rows_in else 0.0
    over_threshold = strict and rate > max_quarantine_rate
    if not dry_run:
        inputs = [lake.uri(f) for f in files]
        with span("ingest.commit", dataset=spec.dataset, zone="quarantine", rows=rows_quarantined) as commit_span:
            q_manifest = lake.commit(q_ref, [entry for o in outcomes for entry in o.quarantine_files],
                                     schema=QUARANTINE_SCHEMA, run_id=run_id, attempt=attempt, inputs=inputs)
            annotate(commit_span, files=len(q_manifest.files), bytes=q_manifest.bytes)
        if not over_threshold:
            raw_bytes = _write_raw(client, lake, spec, outcomes, drops, raw_ref, stage_prefix=stage_prefix,
                                   attempt=attempt, run_id=run_id, inputs=inputs, rows_written=rows_written)
        lake.delete_tree(stage_prefix)
        if not lake.list_files(f"{raw_ref.key}/_staging"):
            lake.delete_tree(f"{raw_ref.key}/_staging")

    result = IngestionResult(
        dataset=spec.dataset, dt=day.isoformat(), run_id=run_id, try_number=try_number, attempt=attempt,
        dry_run=dry_run, files=len(files), rows_in=rows_in, rows_written=0 if (dry_run or over_threshold) else rows_written,
        rows_valid=rows_written, rows_quarantined=rows_quarantined, rows_duplicate=rows_duplicate,
        quarantine_by_reason=dict(sorted(quarantined.items())), bytes_in=sum(o.bytes_in for o in outcomes),
        bytes_out=raw_bytes, seconds=round(time.perf_counter() - started, 3), parse_seconds=round(parsed_s, 3),
        contract_version=spec.version, contract_fingerprint=spec.fingerprint, code_version=__version__,
        raw_uri=lake.uri(raw_ref.key), quarantine_uri=lake.uri(q_ref.key),
        per_file=[{"file": o.file, "source": o.source, "rows_in": o.rows_in, "valid": o.valid,
                   "quarantined": dict(o.quarantined), "unknown_columns": sorted(o.unknown_columns),
                   "missing_columns": o.missing_columns} for o in outcomes],
        sources=[st.as_dict() for st in sources], late_files=late,
    )
    lake.write_json(f"{RUN_LOG}/dt={day.isoformat()}/{spec.dataset}__{file_name_of(run_id)}__try{try_number}.json",
                    result.as_dict())
    log_summary(result)
    annotate(rows=rows_in, bytes=result.bytes_in, rows_written=result.rows_written, rows_quarantined=rows_quarantined,
             rows_duplicate=rows_duplicate, bytes_out=raw_bytes)
    if over_threshold:
        raise QuarantineRateExceeded(
            f"{spec.dataset} {day}: {rate:.2%} of records quarantined, above the strict limit "
            f"{max_quarantine_rate:.2%}; raw was not committed. Inspect {result.quarantine_uri} "
            "(reasons above), fix the source or rerun with strict=false")
    return result


def _late_files(lake: Lake, spec: Any, day: dt.date) -> dict[str, list[str]]:
    """Files of the days before (within the dedupe window, at least one day) that landed after their day was
    committed: the raw manifest's inputs name what each run read."""
    late: dict[str, list[str]] = {}
    for back in range(1, max(1, spec.dedupe_window_days) + 1):
        earlier = day - dt.timedelta(days=back)
        manifest = lake.manifest(PartitionRef.of("raw", spec.dataset, earlier))
        if manifest is not None:
            found = late_files(lake, spec.dataset, earlier, list(manifest.inputs))
            if found:
                late[earlier.isoformat()] = found
    return late


def _write_raw(client: Any, lake: Lake, spec: Any, outcomes: list[FileOutcome], drops: dict[str, list[int]],
               raw_ref: PartitionRef, *, stage_prefix: str, attempt: str, run_id: str, inputs: list[str],
               rows_written: int) -> int:
    """Write the staged rows less the duplicates as raw files (one Dask task per sub-partition), then commit
    the raw partition; returns its bytes."""
    by_subdir: dict[str, list[str]] = {}
    for stage in (s for o in outcomes for s in o.staged):
        by_subdir.setdefault(stage_subdir(stage, stage_prefix), []).append(stage)
    with span("ingest.write", dataset=spec.dataset, rows=rows_written, partitions=len(by_subdir)) as write_span:
        finalize = in_context(finalize_subpartition)
        final = client.gather([
            client.submit(finalize, lake, stages, {s: drops[s] for s in stages if s in drops},
                          raw_ref, subdir=subdir, attempt=attempt, seq=seq, pure=False,
                          key=f"ingest-finalize-{attempt}-{seq}")
            for seq, (subdir, stages) in enumerate(sorted(by_subdir.items()))
        ])
        entries = [e for group in final for e in group]
        annotate(write_span, files=len(entries), bytes=sum(e.bytes for e in entries))
    with span("ingest.commit", dataset=spec.dataset, zone="raw", rows=rows_written, files=len(entries)) as commit_span:
        manifest = lake.commit(raw_ref, entries, schema=_raw_schema(spec), run_id=run_id, attempt=attempt,
                               inputs=inputs,
                               extra={"contract": spec.dataset, "contract_version": spec.version,
                                      "contract_fingerprint": spec.fingerprint})
        annotate(commit_span, bytes=manifest.bytes)
    if manifest.rows != rows_written:
        raise RowsUnaccounted(f"raw manifest of {raw_ref} holds {manifest.rows} rows, expected {rows_written}")
    return int(manifest.bytes)


def _find_duplicates(client: Any, lake: Lake, spec: Any, day: dt.date, outcomes: list[FileOutcome], attempt: str,
                     dry_run: bool) -> dict[str, list[int]]:
    """Rows to drop per staged file. Keys are split into hash buckets of about a million keys, each
    deduplicated by one Dask task reading the staged key columns, so no process holds a whole day's keys."""
    if dry_run:
        import pyarrow as pa

        tables = [o.keys for o in outcomes if o.keys is not None and o.keys.num_rows]
        keys = pa.concat_tables(tables, promote_options="permissive") if tables else None
        return duplicate_rows(keys, previous_keys(lake, spec, day)) if keys is not None else {}
    stages = [(stage, o.rank) for o in outcomes for stage in o.staged]
    valid = sum(o.valid for o in outcomes)
    buckets = max(1, math.ceil(valid / DEDUPE_BUCKET_KEYS))
    drops: dict[str, list[int]] = {}
    dedupe = in_context(dedupe_bucket)
    for part in client.gather([client.submit(dedupe, lake, spec, stages, day, bucket=b, buckets=buckets,
                                             pure=False, key=f"ingest-dedupe-{attempt}-{b}")
                               for b in range(buckets)]):
        for stage, rows in part.items():
            drops.setdefault(stage, []).extend(rows)
    return drops


def _raw_schema(spec: Any) -> Any:
    """Raw files hold the output columns less the Hive partition columns (those live in the path)."""
    schema = output_schema(spec)
    for name in spec.partition_by:
        schema = schema.remove(schema.get_field_index(name))
    return schema



def read_run_log(lake: Lake, dataset: str | None = None) -> list[dict[str, Any]]:
    """All ingestion run records, oldest day first."""
    records = [lake.read_json(f.key) for f in lake.list_files(RUN_LOG) if f.key.endswith(".json")]
    return [r for r in records if dataset is None or r["dataset"] == dataset]
