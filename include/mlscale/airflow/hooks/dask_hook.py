"""DaskHook: an Airflow connection names a Dask cluster; the hook opens and closes it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

from airflow.sdk import BaseHook

from mlscale.compute import ClusterSpec, open_client


class DaskHook(BaseHook):
    """Open a Dask client from a connection of type ``dask``.

    * no host: an in-process ``LocalCluster`` (``extra``: ``n_workers``, ``threads_per_worker``,
      ``memory_limit``, ``processes``);
    * host/port: a remote ``distributed`` scheduler (``extra.tls``: ``ca_file``, ``cert_file``,
      ``key_file``; ``connect_timeout``, ``min_workers``, ``worker_timeout`` in seconds);
    * ``extra.gpu = true``: GPU workers (dask-cuda locally, or a remote cluster whose workers offer
      the ``GPU`` resource) or a :class:`~mlscale.compute.GPUUnavailable` error.

    Use it as a context manager (``with DaskHook() as client:``) so the cluster is always closed.
    """

    conn_name_attr = "dask_conn_id"
    default_conn_name = "dask_cpu_default"
    conn_type = "dask"
    hook_name = "Dask"

    def __init__(self, dask_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.dask_conn_id = dask_conn_id
        self._stack: ExitStack | None = None

    def get_spec(self) -> ClusterSpec:
        conn = self.get_connection(self.dask_conn_id)
        return ClusterSpec.from_connection(self.dask_conn_id, host=conn.host, port=conn.port,
                                           extra=conn.extra_dejson)

    @contextmanager
    def client(self, spec: ClusterSpec | None = None) -> Iterator[Any]:
        spec = spec or self.get_spec()
        self.log.info("opening Dask cluster for connection %r: %s", self.dask_conn_id,
                      spec.address or f"LocalCluster({spec.n_workers} workers x {spec.threads_per_worker} threads)")
        with open_client(spec) as client:
            yield client

    def __enter__(self) -> Any:
        self._stack = ExitStack()
        return self._stack.enter_context(self.client())

    def __exit__(self, *exc: object) -> None:
        if self._stack is not None:
            self._stack.close()
            self._stack = None

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        return {
            "hidden_fields": ["schema", "login", "password"],
            "relabeling": {"host": "Scheduler host (empty: local cluster)"},
            "placeholders": {"extra": '{"n_workers": 2, "threads_per_worker": 1, "gpu": false}',
                             "port": "8786"},
        }
