"""Callables run by the DaskOperator in tests (importable by path, as DAGs use them)."""

from __future__ import annotations

import time


def sum_of_squares(client, n: int, dt: str, run_id: str) -> dict:
    futures = client.map(lambda x: x * x, range(n))
    return {"total": client.submit(sum, futures).result(), "dt": dt, "run_id": run_id}


def slow_job(client, seconds: float) -> int:
    futures = client.map(lambda i: time.sleep(seconds) or i, range(4), pure=False)
    return sum(client.gather(futures))
