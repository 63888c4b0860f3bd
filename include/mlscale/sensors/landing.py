"""LandingDropSensor: wait until a third party has delivered the day's files to ``landing/``."""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseSensorOperator

from mlscale.operators.run_context import run_day


class LandingDropSensor(BaseSensorOperator):
    """Succeeds once ``landing/<dataset>/dt=<day>/`` holds at least ``min_files`` data files."""

    template_fields = ("dataset",)

    def __init__(self, *, dataset: str, min_files: int = 1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.dataset = dataset
        self.min_files = min_files

    def poke(self, context: Any) -> bool:
        from mlscale.hooks.lake_hook import LakeHook
        from mlscale.ingest.run import landing_files
        from mlscale.lake import parse_day

        lake = LakeHook().get_lake()
        day = run_day(context)
        files = landing_files(lake, self.dataset, parse_day(day))
        self.log.info("landing/%s/dt=%s holds %d data files (need %d)", self.dataset, day, len(files), self.min_files)
        return len(files) >= self.min_files
