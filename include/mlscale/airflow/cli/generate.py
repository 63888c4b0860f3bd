"""``mlscale generate``: the synthetic card-payments world, written as landing drops."""

from __future__ import annotations

import datetime as dt
from typing import Any

from mlscale.airflow.cli.lake_root import lake_for_cli


def generate_command(root: str | None, *, start: dt.date, days: int, rows_per_day: int, seed: int,
                     drift_from: dt.date | None, scenario: str | None = None) -> dict[str, Any]:
    from mlscale.synthetic import generate_world
    from mlscale.synthetic.scenario import load_scenario

    lake = lake_for_cli(root)
    reports = generate_world(lake.write_bytes, start=start, days=days, rows_per_day=rows_per_day, seed=seed,
                             drift_from=drift_from, scenario=load_scenario(scenario) if scenario else None)
    return {"lake": lake.root, "days": [r.as_dict()["dt"] for r in reports],
            "rows": sum(sum(r.rows_by_dataset.values()) for r in reports)}
