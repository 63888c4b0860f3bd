"""DaskHook and DaskOperator against a LocalCluster and an external scheduler + worker on loopback."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from distributed import CancelledError, Client
from mlscale.airflow.hooks.dask_hook import DaskHook
from mlscale.airflow.operators.dask_operator import DaskOperator
from mlscale.compute import GPUUnavailable, NoWorkers, SchedulerUnreachable, visible_gpus
from mlscale.lake import Lake
from mlscale.usage import read_usage

from tests.conftest import free_port

sys.path.insert(0, str(Path(__file__).parent))
CONTEXT = {"params": {"dt": "2026-11-03"}, "run_id": "manual__test", "ti": SimpleNamespace(try_number=1)}
DASK = str(Path(sys.executable).with_name("dask"))


def set_conn(monkeypatch, conn_id: str, **conn) -> None:
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps({"conn_type": "dask", **conn}))


def wait_for_port(port: int, timeout: float = 30) -> None:
    import socket

    deadline = time.time() + timeout
    while time.time() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise TimeoutError(f"nothing listens on {port}")


@pytest.fixture(autouse=True)
def own_lake(monkeypatch, tmp_path) -> Path:
    """Each test's lake (the operator records resource use there), never the project's."""
    monkeypatch.setenv("AIRFLOW_VAR_MLSCALE_LAKE_ROOT", str(tmp_path / "lake"))
    return tmp_path / "lake"


@pytest.fixture(scope="module")
def external_cluster():
    """`dask scheduler` and `dask worker` as separate processes on 127.0.0.1."""
    port = free_port()
    common = ["--no-dashboard"]
    scheduler = subprocess.Popen([DASK, "scheduler", "--host", "127.0.0.1", "--port", str(port), *common],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_port(port)
    worker = subprocess.Popen([DASK, "worker", f"tcp://127.0.0.1:{port}", "--nthreads", "2", "--nworkers", "1",
                               "--host", "127.0.0.1", *common],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    yield port
    for proc in (worker, scheduler):
        proc.terminate()
        proc.wait(timeout=30)


def test_local_cluster_from_connection_is_closed_after_use(monkeypatch) -> None:
    set_conn(monkeypatch, "dask_t_local", extra={"n_workers": 1, "threads_per_worker": 2, "processes": False})
    hook = DaskHook(dask_conn_id="dask_t_local")
    with hook as client:
        assert client.submit(lambda: 41 + 1).result() == 42
        workers = client.scheduler_info(n_workers=-1)["workers"]
        assert len(workers) == 1 and next(iter(workers.values()))["nthreads"] == 2
        cluster = client.cluster
    assert client.status == "closed"
    assert cluster.status.name == "closed"


def test_operator_runs_callable_by_import_path_on_external_scheduler(monkeypatch, external_cluster, own_lake) -> None:
    set_conn(monkeypatch, "dask_t_remote", host="127.0.0.1", port=external_cluster)
    op = DaskOperator(task_id="squares", python_callable="dask_jobs:sum_of_squares", op_kwargs={"n": 10},
                      dask_conn_id="dask_t_remote")
    result = op.execute(CONTEXT)
    assert result == {"total": sum(i * i for i in range(10)), "dt": "2026-11-03", "run_id": "manual__test"}
    [record] = read_usage(Lake(str(own_lake)), "2026-11-03")       # what the task used, on the remote worker too
    assert (record.task_id, record.run_id, record.workers, record.processes) == ("squares", "manual__test", 1, 2)
    assert record.cpu_seconds > 0 and record.wall_seconds > 0 and record.cost["total"] > 0
    assert len(record.peak_memory_bytes) == 2 and min(record.peak_memory_bytes.values()) > 10 * 2**20
    assert (record.threads_per_worker, record.engine, record.rows) == (2, "dask", None)   # what was offered; no rows said
    assert record.memory_limit_bytes > 0                                     # the worker's default: a share of RAM
    # the remote cluster outlives the task: only our client was closed
    with Client(f"tcp://127.0.0.1:{external_cluster}", timeout=10) as probe:
        assert len(probe.scheduler_info(n_workers=-1)["workers"]) == 1


def test_a_missing_secret_connection_fails_at_once_and_says_how_to_restore_it(monkeypatch) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    set_conn(monkeypatch, "dask_t_secret", extra={"n_workers": 1, "threads_per_worker": 1, "processes": False})
    monkeypatch.delenv("AIRFLOW_CONN_PII_T_MISSING", raising=False)
    op = DaskOperator(task_id="squares", python_callable="dask_jobs:sum_of_squares", op_kwargs={"n": 3},
                      dask_conn_id="dask_t_secret", secret_kwargs={"pii_key": "pii_t_missing"})
    with pytest.raises(AirflowFailException, match="not retried") as failed:  # no retries: nothing can fix it
        op.execute(CONTEXT)
    message = str(failed.value)
    assert "'pii_t_missing' (the task's pii_key) is not defined" in message
    assert "a different key changes every token" in message


def test_on_kill_cancels_running_futures(monkeypatch, external_cluster) -> None:
    set_conn(monkeypatch, "dask_t_remote", host="127.0.0.1", port=external_cluster)
    op = DaskOperator(task_id="slow", python_callable="dask_jobs:slow_job", op_kwargs={"seconds": 60},
                      dask_conn_id="dask_t_remote", progress_interval_s=0.5)
    outcome: dict = {}

    def run() -> None:
        try:
            outcome["result"] = op.execute(CONTEXT)
        except BaseException as exc:  # noqa: BLE001 - recorded for the assertion
            outcome["error"] = exc

    thread = threading.Thread(target=run)
    started = time.time()
    thread.start()
    while not (op._client is not None and op._client.futures) and time.time() - started < 30:
        time.sleep(0.1)
    op.on_kill()
    thread.join(timeout=30)
    assert not thread.is_alive()
    assert isinstance(outcome.get("error"), CancelledError)
    assert time.time() - started < 30  # not the 60 s the tasks would sleep
    with Client(f"tcp://127.0.0.1:{external_cluster}", timeout=10) as probe:
        deadline = time.time() + 15
        while any(probe.processing().values()) and time.time() < deadline:
            time.sleep(0.2)
        assert not any(probe.processing().values())


def test_unreachable_scheduler_names_address_and_timeout(monkeypatch) -> None:
    port = free_port()
    set_conn(monkeypatch, "dask_t_down", host="127.0.0.1", port=port, extra={"connect_timeout": 2})
    with pytest.raises(SchedulerUnreachable, match=rf"tcp://127.0.0.1:{port} within 2s .*dask_t_down"):
        with DaskHook(dask_conn_id="dask_t_down"):
            pass


def test_scheduler_without_workers_is_a_named_error(monkeypatch) -> None:
    port = free_port()
    proc = subprocess.Popen([DASK, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port)
        set_conn(monkeypatch, "dask_t_empty", host="127.0.0.1", port=port, extra={"worker_timeout": 2})
        with pytest.raises(NoWorkers, match="fewer than 1 workers after 2s"):
            with DaskHook(dask_conn_id="dask_t_empty"):
                pass
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_gpu_on_cpu_only_cluster_is_an_error_not_a_fallback(monkeypatch, external_cluster) -> None:
    set_conn(monkeypatch, "dask_t_gpu_remote", host="127.0.0.1", port=external_cluster, extra={"gpu": True})
    with pytest.raises(GPUUnavailable, match="'GPU' resource"):
        with DaskHook(dask_conn_id="dask_t_gpu_remote"):
            pass


@pytest.mark.skipif(visible_gpus() > 0, reason="a GPU is present: the no-GPU error cannot be provoked")
def test_local_gpu_without_device_is_an_error(monkeypatch) -> None:
    set_conn(monkeypatch, "dask_t_gpu", extra={"gpu": True})
    with pytest.raises(GPUUnavailable, match="no CUDA device"):
        with DaskHook(dask_conn_id="dask_t_gpu"):
            pass


@pytest.mark.gpu
@pytest.mark.skipif(visible_gpus() == 0, reason="no CUDA GPU visible on this machine")
def test_gpu_operator_annotates_work_with_gpu_resource(monkeypatch) -> None:
    pytest.importorskip("dask_cuda", reason="dask-cuda is not installed")
    set_conn(monkeypatch, "dask_t_gpu", extra={"gpu": True})
    op = DaskOperator(task_id="gpu", python_callable="dask_jobs:sum_of_squares", op_kwargs={"n": 5},
                      dask_conn_id="dask_t_gpu")
    assert op.execute(CONTEXT)["total"] == 30


def test_idle_clusters_are_reported_then_shut_down_on_request(monkeypatch, capsys) -> None:
    from mlscale.airflow.cli import main

    port = free_port()
    scheduler = subprocess.Popen([DASK, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    worker = subprocess.Popen([DASK, "worker", f"tcp://127.0.0.1:{port}", "--nthreads", "2", "--memory-limit", "1GiB",
                               "--host", "127.0.0.1", "--no-dashboard"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port)
        set_conn(monkeypatch, "dask_t_idle", host="127.0.0.1", port=port)
        set_conn(monkeypatch, "dask_t_local_only", extra={"n_workers": 1})
        with Client(f"tcp://127.0.0.1:{port}", timeout=10) as busy:
            busy.wait_for_workers(1, timeout=30)
            running = busy.submit(time.sleep, 3, pure=False)
            time.sleep(0.5)
            assert main(["idle-clusters", "--conn", "dask_t_idle", "--idle-minutes", "0.01", "--json"]) == 0
            doc = json.loads(capsys.readouterr().out)
            [cluster] = doc["clusters"]
            assert cluster["idle_seconds"] is None and cluster["action"] == "kept"   # working: never idle
            running.result()
        time.sleep(1.5)
        code = main(["idle-clusters", "--conn", "dask_t_idle", "--conn", "dask_t_local_only", "--idle-minutes", "0.01",
                     "--json"])
        doc = json.loads(capsys.readouterr().out)
        [cluster] = doc["clusters"]
        assert code == 1 and cluster["idle"] and cluster["idle_seconds"] >= 1.0 and cluster["action"] == "reported"
        assert (cluster["workers"], cluster["threads"], cluster["memory_bytes"]) == (1, 2, 2**30)
        assert cluster["hourly_cost"] > 0 and "LocalCluster" in doc["notes"][0]
        assert scheduler.poll() is None                                         # reported only
        assert main(["idle-clusters", "--conn", "dask_t_idle", "--idle-minutes", "0.01", "--shutdown"]) == 1
        assert "shut down" in capsys.readouterr().out
        assert scheduler.wait(timeout=30) is not None                           # closed on request
    finally:
        for proc in (worker, scheduler):
            proc.kill()
            proc.wait(timeout=30)
