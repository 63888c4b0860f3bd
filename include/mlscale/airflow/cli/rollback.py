"""``mlscale rollback``: point ``champion`` back at an earlier registered version, recorded in the audit log."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import sys
from typing import Any


def rollback(*, model: str, version: str, by: str, reason: str, lake: str | None,
             tracking_uri: str) -> dict[str, Any]:
    """Move ``champion`` to ``version`` and print the recorded decision as JSON (stdout: only the decision).

    Raises ``FileNotFoundError`` when the version's model files are not in the lake.
    """
    from mlscale.airflow.cli.lake_root import lake_for_cli
    from mlscale.governance.gate import rollback as rollback_champion

    with contextlib.redirect_stdout(sys.stderr):  # Airflow's log handler writes to stdout: keep it for results
        decision = rollback_champion(lake_for_cli(lake), model=model, version=version, by=by, reason=reason,
                                     tracking_uri=tracking_uri, day=dt.datetime.now(dt.UTC).date().isoformat())
    doc = decision.as_dict()
    print(json.dumps(doc, default=str))
    return doc


def delete_version(*, model: str, version: str, by: str, reason: str, lake: str | None,
                   tracking_uri: str) -> dict[str, Any]:
    """Delete ``version`` from the registry and mark its lineage record deleted; prints the record as JSON."""
    from mlscale.airflow.cli.lake_root import lake_for_cli
    from mlscale.training import registry

    found = lake_for_cli(lake)
    with contextlib.redirect_stdout(sys.stderr):
        client = registry.client_for(registry.RegistryConfig.for_lake(found, tracking_uri))
        doc = registry.delete_version(found, client, model=model, version=version, by=by, reason=reason)
    print(json.dumps(doc, default=str))
    return doc
