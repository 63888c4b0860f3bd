"""The lifecycle audit log: every planned, applied, skipped or failed action, with the rule behind it.

Append-only: each flush writes a new JSON-lines object
``_meta/lifecycle_audit/dt=<run day>/<phase>-<run id>-<unique>.jsonl`` and nothing ever rewrites or deletes
one (the lifecycle never touches ``_meta/``). One line per action outcome::

    {"run_id", "run_day", "phase": "plan"|"apply", "dry_run", "action", "target", "rule", "status",
     "reason", "bytes", "objects", "keys", "detail", "recorded_at"}

``recorded_at`` is the wall-clock time the line was written (what an auditor needs); decisions never
depend on it.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import uuid
from typing import Any

from mlscale.lake import Lake
from mlscale.layout import LIFECYCLE_AUDIT
from mlscale.lifecycle.actions import Action, safe_name

logger = logging.getLogger(__name__)

AUDIT_PREFIX = LIFECYCLE_AUDIT


class AuditLog:
    """Buffered audit records of one phase of one run; :meth:`flush` appends them as a new object."""

    def __init__(self, lake: Lake, *, run_id: str, run_day: str, phase: str, dry_run: bool) -> None:
        self.lake, self.run_id, self.run_day, self.phase, self.dry_run = lake, run_id, run_day, phase, dry_run
        self._lines: list[dict[str, Any]] = []
        self.written: list[str] = []

    def record(self, action: Action, *, status: str | None = None, reason: str = "", **detail: Any) -> None:
        self._lines.append({
            "run_id": self.run_id, "run_day": self.run_day, "phase": self.phase, "dry_run": self.dry_run,
            "action": action.action, "target": action.target, "rule": action.rule,
            "status": status or action.status, "reason": reason or action.reason, "bytes": action.bytes,
            "objects": action.objects, "keys": list(action.keys),
            "detail": {**{k: v for k, v in action.detail.items() if k != "sizes"}, **detail},
            "recorded_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        })

    def flush(self) -> str | None:
        """Write the buffered records as a new object (never overwriting one); returns its key."""
        if not self._lines:
            return None
        key = (f"{AUDIT_PREFIX}/dt={self.run_day}/{self.phase}-{safe_name(self.run_id)}-"
               f"{uuid.uuid4().hex[:12]}.jsonl")
        body = "".join(json.dumps(line, sort_keys=True, default=str) + "\n" for line in self._lines)
        self.lake.write_bytes(key, body.encode())
        logger.info("audit: %d records -> %s", len(self._lines), self.lake.uri(key))
        self._lines = []
        self.written.append(key)
        return key


def read_audit(lake: Lake, day: str | None = None) -> list[dict[str, Any]]:
    """Every audit record (of one run day), in object-key order."""
    prefix = f"{AUDIT_PREFIX}/dt={day}" if day else AUDIT_PREFIX
    records: list[dict[str, Any]] = []
    for stored in lake.list_files(prefix):
        if stored.key.endswith(".jsonl"):
            records += [json.loads(line) for line in lake.read_bytes(stored.key).splitlines() if line.strip()]
    return records
