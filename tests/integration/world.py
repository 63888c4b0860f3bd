"""A small generated world run through the real pipeline functions: drops → raw → features → feature store.

Used by the training, governance and scoring tests (and handy in a shell)::

    python -m tests.integration.world /tmp/lake 2026-11-01 5 4000
"""

from __future__ import annotations

import datetime as dt
import sys

from distributed import Client, LocalCluster
from mlscale.feature_store import sync_feature_store
from mlscale.features import all_feature_sets, build_features
from mlscale.ingest import ingest_partition
from mlscale.lake import Lake
from mlscale.synthetic import generate_world

CONTRACTS = ("customers", "labels", "transactions")


def build_world(lake: Lake, *, start: dt.date, days: int, rows_per_day: int, seed: int = 7,
                drift_from: dt.date | None = None, client: Client | None = None,
                process_days: int | None = None, feast_root: str | None = None) -> list[str]:
    """Generate ``days`` days and process the first ``process_days`` (default all); returns those days (ISO)."""
    generate_world(lake.write_bytes, start=start, days=days, rows_per_day=rows_per_day, seed=seed,
                   drift_from=drift_from)
    day_list = [(start + dt.timedelta(days=i)).isoformat() for i in range(days if process_days is None else process_days)]
    if client is None:
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster, \
                Client(cluster) as own:
            return _process(lake, day_list, own, feast_root)
    return _process(lake, day_list, client, feast_root)


def _process(lake: Lake, day_list: list[str], client: Client, feast_root: str | None = None) -> list[str]:
    for day in day_list:
        for contract in CONTRACTS:
            ingest_partition(client=client, lake=lake, dt=day, run_id=f"ingest_{day}", contract=contract,
                             pii_key=b"test-key")
        for fs in all_feature_sets():
            build_features(lake=lake, dt=day, run_id=f"features_{day}", feature_set=fs.name, client=client)
        sync_feature_store(lake=lake, dt=day, feast_root=feast_root)
    return day_list


if __name__ == "__main__":
    root, first, n, rows = sys.argv[1], dt.date.fromisoformat(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    drift = dt.date.fromisoformat(sys.argv[5]) if len(sys.argv) > 5 else None
    build_world(Lake(root), start=first, days=n, rows_per_day=rows, drift_from=drift)
