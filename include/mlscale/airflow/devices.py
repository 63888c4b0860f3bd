"""The Dask devices of the DAGs that train and score: each device's connection and Airflow pool.

A DAG with a ``device`` param maps one task per device (``train`` on ``dask_cpu_default`` in the ``dask_cpu``
pool, ``train_gpu`` on ``dask_gpu_default`` in the ``dask_gpu`` pool); a run's requests all go to the device its
param names, and the other device's task expands to nothing (skipped). Each device has its own requests task
(``train_requests``, ``train_requests_gpu``): a mapped task cannot expand over part of one task's result. An
Airflow pool is fixed when the task is defined, so a GPU run can only take a ``dask_gpu`` slot through a task of
its own.
"""

from __future__ import annotations

from typing import Any

DEVICES = ("cpu", "gpu")
CONNECTIONS = {"cpu": "dask_cpu_default", "gpu": "dask_gpu_default"}
POOLS = {"cpu": "dask_cpu", "gpu": "dask_gpu"}


def device_task_id(base: str, device: str) -> str:
    """``train`` for the CPU, ``train_gpu`` for the GPU (the CPU task keeps the plain name)."""
    return base if device == "cpu" else f"{base}_{device}"


def on_device(requests: list[dict[str, Any]], run_device: str, device: str) -> list[dict[str, Any]]:
    """The run's requests for the task of ``device``: all of them when the run's ``device`` param names it,
    none otherwise (that task then expands to nothing and is skipped)."""
    if run_device not in DEVICES:
        raise ValueError(f"device {run_device!r} is not one of {DEVICES}")
    return list(requests) if run_device == device else []
