"""The result of an ingestion run, its run-log record and the on-call summary in the task log."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

logger = logging.getLogger("mlscale.ingest")


class RowsUnaccounted(RuntimeError):
    """Records in ≠ written + quarantined + duplicates: something would be lost, so nothing is committed."""


class QuarantineRateExceeded(RuntimeError):
    """A strict run quarantined more than its threshold."""


@dataclass(frozen=True)
class IngestionResult:
    dataset: str
    dt: str
    run_id: str
    try_number: int
    attempt: str
    dry_run: bool
    files: int
    rows_in: int
    rows_written: int
    rows_valid: int
    rows_quarantined: int
    rows_duplicate: int
    quarantine_by_reason: dict[str, int]
    bytes_in: int
    bytes_out: int
    seconds: float
    parse_seconds: float
    contract_version: int
    contract_fingerprint: str
    code_version: str
    raw_uri: str
    quarantine_uri: str
    per_file: list[dict[str, Any]] = field(default_factory=list)
    sources: list[dict[str, Any]] = field(default_factory=list)         # each source's completeness, as ingested
    late_files: dict[str, list[str]] = field(default_factory=dict)    # earlier day -> files landed after its run

    @property
    def quarantine_rate(self) -> float:
        return self.rows_quarantined / self.rows_in if self.rows_in else 0.0

    def as_dict(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["quarantine_rate"] = round(self.quarantine_rate, 6)
        return doc

    def asset_extra(self) -> dict[str, Any]:
        """The counts attached to the raw asset's event (visible in the UI and to downstream DAGs)."""
        return {k: getattr(self, k) for k in ("dt", "rows_in", "rows_written", "rows_quarantined",
                                               "rows_duplicate", "contract_version")}


def log_summary(result: IngestionResult) -> None:
    """What the on-call engineer needs first: counts, reasons, and the files and sources behind them."""
    logger.info("%s %s%s: %d files, %d records in -> %d written, %d quarantined (%.2f%%), %d duplicates, "
                "%.1f s; raw %s; quarantine %s", result.dataset, result.dt, " [dry run]" if result.dry_run else "",
                result.files, result.rows_in, result.rows_written, result.rows_quarantined,
                100 * result.quarantine_rate, result.rows_duplicate, result.seconds, result.raw_uri,
                result.quarantine_uri)
    for source in result.sources:
        logger.info("  source %s: %s (%s)", source["source"], "complete" if source["complete"] else "INCOMPLETE",
                    source["detail"])
    for day, files in sorted(result.late_files.items()):
        logger.warning("  %d files landed in landing/%s/dt=%s after that day was ingested (%s): rerun the day's "
                       "ingestion to take them in", len(files), result.dataset, day, ", ".join(files[:5]))
    for reason, count in sorted(result.quarantine_by_reason.items(), key=lambda kv: -kv[1]):
        logger.info("  quarantined %-28s %8d", reason, count)
    by_source: Counter = Counter()
    for item in result.per_file:
        by_source[item["source"]] += sum(item["quarantined"].values())
        if item["quarantined"] or item["unknown_columns"] or item["missing_columns"]:
            logger.info("  file %s (%s): %d in, %d valid, quarantined %s%s%s", item["file"], item["source"],
                        item["rows_in"], item["valid"], item["quarantined"],
                        f", unknown columns ignored {item['unknown_columns']}" if item["unknown_columns"] else "",
                        f", columns absent {item['missing_columns']}" if item["missing_columns"] else "")
    if by_source:
        top = ", ".join(f"{s}: {n}" for s, n in by_source.most_common(3) if n)
        if top:
            logger.info("  top offending sources: %s", top)
