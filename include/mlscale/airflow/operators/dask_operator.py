"""DaskOperator: run a library function on a Dask cluster named by an Airflow connection."""

from __future__ import annotations

import importlib
import inspect
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

from airflow.sdk import BaseOperator

from mlscale.airflow.fail_fast import failing_fast
from mlscale.airflow.hooks.dask_hook import DaskHook
from mlscale.airflow.run_context import run_day
from mlscale.airflow.settings import platform
from mlscale.compute import GPU_RESOURCE
from mlscale.errors import NotRetryable
from mlscale.settings import INJECTED

SIZING_HISTORY_DAYS = 14     # the usage records the operator's sizing advice reads
INJECTABLE = ("client", "lake", "dt", "run_id", "try_number", "platform")


def _today() -> str:
    import datetime as dt

    return dt.datetime.now(dt.UTC).date().isoformat()


def _map_index(context: Any) -> int:
    index = getattr(context.get("ti"), "map_index", -1)
    return index if isinstance(index, int) else -1


def resolve_callable(target: str | Callable[..., Any]) -> Callable[..., Any]:
    """Accept a function or its import path ``package.module:function`` (or ``package.module.function``)."""
    if callable(target):
        return target
    module_name, sep, attr = target.partition(":")
    if not sep:
        module_name, _, attr = target.rpartition(".")
    try:
        fn = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ValueError(f"python_callable {target!r} cannot be imported: {exc}") from exc
    if not callable(fn):
        raise ValueError(f"python_callable {target!r} is not callable")
    return fn


class DaskOperator(BaseOperator):
    """Call ``python_callable(**op_kwargs)`` with a Dask client and return its (small) result to XCom.

    Besides ``op_kwargs`` (templated), the callable receives, when it declares a parameter of that name
    and ``op_kwargs`` does not set it: ``client`` (the Dask client), ``lake`` (the project's lake, from
    :class:`~mlscale.airflow.hooks.lake_hook.LakeHook`), ``dt`` (the run's day, see
    :func:`~mlscale.airflow.run_context.run_day`; ``days_before_logical_date`` is passed to it), ``run_id`` and
    ``try_number``, ``platform`` (the :class:`~mlscale.settings.Platform`), and each platform setting by its
    name (``tracking_uri``, ``feast_root``, ``online_store``, ``redis_connection_string``, ``code_version``).
    ``secret_kwargs`` maps a parameter name to a connection id whose password is passed in that
    parameter (read at run time: never templated, rendered or logged).
    A result with ``as_dict()`` goes to XCom as that dict; one with ``asset_extra()`` also puts those
    counts on every outlet's asset event. ``outlet_partition`` (templated, e.g. ``"{{ params.downstream }}"``):
    a run without a partition key of its own (a manual rerun of a day) keys its outlets' events by its day, so
    the partitioned DAGs downstream run for that day as they do after a scheduled run.
    An error the library marks :class:`~mlscale.errors.NotRetryable` fails the task without retries.
    Futures still running when the task is killed are cancelled; on a GPU connection the work is
    annotated with the ``GPU`` resource so it lands on GPU workers only.

    OpenLineage: the lake locations the result names are the run's output datasets and the inputs their
    manifests record its input datasets (:mod:`mlscale.lineage.task`), reported through
    :meth:`get_openlineage_facets_on_complete`. Working them out never fails the task.
    """

    template_fields = ("op_kwargs", "dask_conn_id", "outlet_partition")
    template_fields_renderers = {"op_kwargs": "json"}
    ui_color = "#fdf0e5"

    def __init__(self, *, python_callable: str | Callable[..., Any], op_kwargs: Mapping[str, Any] | None = None,
                 dask_conn_id: str = DaskHook.default_conn_name, progress_interval_s: float = 30.0,
                 secret_kwargs: Mapping[str, str] | None = None, days_before_logical_date: int = 0,
                 outlet_partition: bool | str = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.python_callable = python_callable
        self.op_kwargs = op_kwargs or {}
        self.dask_conn_id = dask_conn_id
        self.progress_interval_s = progress_interval_s
        self.secret_kwargs = secret_kwargs or {}
        self.days_before_logical_date = days_before_logical_date
        self.outlet_partition = outlet_partition
        self._client: Any = None
        self._lineage: Any = None  # mlscale.lineage.task.TaskLineage of the last successful execute

    def execute(self, context: Any) -> Any:
        with failing_fast():  # a setting to fix or a day with no data: fail now, never retry
            return self._execute(context)

    def _execute(self, context: Any) -> Any:
        from mlscale.usage.sampler import UsageSampler  # here, not at the top: DAG files stay light to parse

        self._lineage = None
        fn = resolve_callable(self.python_callable)
        hook = DaskHook(dask_conn_id=self.dask_conn_id)
        spec = hook.get_spec()
        with hook.client(spec) as client:
            self._client = client
            self.log.info("Dask dashboard: %s", client.dashboard_link)
            kwargs = self._arguments(fn, client, context)
            self._log_sizing_advice(kwargs)
            stop = threading.Event()
            progress = threading.Thread(target=self._log_progress, args=(client, stop), daemon=True)
            progress.start()
            try:
                with UsageSampler(client) as usage:
                    if spec.gpu:
                        import dask

                        with dask.annotate(resources={GPU_RESOURCE: 1}):
                            result = fn(**kwargs)
                    else:
                        result = fn(**kwargs)
            finally:
                stop.set()
                progress.join(timeout=5)
                self._client = None
        self._record_usage(usage, context, kwargs, result)
        if hasattr(result, "asset_extra"):
            extra = result.asset_extra()
            for outlet in self.outlets:
                context["outlet_events"][outlet].extra.update(extra)
        self._key_outlets_by_day(context, kwargs)
        if hasattr(result, "as_dict"):
            result = result.as_dict()
        self._lineage = self._task_lineage(result, kwargs.get("lake"))
        return result

    def _record_usage(self, usage: Any, context: Any, kwargs: Mapping[str, Any], result: Any) -> None:
        """The task's resource use, the workload its result reports, and its cost: one log line, and
        ``_meta/resource_usage/dt=D/`` (never fails the task: usage that cannot be recorded is a warning)."""
        try:
            from mlscale.usage.recording import finished_record
            from mlscale.usage.sampler import write_usage

            record = finished_record(usage, result, dag_id=self.dag_id, task_id=self.task_id, run_id=context["run_id"],
                                     try_number=int(getattr(context.get("ti"), "try_number", 1) or 1),
                                     day=str(kwargs.get("dt") or _today()), map_index=_map_index(context))
            self.log.info("%s", record.summary())
            lake = kwargs.get("lake") or self._lake()
            self.log.info("resource use recorded: %s", lake.uri(write_usage(lake, record)))
        except Exception as exc:  # noqa: BLE001 - accounting must never fail the work it accounts for
            self.log.warning("resource use not recorded (%s: %s)", type(exc).__name__, exc)

    def _log_sizing_advice(self, kwargs: Mapping[str, Any]) -> None:
        """What this task's recorded history says its cluster should be (``mlscale sizing``), on the log; never
        fails the task."""
        try:
            from mlscale.sizing import advise_from_history
            from mlscale.usage.history import usage_history

            lake = kwargs.get("lake") or self._lake()
            runs = [r for r in usage_history(lake, str(kwargs.get("dt") or _today()), SIZING_HISTORY_DAYS)
                    if (r.dag_id, r.task_id) == (self.dag_id, self.task_id)]
            advice = advise_from_history(runs)
            self.log.info("sizing from the usage history: %s", advice.summary() if advice else
                          f"{len(runs)} recorded run(s) in {SIZING_HISTORY_DAYS} days, too few to advise")
        except Exception as exc:  # noqa: BLE001 - advice must never fail the work
            self.log.warning("sizing advice not available (%s: %s)", type(exc).__name__, exc)

    def _key_outlets_by_day(self, context: Any, kwargs: Mapping[str, Any]) -> None:
        if str(self.outlet_partition).strip().lower() not in ("true", "1", "yes"):
            return
        if getattr(context.get("dag_run"), "partition_key", None) or not kwargs.get("dt"):
            return  # a partitioned run's events carry its key already
        for outlet in self.outlets:
            context["outlet_events"][outlet].add_partitions(str(kwargs["dt"]))
        self.log.info("outlet events keyed by the day %s: the partitioned DAGs downstream run for it", kwargs["dt"])

    def _task_lineage(self, result: Any, lake: Any) -> Any:
        """What the result says this run read and wrote; None (with a warning) when that cannot be told."""
        if not isinstance(result, Mapping):
            return None
        try:
            from mlscale.lineage.task import task_lineage

            found = task_lineage(result, lake if lake is not None else self._lake)
        except Exception as exc:  # lineage is reporting: it never fails the task
            self.log.warning("lineage of this run could not be worked out (%s: %s); its OpenLineage events carry "
                             "no datasets", type(exc).__name__, exc)
            return None
        self.log.info("lineage: %d input and %d output datasets", len(found.inputs), len(found.outputs))
        return found

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """Input and output datasets of the completed run, for the OpenLineage provider's COMPLETE event.

        Local lake locations are named ``file`` + absolute path, S3 ones ``s3://<bucket>`` + key.
        """
        from airflow.providers.openlineage.extractors import OperatorLineage

        lineage = self._lineage
        if lineage is None:
            return OperatorLineage()
        try:
            from openlineage.client.event_v2 import Dataset

            return OperatorLineage(inputs=[Dataset(namespace=ns, name=name) for ns, name in lineage.input_names()],
                                   outputs=[Dataset(namespace=ns, name=name) for ns, name in lineage.output_names()])
        except Exception as exc:  # never let reporting break the run's events
            self.log.warning("OpenLineage datasets of this run could not be built (%s: %s)", type(exc).__name__, exc)
            return OperatorLineage()

    def _arguments(self, fn: Callable[..., Any], client: Any, context: Any) -> dict[str, Any]:
        wanted = inspect.signature(fn).parameters
        kwargs = dict(self.op_kwargs)
        providers: dict[str, Callable[[], Any]] = {
            "client": lambda: client,
            "lake": self._lake,
            "dt": lambda: run_day(context, days_before_logical_date=self.days_before_logical_date),
            "run_id": lambda: context["run_id"],
            "try_number": lambda: context["ti"].try_number,
            "platform": platform,
        }
        for name in INJECTABLE:
            if name in wanted and name not in kwargs:
                kwargs[name] = providers[name]()
        settings = kwargs.get("platform") or (platform() if set(wanted) & set(INJECTED) else None)
        for name, value in (settings.injectable() if settings else {}).items():
            if name in wanted and name not in kwargs:
                kwargs[name] = value
        for name, conn_id in self.secret_kwargs.items():
            kwargs[name] = _secret(conn_id, name)
        return kwargs

    @staticmethod
    def _lake() -> Any:
        from mlscale.airflow.hooks.lake_hook import LakeHook

        return LakeHook().get_lake()

    def _log_progress(self, client: Any, stop: threading.Event) -> None:
        while not stop.wait(self.progress_interval_s):
            states = Counter(state.status for state in list(client.futures.values()))
            if states:
                self.log.info("Dask progress: %s", ", ".join(f"{n} {s}" for s, n in sorted(states.items())))

    def on_kill(self) -> None:
        client = self._client
        if client is None:
            return
        from distributed import Future

        keys = list(client.futures)
        self.log.warning("task killed: cancelling %d Dask futures", len(keys))
        if keys:
            client.cancel([Future(key, client) for key in keys], force=True, reason="airflow task killed")


class MissingSecret(LookupError, NotRetryable):
    """A connection that holds a secret a task needs is not defined (no retry can bring it back)."""


def _secret(conn_id: str, name: str) -> str | None:
    try:
        return DaskHook.get_connection(conn_id).password
    except Exception as exc:  # AirflowNotFoundException, or a secrets backend that cannot answer
        raise MissingSecret(
            f"the connection {conn_id!r} (the task's {name}) is not defined ({type(exc).__name__}: {exc}). Restore it "
            "from your secrets backend, or for a local project run `mlscale apply-settings airflow_settings.yaml`. "
            "A PII key must be the one earlier days were written with: a different key changes every token, so "
            "joins with those days break") from exc
