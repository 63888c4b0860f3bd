"""Which Dask device a run uses: the requests go to the device task its param names, with that device's
connection and pool; the GPU count honours CUDA_VISIBLE_DEVICES as CUDA does."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from mlscale import compute
from mlscale.airflow.devices import CONNECTIONS, DEVICES, POOLS, device_task_id, on_device


def test_requests_go_to_the_device_task_the_run_names() -> None:
    requests = [{"model": "a"}, {"model": "b"}]
    assert on_device(requests, "gpu", "gpu") == requests and on_device(requests, "gpu", "cpu") == []
    assert on_device(requests, "cpu", "cpu") == requests and on_device(requests, "cpu", "gpu") == []
    with pytest.raises(ValueError, match="not one of"):
        on_device(requests, "tpu", "cpu")
    assert [device_task_id("train", d) for d in DEVICES] == ["train", "train_gpu"]
    assert POOLS == {"cpu": "dask_cpu", "gpu": "dask_gpu"}
    assert CONNECTIONS == {"cpu": "dask_cpu_default", "gpu": "dask_gpu_default"}


@pytest.mark.parametrize(("cuda_visible", "expected"), [(None, 2), ("", 0), ("-1", 0), ("0", 1), ("0,1", 2),
                                                          ("1,-1,0", 1), ("0,1,2,3", 2)])
def test_visible_gpus_honours_cuda_visible_devices(monkeypatch, cuda_visible, expected) -> None:
    listed = "GPU 0: NVIDIA H100 (UUID: GPU-a)\nGPU 1: NVIDIA H100 (UUID: GPU-b)\n"
    monkeypatch.setattr(compute.shutil, "which", lambda name: "/usr/bin/nvidia-smi")
    monkeypatch.setattr(compute.subprocess, "run", lambda *a, **k: SimpleNamespace(stdout=listed))
    if cuda_visible is None:
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    else:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", cuda_visible)
    assert compute.visible_gpus() == expected
