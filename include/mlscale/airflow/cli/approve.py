"""``mlscale approve``: record a human approval of a model version for the promotion gate."""

from __future__ import annotations

import contextlib
import json
import sys
from typing import Any


def approve(*, model: str, version: str, by: str, note: str, accepts: tuple[str, ...],
            lake: str | None) -> dict[str, Any]:
    """Write ``_meta/approvals/<model>/<version>.json`` and print it as JSON (stdout: only the document).

    Raises ``ValueError`` for an approval the gate would not accept (no approver, an unknown gap).
    """
    from mlscale.airflow.cli.lake_root import lake_for_cli
    from mlscale.governance.gate import record_approval

    with contextlib.redirect_stdout(sys.stderr):  # Airflow's log handler writes to stdout: keep it for results
        doc = record_approval(lake_for_cli(lake), model=model, version=version, approved_by=by, note=note,
                              accepts=accepts)
    print(json.dumps(doc))
    return doc
