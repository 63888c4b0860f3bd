"""Dask clusters from a declarative spec: an in-process LocalCluster, GPU workers, or a remote scheduler.

The spec comes from an Airflow connection (see :class:`mlscale.airflow.hooks.dask_hook.DaskHook`), but this
module knows nothing of Airflow: it turns a :class:`ClusterSpec` into a connected client and always
closes what it opened.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

from mlscale.errors import NotRetryable

logger = logging.getLogger(__name__)

GPU_RESOURCE = "GPU"


class ClusterError(RuntimeError):
    """A Dask cluster could not be opened or used as configured."""


class SchedulerUnreachable(ClusterError):
    """No scheduler answered at the configured address within the timeout."""


class NoWorkers(ClusterError):
    """The scheduler answered but not enough workers joined in time."""


class GPUUnavailable(ClusterError, NotRetryable):
    """GPU workers were asked for but none are available (never falls back to CPU silently)."""


@dataclass(frozen=True)
class TLSOptions:
    ca_file: str
    cert_file: str
    key_file: str


@dataclass(frozen=True)
class ClusterSpec:
    """What cluster to use. ``address`` empty means an in-process cluster on this machine."""

    name: str = "dask"
    address: str = ""
    gpu: bool = False
    n_workers: int = 2
    threads_per_worker: int = 1
    memory_limit: str = "auto"
    processes: bool = True
    dashboard_address: str | None = ":0"
    connect_timeout_s: float = 10.0
    min_workers: int = 1
    worker_timeout_s: float = 60.0
    tls: TLSOptions | None = None
    worker_resources: dict[str, float] = field(default_factory=dict)

    @classmethod
    def from_connection(cls, name: str, *, host: str | None, port: int | None,
                        extra: Mapping[str, Any]) -> ClusterSpec:
        """Read ``host``/``port`` and the connection's ``extra`` (see the README for its keys)."""
        address = ""
        if host:
            scheme = "tls" if extra.get("tls") else "tcp"
            address = host if "://" in host else f"{scheme}://{host}:{port or 8786}"
        tls = extra.get("tls")
        if tls is not None and not isinstance(tls, Mapping):
            raise ClusterError(f"connection {name!r}: extra.tls must be an object with ca_file, cert_file, key_file")
        try:
            return cls(
                name=name,
                address=address,
                gpu=_as_bool(extra.get("gpu", False)),
                n_workers=int(extra.get("n_workers", 2)),
                threads_per_worker=int(extra.get("threads_per_worker", 1)),
                memory_limit=str(extra.get("memory_limit", "auto")),
                processes=_as_bool(extra.get("processes", True)),
                dashboard_address=extra.get("dashboard_address", ":0"),
                connect_timeout_s=float(extra.get("connect_timeout", 10)),
                min_workers=int(extra.get("min_workers", 1)),
                worker_timeout_s=float(extra.get("worker_timeout", 60)),
                tls=TLSOptions(**tls) if tls else None,
                worker_resources={str(k): float(v) for k, v in extra.get("resources", {}).items()},
            )
        except (TypeError, ValueError) as exc:
            raise ClusterError(f"connection {name!r} has an invalid extra field: {exc}") from exc

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _as_bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def visible_gpus() -> int:
    """Number of CUDA devices visible here: the devices ``nvidia-smi`` lists (0 when there is no driver), limited
    to those ``CUDA_VISIBLE_DEVICES`` names when it is set (empty or ``-1``: none, as CUDA itself reads it)."""
    if shutil.which("nvidia-smi") is None:
        return 0
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return 0
    listed = sum(1 for line in out.stdout.splitlines() if line.startswith("GPU "))
    named = os.environ.get("CUDA_VISIBLE_DEVICES")
    if named is None:
        return listed
    ids = [i.strip() for i in named.split(",") if i.strip()]
    return min(listed, len(ids[:ids.index("-1")] if "-1" in ids else ids))


@contextmanager
def open_client(spec: ClusterSpec) -> Iterator[Any]:
    """Yield a connected ``distributed.Client``; close it (and any cluster it started) on exit.

    Raises :class:`SchedulerUnreachable`, :class:`NoWorkers` or :class:`GPUUnavailable` with the
    address, timeout and connection name, so the on-call engineer knows which setting to check.
    """
    from distributed import Client

    with ExitStack() as stack:
        if spec.address:
            client = stack.enter_context(remote_client(spec))
        else:
            cluster = stack.enter_context(_local_cluster(spec))
            client = stack.enter_context(Client(cluster))
        _wait_for_workers(client, spec)
        if spec.gpu:
            _require_gpu_workers(client, spec)
        logger.info("dask cluster ready for %s: %s, %d workers, dashboard %s", spec.name,
                    spec.address or "local", len(client.scheduler_info(n_workers=-1)["workers"]),
                    client.dashboard_link)
        yield client


@contextmanager
def remote_client(spec: ClusterSpec) -> Iterator[Any]:
    """A client of the running scheduler ``spec`` names (TLS when it says so); closed on exit."""
    from distributed import Client

    security = None
    if spec.tls:
        from distributed.security import Security

        security = Security(tls_ca_file=spec.tls.ca_file, tls_client_cert=spec.tls.cert_file,
                            tls_client_key=spec.tls.key_file, require_encryption=True)
    try:
        client = Client(spec.address, timeout=spec.connect_timeout_s, security=security,
                        set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise SchedulerUnreachable(
            f"no Dask scheduler answered at {spec.address} within {spec.connect_timeout_s:g}s "
            f"(connection {spec.name!r}): check that the scheduler runs and the connection's host/port "
            f"are right ({exc})"
        ) from exc
    try:
        yield client
    finally:
        client.close()


@contextmanager
def _main_not_reimported() -> Iterator[None]:
    """Stop spawned worker processes from re-running the parent's ``__main__`` script.

    Inside an Airflow task ``__main__`` is the ``airflow`` command, which must not start again (without
    the scheduler's environment) in every Dask worker process; workers only need importable modules.
    """
    import sys

    main = sys.modules.get("__main__")
    saved = getattr(main, "__file__", None)
    if main is not None and saved is not None:
        del main.__file__
    try:
        yield
    finally:
        if main is not None and saved is not None:
            main.__file__ = saved


@contextmanager
def _local_cluster(spec: ClusterSpec) -> Iterator[Any]:
    with _main_not_reimported():
        yield from _start_local_cluster(spec)


def _start_local_cluster(spec: ClusterSpec) -> Iterator[Any]:
    resources = dict(spec.worker_resources)
    if spec.gpu:
        if visible_gpus() == 0:
            raise GPUUnavailable(
                f"connection {spec.name!r} asks for GPU workers (extra.gpu=true) but no CUDA device is "
                "visible here (nvidia-smi finds none); use a CPU connection or point it at a GPU cluster"
            )
        try:
            from dask_cuda import LocalCUDACluster
        except ImportError as exc:
            raise GPUUnavailable(
                f"connection {spec.name!r} asks for local GPU workers but dask-cuda is not installed "
                "(pip install dask-cuda), or point the connection at a remote GPU scheduler"
            ) from exc
        resources.setdefault(GPU_RESOURCE, 1)
        cluster = LocalCUDACluster(threads_per_worker=spec.threads_per_worker,
                                   dashboard_address=spec.dashboard_address, resources=resources)
    else:
        from distributed import LocalCluster

        cluster = LocalCluster(n_workers=spec.n_workers, threads_per_worker=spec.threads_per_worker,
                               memory_limit=spec.memory_limit, processes=spec.processes,
                               dashboard_address=spec.dashboard_address, resources=resources or None)
    try:
        yield cluster
    finally:
        cluster.close()


def _wait_for_workers(client: Any, spec: ClusterSpec) -> None:
    try:
        client.wait_for_workers(spec.min_workers, timeout=spec.worker_timeout_s)
    except TimeoutError as exc:
        raise NoWorkers(
            f"the Dask scheduler at {spec.address or 'local'} (connection {spec.name!r}) has fewer than "
            f"{spec.min_workers} workers after {spec.worker_timeout_s:g}s: start workers or lower extra.min_workers"
        ) from exc


def _require_gpu_workers(client: Any, spec: ClusterSpec) -> None:
    workers = client.scheduler_info(n_workers=-1)["workers"].values()
    if not any(w.get("resources", {}).get(GPU_RESOURCE) for w in workers):
        raise GPUUnavailable(
            f"connection {spec.name!r} asks for GPU workers but no worker at {spec.address or 'local'} "
            f"offers the {GPU_RESOURCE!r} resource (start them with `dask cuda worker --resources GPU=1`)"
        )
