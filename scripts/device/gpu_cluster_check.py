"""GPU check for the DaskHook's local GPU path: LocalCUDACluster from a gpu=true spec, GPU-annotated work.

Run on a machine with a CUDA GPU and dask-cuda installed:  PYTHONPATH=include python scripts/device/gpu_cluster_check.py
"""

from __future__ import annotations

import json
import time

import dask
import dask.array as da
from mlscale.compute import GPU_RESOURCE, ClusterSpec, open_client, visible_gpus


def cupy_sum(n: int) -> float:
    import cupy

    return float(cupy.arange(n, dtype=cupy.float64).sum())


def main() -> None:
    report: dict = {"visible_gpus": visible_gpus()}
    start = time.perf_counter()
    with open_client(ClusterSpec(name="dask_gpu_default", gpu=True)) as client:
        report["cluster_start_s"] = round(time.perf_counter() - start, 2)
        workers = client.scheduler_info(n_workers=-1)["workers"].values()
        report["worker_resources"] = [w.get("resources") for w in workers]
        report["cupy_sum"] = client.submit(cupy_sum, 10**8, resources={GPU_RESOURCE: 1}).result()
        with dask.annotate(resources={GPU_RESOURCE: 1}):
            total = da.ones((4000, 4000), chunks=(1000, 1000)).sum()
        report["annotated_array_sum"] = float(total.compute())
        cluster = client.cluster
    report["closed"] = cluster.status.name
    print(json.dumps(report))
    assert report["visible_gpus"] >= 1 and report["worker_resources"][0].get(GPU_RESOURCE) == 1
    assert report["cupy_sum"] == 10**8 * (10**8 - 1) / 2 and report["annotated_array_sum"] == 16_000_000.0


if __name__ == "__main__":
    main()
