"""Ingestion: landing drops → contract validation → quarantine → dedupe → pseudonymisation → raw."""

from mlscale.ingest.run import ingest_partition, landing_files, read_run_log

__all__ = ["ingest_partition", "landing_files", "read_run_log"]
