"""Failed task runs, as the lake records them: ``_meta/task_failures/dt=D/<dag>.<task>.<run>.try<N>.json``.

Written by the failure callback every mlscale task carries (a try that will not be retried), read by the
pipeline health report. One object per failed try: rewriting the same try is idempotent.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from typing import Any

from mlscale.lake import Lake, file_name_of
from mlscale.layout import TASK_FAILURES


@dataclass(frozen=True)
class TaskFailure:
    dag_id: str
    task_id: str
    run_id: str
    run_type: str
    day: str
    try_number: int
    error: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def key(self) -> str:
        name = file_name_of(f"{self.dag_id}.{self.task_id}.{self.run_id}.try{self.try_number}")
        return f"{TASK_FAILURES}/dt={self.day}/{name}.json"


def record_failure(lake: Lake, failure: TaskFailure) -> str:
    """Write the failure record (with the time it was recorded) and return its key."""
    doc = failure.as_dict() | {"recorded_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
    lake.write_json(failure.key, {**doc, "error": failure.error[:2000]})
    return failure.key
