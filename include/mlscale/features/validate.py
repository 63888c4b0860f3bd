"""Feature validation before publishing: ranges, null rates, freshness and row-count change."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import pyarrow as pa
import pyarrow.compute as pc

from mlscale.features.definitions import FeatureSet


class FeatureValidationError(RuntimeError):
    """An as-of table broke a validation rule; it was quarantined instead of published."""


@dataclass(frozen=True)
class Finding:
    feature: str
    rule: str
    observed: float | str
    limit: float | str
    severity: str  # "error" or "warning"

    def as_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        return f"{self.severity}: {self.feature} {self.rule}: observed {self.observed}, limit {self.limit}"


def validate_as_of(table: pa.Table, fs: FeatureSet, *, newest_partial_rows: int,
                   previous_rows: int | None, history_days: int) -> list[Finding]:
    """Check the feature set's declared rules; an empty list means the table may be published.

    While history is shorter than the largest window (warm-up), the row count is expected to grow,
    so its change is reported as a warning only.
    """
    findings: list[Finding] = []
    if newest_partial_rows == 0:
        findings.append(Finding("*", "freshness", "no events on the run's day", "events on the day", "error"))
    for feature, rules in fs.validation.items():
        if feature == "row_count":
            limit = float(rules.get("max_change_ratio", 0) or 0)
            if limit and previous_rows:
                ratio = max(table.num_rows / previous_rows, previous_rows / max(table.num_rows, 1))
                if ratio > limit:
                    severity = "error" if history_days >= fs.max_window else "warning"
                    findings.append(Finding("row_count", "max_change_ratio", round(ratio, 3), limit, severity))
            continue
        values = table.column(feature)
        n = len(values)
        if "max_null_rate" in rules and n:
            rate = values.null_count / n
            if rate > float(rules["max_null_rate"]):
                findings.append(Finding(feature, "max_null_rate", round(rate, 4), rules["max_null_rate"], "error"))
        elif n and values.null_count:
            findings.append(Finding(feature, "nulls", values.null_count, "-", "warning"))
        if "min" in rules and n:
            low = pc.min(values).as_py()
            if low is not None and low < float(rules["min"]):
                findings.append(Finding(feature, "min", low, rules["min"], "error"))
        if "max" in rules and n:
            high = pc.max(values).as_py()
            if high is not None and high > float(rules["max"]):
                findings.append(Finding(feature, "max", high, rules["max"], "error"))
    return findings
