"""Running Dask clusters that sit idle: how long the scheduler has had nothing to do, what it holds, and what
holding it costs; shut down on request.

The scheduler tracks its own idleness (``Scheduler.idle_since``, checked every 250 ms: no task queued,
processing or waiting, no graph being submitted), which is what Dask's own ``idle_timeout`` acts on. A cluster
idle for longer than the threshold is reported with its workers, threads and memory and the hourly cost of
holding them at the price table's rates (an always-on cluster bills its cores and memory, busy or not);
``shutdown`` closes the scheduler and its workers (``Client.shutdown``). Clusters that start with each task (a
connection without a host: a LocalCluster) are never idle between tasks and are not probed.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any

from mlscale.usage.cost import GIB, ComputePrices

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClusterIdleness:
    name: str                       #: the connection id
    address: str
    idle_seconds: float | None      #: None: the cluster is working
    workers: int
    threads: int
    memory_bytes: int
    hourly_cost: float              #: what holding its cores and memory costs an hour
    idle: bool                      #: idle for longer than the threshold
    action: str = "reported"        #: reported | shut down | kept (busy or below the threshold)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        state = "busy" if self.idle_seconds is None else f"idle for {self.idle_seconds / 60:.1f} min"
        return (f"{self.name} ({self.address}): {state}; {self.workers} workers, {self.threads} threads, "
                f"{self.memory_bytes / GIB:.1f} GiB, {self.hourly_cost:.4f}/hour held; {self.action}")


def _idle_seconds(dask_scheduler: Any) -> float | None:
    """How long the scheduler has been idle, on its own clock (None: working)."""
    from time import time as now

    dask_scheduler.check_idle()
    since = dask_scheduler.idle_since
    return None if since is None else max(0.0, now() - float(since))


def probe_dask(name: str, client: Any, prices: ComputePrices, *, idle_after_s: float) -> ClusterIdleness:
    """The idleness of the cluster ``client`` is connected to."""
    idle_seconds = client.run_on_scheduler(_idle_seconds)
    workers = client.scheduler_info(n_workers=-1).get("workers", {})
    threads = sum(int(w.get("nthreads") or 0) for w in workers.values())
    memory = sum(int(w.get("memory_limit") or 0) for w in workers.values())
    hourly = prices.cost(cpu_seconds=threads * 3600, gib_hours=memory / GIB)["total"]
    idle = idle_seconds is not None and idle_seconds >= idle_after_s
    return ClusterIdleness(name, str(client.scheduler.address), None if idle_seconds is None else round(idle_seconds, 1),
                           len(workers), threads, memory, hourly, idle, "reported" if idle else "kept")


def check_dask_cluster(spec: Any, prices: ComputePrices, *, idle_after_s: float, shutdown: bool) -> ClusterIdleness:
    """Probe the running scheduler a connection's ``spec`` (:class:`~mlscale.compute.ClusterSpec`) names; with
    ``shutdown``, close it (scheduler and workers) when it is idle past the threshold."""
    from mlscale.compute import remote_client

    with remote_client(spec) as client:
        found = probe_dask(spec.name, client, prices, idle_after_s=idle_after_s)
        if found.idle and shutdown and (client.run_on_scheduler(_idle_seconds) or 0.0) >= idle_after_s:  # still
            logger.warning("shutting down %s", found.summary())
            client.shutdown()
            return ClusterIdleness(**{**found.as_dict(), "action": "shut down"})
    logger.info("%s", found.summary())
    return found
