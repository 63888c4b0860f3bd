"""``mlscale simulate``: generate a scenario's world and replay its days with the DAGs' own functions."""

from __future__ import annotations

import datetime as dt
import os
import time
from typing import Any

from mlscale.airflow.cli.lake_root import lake_for_cli

PII_CONNECTION = "pii_hmac_default"


def pii_key() -> str:
    """``$MLSCALE_PII_KEY``, else the password of the ``pii_hmac_default`` connection (what ingestion uses)."""
    if os.environ.get("MLSCALE_PII_KEY"):
        return os.environ["MLSCALE_PII_KEY"]
    from airflow.sdk import BaseHook

    try:
        password = BaseHook.get_connection(PII_CONNECTION).password
    except Exception as exc:  # noqa: BLE001 - any lookup failure gets the same advice
        raise ValueError(f"no pseudonymisation key: set MLSCALE_PII_KEY or create the connection {PII_CONNECTION} "
                         f"(`mlscale apply-settings airflow_settings.yaml`): {exc}") from exc
    if not password:
        raise ValueError(f"the connection {PII_CONNECTION} has no password (the key)")
    return str(password)


def _generate_missing(lake: Any, *, start: dt.date, days: int, rows_per_day: int, seed: int, scenario: Any) -> int:
    """Generate the days whose drops are not there yet (the world is deterministic); returns how many."""
    from mlscale.synthetic import generate_world, report_key

    first_missing = next((k for k in range(days) if not lake.exists(report_key(start + dt.timedelta(days=k)))), days)
    if first_missing < days:
        generate_world(lake.write_bytes, start=start, days=days, rows_per_day=rows_per_day, seed=seed,
                       scenario=scenario, first_day=first_missing)
    return days - first_missing


def simulate_command(root: str | None, *, start: dt.date | None, days: int, rows_per_day: int, seed: int,
                     scenario: str, models: list[str], min_train_days: int, max_rounds: int | None) -> list[Any]:
    from tqdm import tqdm

    from mlscale.airflow.hooks.dask_hook import DaskHook
    from mlscale.airflow.settings import platform
    from mlscale.layout import declared
    from mlscale.simulation import SimulationSettings, simulate
    from mlscale.synthetic import WORLD_KEY
    from mlscale.synthetic.scenario import load_scenario

    lake = lake_for_cli(root)
    if start is None:  # continue the lake's world, else end it yesterday
        start = (dt.date.fromisoformat(lake.read_json(WORLD_KEY)["start"]) if lake.exists(WORLD_KEY)
                 else dt.date.today() - dt.timedelta(days=days))
    plan = load_scenario(scenario)
    started = time.perf_counter()
    generated = _generate_missing(lake, start=start, days=days, rows_per_day=rows_per_day, seed=seed, scenario=plan)
    print(f"world: {days} days from {start} ({generated} generated now, {rows_per_day:,} payments a day), "
          f"scenario {plan.name} in {lake.root}", flush=True)
    settings_ = platform()
    settings = SimulationSettings(models=models or declared("models"), pii_key=pii_key(),
                                  train_cron=os.environ.get("MLSCALE_TRAIN_CRON", "0 3 * * 0"),
                                  min_train_days=min_train_days, feast_root=settings_.feast_root,
                                  tracking_uri=settings_.tracking_uri, max_rounds=max_rounds)
    last = start + dt.timedelta(days=days - 1)
    with DaskHook().client() as client, tqdm(total=days, unit="day", desc="simulate") as bar:
        from mlscale.simulation import finished_day

        done = finished_day(lake)
        if done:
            bar.update(max(0, min(days, (dt.date.fromisoformat(done) - start).days + 1)))

        def report(outcome: Any) -> None:
            bar.update(1)
            bar.write(outcome.line())

        outcomes = simulate(lake=lake, client=client, first=start.isoformat(), last=last.isoformat(),
                            settings=settings, report=report)
    print(f"simulated {len(outcomes)} days in {time.perf_counter() - started:.0f} s "
          f"(progress in {lake.uri('_meta/simulation/progress.json')})", flush=True)
    return outcomes
