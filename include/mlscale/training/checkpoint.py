"""Training checkpoints in the lake, so a retried attempt resumes instead of starting over.

``checkpoints/<model>/<run key>/`` holds ``round-<n>.bin`` model snapshots and ``latest.json`` (written after
the snapshot: the commit point). The run key is stable across the attempts of one Airflow run and changes
with the training set or the parameters, so a retry resumes only the same training. When the run ends,
``_finished.json`` marks the folder for the lifecycle DAG, which deletes it after the retention period.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from dataclasses import dataclass
from typing import Any

from mlscale.lake import Lake, file_name_of

logger = logging.getLogger(__name__)

LATEST = "latest.json"
FINISHED = "_finished.json"
KEEP = 2  # snapshots kept besides the latest (older ones are deleted when a new one commits)


def run_key(run_id: str, fingerprint: str, params: dict[str, Any]) -> str:
    """One folder per (Airflow run, training set, parameters): retries share it, other trainings do not."""
    digest = hashlib.sha256(json.dumps([fingerprint, params], sort_keys=True, default=str).encode()).hexdigest()[:12]
    return f"{file_name_of(run_id)}-{digest}"


@dataclass(frozen=True)
class Checkpoint:
    rounds: int
    model: bytes
    state: dict[str, Any]


class CheckpointStore:
    """Save and load snapshots of one training run (picklable: it travels to Dask workers)."""

    def __init__(self, lake: Lake, model: str, key: str) -> None:
        self.lake = lake
        self.prefix = f"checkpoints/{model}/{key}"

    def save(self, rounds: int, model: bytes, state: dict[str, Any] | None = None) -> None:
        name = f"round-{rounds:06d}.bin"
        self.lake.write_bytes(f"{self.prefix}/{name}", model)
        previous = self._latest_doc() or {}
        history = [f for f in previous.get("history", []) if f != name] + [name]
        for old in history[:-KEEP - 1]:
            self.lake.delete(f"{self.prefix}/{old}")
        self.lake.write_json(f"{self.prefix}/{LATEST}", {
            "rounds": rounds, "file": name, "state": state or {}, "history": history[-KEEP - 1:],
            "saved_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")})
        logger.info("checkpoint %s/%s saved (%d rounds, %d bytes)", self.prefix, name, rounds, len(model))

    def latest(self) -> Checkpoint | None:
        """The last committed snapshot, or None when the run has none (or it was marked finished)."""
        doc = self._latest_doc()
        if doc is None or self.lake.exists(f"{self.prefix}/{FINISHED}"):
            return None
        try:
            data = self.lake.read_bytes(f"{self.prefix}/{doc['file']}")
        except FileNotFoundError:
            logger.warning("checkpoint %s lists %s, which is missing: starting over", self.prefix, doc["file"])
            return None
        return Checkpoint(rounds=int(doc["rounds"]), model=data, state=dict(doc.get("state") or {}))

    def finish(self, status: str) -> None:
        """Mark the run finished; the lifecycle DAG removes the folder after its retention period."""
        self.lake.write_json(f"{self.prefix}/{FINISHED}", {
            "status": status, "finished_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")})

    def _latest_doc(self) -> dict[str, Any] | None:
        try:
            return dict(json.loads(self.lake.read_bytes(f"{self.prefix}/{LATEST}")))
        except FileNotFoundError:
            return None
