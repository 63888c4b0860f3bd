"""What a Spark connection offers, for the sizing advisor (executors, cores, memory)."""

from __future__ import annotations

import os

from airflow.sdk import BaseHook

from mlscale.sizing import GB, ClusterResources


def cluster_resources(conn_id: str) -> ClusterResources:
    """``local[N]``/``local[*]`` masters use this machine; others read ``extra``: ``executors``,
    ``cores_per_executor``, ``memory_per_executor_gb``."""
    conn = BaseHook.get_connection(conn_id)
    extra = conn.extra_dejson
    host = conn.host or "local[*]"
    if host.startswith("local"):
        inside = host[host.find("[") + 1: host.find("]")] if "[" in host else "1"
        cores = os.cpu_count() or 1 if inside in ("*", "") else int(inside)
        return ClusterResources(executors=1, cores_per_executor=int(cores), memory_per_executor_bytes=2 * GB, local=True)
    return ClusterResources(executors=int(extra.get("executors", 2)),
                            cores_per_executor=int(extra.get("cores_per_executor", 2)),
                            memory_per_executor_bytes=int(float(extra.get("memory_per_executor_gb", 4)) * GB),
                            local=False)
