"""LandingDropSensor: wait for the day's drop in ``landing/`` to be complete, and for earlier days to be committed.

Complete means: every source of the contract that declares a completion signal (``complete_when``: a marker file,
its own manifest of files with sizes and checksums, a file count, or a quiet period) has given it, and the drop
holds at least ``min_files`` data files; the log says, per source, what is there and what is awaited.

Dedupe drops re-deliveries against the raw partitions of the days before (the contract's
``dedupe_window_days``), so a day is ingested only once those earlier days that have a drop are
committed: runs may start in any order (backfills, catch-up, a late scheduled run) and still give
the same rows.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from airflow.sdk import BaseSensorOperator

from mlscale.airflow.run_context import run_day


class LandingDropSensor(BaseSensorOperator):
    """Succeeds once ``landing/<dataset>/dt=<day>/`` holds at least ``min_files`` data files and every
    earlier day inside the dedupe window that has a drop also has a committed raw partition."""

    template_fields = ("dataset", "contract", "wait_for_earlier_days")

    def __init__(self, *, dataset: str, contract: str | None = None, min_files: int = 1,
                 wait_for_earlier_days: bool | str = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.dataset = dataset
        self.contract = contract
        self.min_files = min_files
        self.wait_for_earlier_days = wait_for_earlier_days

    def poke(self, context: Any) -> bool:
        from mlscale.airflow.hooks.lake_hook import LakeHook
        from mlscale.contracts import load_contract
        from mlscale.ingest.completeness import drop_is_complete, landing_drop_status
        from mlscale.ingest.run import landing_files
        from mlscale.lake import PartitionRef, parse_day

        lake = LakeHook().get_lake()
        day = parse_day(run_day(context))
        contract = load_contract(self.contract or self.dataset)
        statuses = landing_drop_status(lake, contract, day)
        files = sum(s.files for s in statuses)
        self.log.info("landing/%s/dt=%s holds %d data files (need %d); %s", self.dataset, day, files,
                      self.min_files, "; ".join(s.line() for s in statuses))
        if files < self.min_files or not drop_is_complete(statuses):
            return False
        if str(self.wait_for_earlier_days).lower() in ("false", "0", "no"):
            return True
        window = contract.dedupe_window_days
        for back in range(1, window + 1):
            earlier = day - dt.timedelta(days=back)
            if landing_files(lake, self.dataset, earlier) and \
                    lake.manifest(PartitionRef.of("raw", self.dataset, earlier)) is None:
                self.log.info("waiting for raw/%s/dt=%s: it has a landing drop but is not ingested yet (dedupe "
                              "looks back %d days); trigger with wait_for_earlier_days=false to skip",
                              self.dataset, earlier, window)
                return False
        return True
