"""The settings a bias audit judges by, and its verdict vocabulary: shared by the audit and the risk policy."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


class BiasAuditError(ValueError):
    """The audit input is unusable; the message names the column and what to fix."""


JUDGED_ON = ("interval", "point")
INSUFFICIENT = "insufficient_data"   # the verdict when no attribute had two groups with enough data to judge


@dataclass(frozen=True)
class BiasThresholds:
    """The bias settings of a risk tier (see ``include/policies/model_risk.yaml`` for their meaning)."""

    max_demographic_parity_difference: float = 0.1
    min_demographic_parity_ratio: float = 0.8
    max_equalized_odds_difference: float = 0.1
    min_group_size: int = 100
    min_class_count: int = 1
    ci_level: float = 0.95
    bootstrap_samples: int = 1000
    judged_on: str = "interval"   # "interval": fail on a disparity its whole interval confirms; "point": on estimates

    def __post_init__(self) -> None:
        if self.judged_on not in JUDGED_ON:
            raise BiasAuditError(f"judged_on must be one of {JUDGED_ON}, got {self.judged_on!r}")
        shares = (self.max_demographic_parity_difference, self.min_demographic_parity_ratio,
                  self.max_equalized_odds_difference)
        if not (0 < self.ci_level < 1 and all(0 <= x <= 1 for x in shares)
                and min(self.bootstrap_samples, self.min_group_size, self.min_class_count) >= 1):
            raise BiasAuditError(f"invalid {self}: ci_level must lie in (0, 1), gaps and ratios in [0, 1], "
                                 "sizes >= 1")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


__all__ = ["INSUFFICIENT", "JUDGED_ON", "BiasAuditError", "BiasThresholds"]
