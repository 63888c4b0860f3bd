"""Alerts for people: what broke, where, the cause in one line, and a link to the task log or report.

An :class:`Alert` is built where a condition is found — a task failed after its last retry, a run missed its
deadline, a day drifted, a feature set went stale, a drop's quarantine rate passed its limit, the gate refused
a version — and delivered by :mod:`mlscale.airflow.notify` to the channels the deployment configured (e-mail,
a chat or paging webhook). This module only says what an alert holds and how it reads.
"""

from __future__ import annotations

import html
from dataclasses import asdict, dataclass
from typing import Any

CRITICAL, WARNING = "critical", "warning"

#: kind -> what it means, for the message's second line
KINDS = {
    "task_failed": "a task failed after its last retry",
    "deadline_missed": "a run is not finished by its deadline",
    "drift": "the day's data or predictions drifted from their reference",
    "stale_features": "a feature set was not published for the day",
    "quarantine_rate": "a drop's quarantined share is above its limit",
    "gate_refused": "the promotion gate refused a model version",
    "latency_slo": "online scoring is slower than its latency SLO",
}


@dataclass(frozen=True)
class Alert:
    kind: str
    severity: str
    dag_id: str
    partition: str      #: the day, or model and version, the alert is about
    cause: str          #: one line
    link: str = ""      #: the task log or the report

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown alert kind {self.kind!r}: one of {', '.join(KINDS)}")
        if self.severity not in (CRITICAL, WARNING):
            raise ValueError(f"alert severity is {CRITICAL!r} or {WARNING!r}, not {self.severity!r}")
        object.__setattr__(self, "cause", " ".join(str(self.cause).split()))  # one line

    @property
    def subject(self) -> str:
        return f"[mlscale {self.severity}] {self.dag_id} {self.partition}: {self.kind}"

    def text(self) -> str:
        lines = [self.subject, self.cause, f"({KINDS[self.kind]})"]
        if self.link:
            lines.append(self.link)
        return "\n".join(lines)

    def html(self) -> str:
        link = f'<p><a href="{html.escape(self.link)}">{html.escape(self.link)}</a></p>' if self.link else ""
        return (f"<p><b>{html.escape(self.subject)}</b></p><p>{html.escape(self.cause)}</p>"
                f"<p>{html.escape(KINDS[self.kind])}</p>{link}")

    def payload(self) -> dict[str, Any]:
        """The webhook body: ``text`` for chat webhooks (Slack-compatible) and the fields for any receiver."""
        return {"text": self.text(), "alert": asdict(self)}
