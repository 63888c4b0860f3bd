"""Reading the health report's sources: the lake's records of the data pipelines, read tolerantly.

:class:`SourceReader` reads JSON and JSON-lines records and counts, per source, what it found and what it
could not read; a missing or unreadable record is left out (logged), never an error. The readers here turn
the records of one window of days into :class:`~mlscale.reports.health.PipelineDay` rows: ingestion runs
(``ingest_<dataset>``), compaction runs (``compact_lake``), feature-table manifests (``build_features``, and
each feature set's freshness), and the lifecycle audit log with the cost reports (``lifecycle_cleanup``).
The model pipelines are read by :mod:`mlscale.reports.health_models`.
"""

from __future__ import annotations

import datetime
import json
import logging
import posixpath
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from mlscale.lake import Lake, StoredFile, parse_day
from mlscale.layout import COMPACTION_RUNS, INGESTION_RUNS, LIFECYCLE_AUDIT, report_prefix
from mlscale.reports.catalog import InvalidReportPath, report_url
from mlscale.reports.health_types import (
    ATTENTION,
    DRY_RUN,
    NO_DATA,
    OK,
    FeatureFreshness,
    HealthThresholds,
    PipelineDay,
)

logger = logging.getLogger(__name__)

_DAY_DIR = re.compile(r"/dt=(\d{4}-\d{2}-\d{2})/")
_AS_OF_TABLE = re.compile(r"^(?P<name>.+)_v(?P<version>[0-9a-f]+)$")


class SourceReader:
    """Reads JSON sources tolerantly and counts, per source, what was found and what could not be read."""

    def __init__(self, lake: Lake) -> None:
        self.lake = lake
        self.status: dict[str, dict[str, Any]] = {}

    def note(self, source: str, found: int, **extra: Any) -> None:
        entry = self.status.setdefault(source, {"status": NO_DATA, "records": 0})
        entry["records"] += found
        if entry["records"]:
            entry["status"] = OK
        entry.update(extra)

    def listing(self, prefix: str) -> list[StoredFile]:
        try:
            return self.lake.list_files(prefix)
        except (OSError, ValueError) as exc:
            logger.warning("cannot list %s (%s): reported as no data", self.lake.uri(prefix), exc)
            return []

    def json(self, source: str, key: str) -> Any:
        try:
            return self.lake.read_json(key)
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            logger.warning("%s: %s is unreadable (%s); left out", source, self.lake.uri(key), exc)
            entry = self.status.setdefault(source, {"status": NO_DATA, "records": 0})
            entry["unreadable"] = entry.get("unreadable", 0) + 1
            return None

    def jsonl(self, source: str, key: str) -> list[dict[str, Any]]:
        try:
            return [json.loads(line) for line in self.lake.read_bytes(key).splitlines() if line.strip()]
        except FileNotFoundError:
            return []
        except (OSError, ValueError) as exc:
            logger.warning("%s: %s is unreadable (%s); left out", source, self.lake.uri(key), exc)
            return []


def day_of(key: str) -> str | None:
    found = _DAY_DIR.search(f"/{key}")
    return found.group(1) if found else None


def as_float(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def as_int(value: Any) -> int | None:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def report_link(kind: str, key: str) -> str | None:
    try:
        return report_url(kind, key)
    except InvalidReportPath:
        return None


def pipeline_row(pipeline: str, day: str, flags: Iterable[str] = (), **values: Any) -> PipelineDay:
    flags = tuple(dict.fromkeys(flags))
    status = values.pop("status", None) or (ATTENTION if flags else OK)
    return PipelineDay(pipeline=pipeline, day=day, status=status, flags=flags, **values)


# -- data pipelines ---------------------------------------------------------------------------------------
def ingestion_rows(src: SourceReader, days: Sequence[str], datasets: Iterable[str],
                   th: HealthThresholds) -> dict[str, list[PipelineDay]]:
    """``ingest_<dataset>`` rows: the latest non-dry record of a day counts; every record is an attempt."""
    before = (parse_day(days[0]) - datetime.timedelta(days=1)).isoformat()
    wanted = {before, *days}
    found: dict[tuple[str, str], list[tuple[float, str, dict[str, Any]]]] = defaultdict(list)
    names = set(datasets)
    for stored in src.listing(INGESTION_RUNS):
        day, name = day_of(stored.key), posixpath.basename(stored.key)
        if day is None or not name.endswith(".json") or "__" not in name:
            continue
        dataset = name.split("__", 1)[0]  # the writer names records <dataset>__<run>__try<N>.json
        names.add(dataset)
        if day in wanted:
            record = src.json("ingestion_runs", stored.key)
            if isinstance(record, dict):
                found[(dataset, day)].append((stored.mtime or 0.0, stored.key, record))
    src.note("ingestion_runs", sum(len(v) for (_, d), v in found.items() if d in days))
    out: dict[str, list[PipelineDay]] = {}
    for dataset in sorted(names):
        rows: list[PipelineDay] = []
        previous = _latest_real(found.get((dataset, before), []))
        for day in days:
            records = found.get((dataset, day), [])
            if not records:
                rows.append(pipeline_row(f"ingest_{dataset}", day, status=NO_DATA, retries=None))
                previous = None
                continue
            real = [r for r in records if not r[2].get("dry_run")]
            latest = _latest_real(records) or max(records, key=lambda r: (r[0], r[1]))[2]
            # a retry is a further attempt of the same run; another run of the day (a backfill beside the
            # scheduled run, a manual rerun) is a rerun, counted in `runs`
            tries: dict[Any, int] = {}
            for r in records:
                run = r[2].get("run_id")
                tries[run] = max(tries.get(run, 1), as_int(r[2].get("try_number")) or 1)
            retries = sum(t - 1 for t in tries.values())
            rows_in = as_int(latest.get("rows_in"))
            quarantined = as_int(latest.get("rows_quarantined"))
            rate = as_float(latest.get("quarantine_rate"))
            if rate is None and rows_in:
                rate = (quarantined or 0) / rows_in
            flags = []
            if rate is not None and rate > th.max_quarantine_rate:
                flags.append("quarantine_rate")
            change = None
            if previous is not None and rows_in is not None and as_int(previous.get("rows_in")):
                change = rows_in / int(previous["rows_in"]) - 1
                if abs(change) > th.max_volume_change:
                    flags.append("volume_change")
            if retries:
                flags.append("retries")
            reasons = latest.get("quarantine_by_reason") or {}
            top = sorted(reasons.items(), key=lambda kv: -kv[1])[:5] if isinstance(reasons, dict) else []
            rows.append(pipeline_row(
                f"ingest_{dataset}", day, flags, status=None if real else DRY_RUN, runs=len(real), retries=retries,
                rows_in=rows_in, rows_out=as_int(latest.get("rows_written")), rows_quarantined=quarantined,
                quarantine_rate=round(rate, 6) if rate is not None else None, seconds=as_float(latest.get("seconds")),
                detail={"rows_duplicate": as_int(latest.get("rows_duplicate")), "files": as_int(latest.get("files")),
                        "volume_change": round(change, 4) if change is not None else None,
                        "top_reasons": dict(top), "dry_runs": len(records) - len(real),
                        "seconds_all_attempts": round(sum(as_float(r[2].get("seconds")) or 0 for r in records), 3),
                        "run_id": latest.get("run_id"), "try_number": as_int(latest.get("try_number"))}))
            previous = latest if real else previous
        out[f"ingest_{dataset}"] = rows
    return out


def _latest_real(records: list[tuple[float, str, dict[str, Any]]]) -> dict[str, Any] | None:
    real = [r for r in records if not r[2].get("dry_run")]
    if not real:
        return None
    return max(real, key=lambda r: (r[0], as_int(r[2].get("try_number")) or 0, r[1]))[2]


def compaction_rows(src: SourceReader, days: Sequence[str]) -> list[PipelineDay]:
    """``compact_lake`` rows by partition day: one record per compacted partition; a repeat is a retry."""
    found: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for stored in src.listing(COMPACTION_RUNS):
        day = day_of(stored.key)
        if day is not None and day in days and stored.key.endswith(".json"):
            record = src.json("compaction_runs", stored.key)
            if isinstance(record, dict):
                found[day].append(record)
    src.note("compaction_runs", sum(len(v) for v in found.values()))
    rows = []
    for day in days:
        records = found.get(day, [])
        if not records:
            rows.append(pipeline_row("compact_lake", day, status=NO_DATA))
            continue
        partitions = Counter((str(r.get("partition")), r.get("run_id")) for r in records)
        retries = sum(n - 1 for n in partitions.values())
        rows.append(pipeline_row(
            "compact_lake", day, ["retries"] if retries else [], runs=len(records), retries=retries,
            rows_in=sum(as_int(r.get("rows")) or 0 for r in records),
            rows_out=sum(as_int(r.get("rows")) or 0 for r in records),
            seconds=round(sum(as_float(r.get("seconds")) or 0 for r in records), 3),
            detail={"partitions": sorted(partitions),
                    "files_before": sum(as_int(r.get("files_before")) or 0 for r in records),
                    "files_after": sum(as_int(r.get("files_after")) or 0 for r in records),
                    "bytes_before": sum(as_int(r.get("bytes_before")) or 0 for r in records),
                    "bytes_after": sum(as_int(r.get("bytes_after")) or 0 for r in records)}))
    return rows


@dataclass
class _FeatureTables:
    """The as-of feature tables in the lake: which days each has committed, grouped by feature set."""

    committed: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))  # table -> days
    by_set: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))  # feature set -> tables

    @classmethod
    def read(cls, src: SourceReader) -> _FeatureTables:
        tables = cls()
        for stored in src.listing("features"):
            parts = stored.key.split("/")
            if len(parts) == 4 and parts[3] == "_manifest.json" and parts[2].startswith("dt=") \
                    and _AS_OF_TABLE.match(parts[1]):
                tables.committed[parts[1]].add(parts[2][3:])
        for table in tables.committed:
            match = _AS_OF_TABLE.match(table)
            if match is not None:
                tables.by_set[match.group("name")].append(table)
        return tables

    def newest(self, name: str, day: str) -> tuple[str | None, str | None]:
        """The newest day up to ``day`` any table of feature set ``name`` committed, and that table."""
        best: tuple[str | None, str | None] = (None, None)
        for table in self.by_set.get(name, []):
            upto = [d for d in self.committed[table] if d <= day]
            if upto and (best[0] is None or max(upto) > best[0]):
                best = (max(upto), table)
        return best

    def lag(self, name: str, day: str) -> int | None:
        newest_day = self.newest(name, day)[0]
        return (parse_day(day) - parse_day(newest_day)).days if newest_day else None

    def quarantined(self, src: SourceReader) -> dict[str, set[str]]:
        """Day -> the tables whose partition of that day failed validation."""
        quarantined: dict[str, set[str]] = defaultdict(set)
        for table in self.committed:
            for stored in src.listing(f"quarantine/{table}"):
                day = day_of(stored.key)
                if day and stored.key.endswith("/_manifest.json"):
                    quarantined[day].add(table)
        return quarantined


def feature_rows(src: SourceReader, days: Sequence[str], feature_sets: Iterable[str],
                 th: HealthThresholds) -> tuple[list[PipelineDay], list[FeatureFreshness]]:
    """``build_features`` rows from the as-of tables' manifests, and each set's freshness at D."""
    tables = _FeatureTables.read(src)
    names = sorted(set(tables.by_set) | set(feature_sets))
    quarantined = tables.quarantined(src)
    rows = []
    reads = 0
    for day in days:
        sets, day_reads = _feature_manifests(src, tables, names, day)
        reads += day_reads
        lags = {n: tables.lag(n, day) for n in tables.by_set}
        behind = {n: v for n, v in lags.items() if v is not None and v > th.max_feature_lag_days}
        flags = []
        if behind:
            flags.append("stale_features")
        if quarantined.get(day):
            flags.append("validation_failed")
        if not sets:
            rows.append(pipeline_row("build_features", day, flags, status=NO_DATA if not flags else None,
                                     detail={"lag_days": lags, "quarantined": sorted(quarantined.get(day, ()))}))
            continue
        rows.append(pipeline_row("build_features", day, flags, runs=len(sets),
                                 rows_out=sum(s["rows"] or 0 for s in sets.values()),
                                 detail={"feature_sets": sets, "lag_days": lags,
                                         "quarantined": sorted(quarantined.get(day, ()))}))
    src.note("feature_manifests", reads)
    return rows, [_freshness(tables, name, days[-1], th) for name in names]


def _feature_manifests(src: SourceReader, tables: _FeatureTables, names: Sequence[str],
                       day: str) -> tuple[dict[str, dict[str, Any]], int]:
    """Table -> a summary of its manifest of ``day``, for the tables that committed that day; and how many
    manifests were read."""
    sets: dict[str, dict[str, Any]] = {}
    reads = 0
    for name in names:
        for table in sorted(tables.by_set.get(name, [])):
            if day not in tables.committed[table]:
                continue
            doc = src.json("feature_manifests", f"features/{table}/dt={day}/_manifest.json")
            reads += 1
            if isinstance(doc, dict):
                extra = doc.get("extra") or {}
                findings = extra.get("findings") or []
                sets[table] = {"feature_set": name, "rows": as_int(doc.get("rows")), "run_id": doc.get("run_id"),
                              "version": extra.get("version"), "findings": len(findings),
                              "warnings": [str(f.get("rule", f)) for f in findings[:5] if isinstance(f, dict)]}
    return sets, reads


def _freshness(tables: _FeatureTables, name: str, last: str, th: HealthThresholds) -> FeatureFreshness:
    """How far behind ``last`` feature set ``name``'s newest committed day is."""
    newest_day, newest_table = tables.newest(name, last)
    versions = tuple(sorted(t[len(name) + 2:] for t in tables.by_set.get(name, [])))
    if newest_day is None:
        return FeatureFreshness(name, NO_DATA, versions=versions)
    behind_days = (parse_day(last) - parse_day(newest_day)).days
    return FeatureFreshness(name, "stale" if behind_days > th.max_feature_lag_days else "fresh",
                            table=newest_table, newest_day=newest_day, lag_days=behind_days, versions=versions)


def lifecycle_rows(src: SourceReader, days: Sequence[str]) -> tuple[list[PipelineDay], dict[str, Any]]:
    """``lifecycle_cleanup`` rows from the audit log and cost reports, and the newest cost report up to D."""
    lines: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for stored in src.listing(LIFECYCLE_AUDIT):
        day = day_of(stored.key)
        if day is not None and day in days and stored.key.endswith(".jsonl"):
            lines[day] += [r for r in src.jsonl("lifecycle_audit", stored.key) if isinstance(r, dict)]
    src.note("lifecycle_audit", sum(len(v) for v in lines.values()))
    reports = sorted({s.key.split("/")[2] for s in src.listing(report_prefix("cost"))
                      if s.key.count("/") == 3 and s.key.endswith("/report.json")})
    costs: dict[str, dict[str, Any]] = {}
    for day in [d for d in reports if d in days]:
        doc = src.json("cost_reports", f"{report_prefix('cost')}/{day}/report.json")
        if isinstance(doc, dict):
            costs[day] = doc
    newest = max((d for d in reports if d <= days[-1]), default=None)
    if newest is not None and newest not in costs:
        doc = src.json("cost_reports", f"{report_prefix('cost')}/{newest}/report.json")
        if isinstance(doc, dict):
            costs[newest] = doc
    src.note("cost_reports", len(costs))
    rows = []
    for day in days:
        records, cost = lines.get(day, []), costs.get(day)
        if not records and cost is None:
            rows.append(pipeline_row("lifecycle_cleanup", day, status=NO_DATA))
            continue
        statuses = Counter(str(r.get("status")) for r in records)
        applied = [r for r in records if r.get("status") == "applied"]
        totals = (cost or {}).get("totals") or {}
        rows.append(pipeline_row(
            "lifecycle_cleanup", day, ["failed_actions"] if statuses.get("failed") else [],
            runs=len({r.get("run_id") for r in records}) or 1,
            detail={"statuses": dict(sorted(statuses.items())), "dry_run": all(r.get("dry_run") for r in records)
                    if records else None, "bytes_applied": sum(as_int(r.get("bytes")) or 0 for r in applied),
                    "monthly_cost": as_float(totals.get("monthly_cost")), "bytes": as_int(totals.get("bytes"))}))
    return rows, _cost_summary(costs.get(newest) if newest else None, newest)


def _cost_summary(doc: dict[str, Any] | None, day: str | None) -> dict[str, Any]:
    if doc is None or day is None:
        return {"status": NO_DATA}
    totals, saved = doc.get("totals") or {}, doc.get("saved") or {}
    growth = (doc.get("growth") or {}).get("top") or []
    return {"status": OK, "day": day, "currency": doc.get("currency"),
            "monthly_cost": as_float(totals.get("monthly_cost")), "bytes": as_int(totals.get("bytes")),
            "hot_bytes": as_int(totals.get("hot_bytes")), "cold_bytes": as_int(totals.get("cold_bytes")),
            "objects": as_int(totals.get("objects")), "monthly_saving": as_float(saved.get("monthly_saving")),
            "dry_run": doc.get("dry_run"),
            "top_growth": [{k: g.get(k) for k in ("zone", "dataset", "delta_bytes")} for g in growth[:3]
                           if isinstance(g, dict)],
            "link": report_link("cost", day)}


__all__ = ["SourceReader", "as_float", "as_int", "compaction_rows", "day_of", "feature_rows", "ingestion_rows",
           "lifecycle_rows", "pipeline_row", "report_link"]
