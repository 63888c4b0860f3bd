"""Synthetic card-payments/fraud world delivered as third-party landing "drops".

Public API: :class:`LandingFile`, :class:`DayReport`, :func:`generate_day`, :func:`generate_world`.
See :mod:`mlscale.synthetic.sources` for the per-source file formats and
:mod:`mlscale.synthetic.faults` for the injected faults and their reason codes.
"""

from __future__ import annotations

from mlscale.synthetic.faults import FAULT_KINDS, LABEL_TYPE_ERROR, SCHEMA_MISMATCH
from mlscale.synthetic.generate import (
    WORLD_KEY,
    DayReport,
    LandingFile,
    clear_caches,
    generate_day,
    generate_world,
    report_key,
)

__all__ = [
    "FAULT_KINDS", "LABEL_TYPE_ERROR", "SCHEMA_MISMATCH", "WORLD_KEY",
    "DayReport", "LandingFile", "clear_caches", "generate_day", "generate_world", "report_key",
]
