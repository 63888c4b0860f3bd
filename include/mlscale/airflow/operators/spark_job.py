"""SparkJobOperator: spark-submit an application through the Spark provider's ``SparkSubmitHook``.

It does what the provider's ``SparkSubmitOperator`` does for a Python application, but imports the
provider only when the task runs: the operator module pulls in OpenLineage's listener at import time,
which would add about 0.7 s to every parse of the DAG file that uses it.
"""

from __future__ import annotations

import shutil
import tempfile
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from airflow.sdk import BaseOperator

from mlscale.airflow.run_context import run_day

#: Spark settings the operator adds for the usage record, unless the task's conf sets them itself
EVENT_LOG_DEFAULTS = {
    "spark.eventLog.compress": "false",                   # JSON lines, read as they are
    "spark.eventLog.rolling.enabled": "false",            # one file per application
    "spark.eventLog.logStageExecutorMetrics": "true",     # the executors' memory peaks per stage ...
    "spark.executor.processTreeMetrics.enabled": "true",  # ... as resident memory of the JVM and its Python workers
    "spark.executor.metrics.pollingInterval": "1s",       # ... sampled each second, not only at heartbeats (10 s)
}


@dataclass(frozen=True)
class _EventLog:
    directory: str      #: spark.eventLog.dir of this try
    tag: str            #: the value of spark.mlscale.usage.tag that marks this try's application
    created: bool       #: a temporary directory of this try (removed after reading)
    since: float        #: submit time (epoch s)


class SparkJobOperator(BaseOperator):
    """Submit ``application`` with ``application_args`` and Spark ``conf`` on the ``conn_id`` cluster.

    Resource use: the job runs with Spark's event log on (``spark.eventLog.enabled``; a fresh temporary
    ``spark.eventLog.dir`` per try unless ``conf`` names one, uncompressed, see :data:`EVENT_LOG_DEFAULTS`; settings
    in ``conf`` are kept). When spark-submit returns — or fails — the log of this try's application is read
    (:mod:`mlscale.usage.spark_events`): CPU seconds, wall time, peak memory per executor, bytes, spill, rows; the
    record (``engine="spark"``), priced with the price table, goes onto the task log as one line and to
    ``_meta/resource_usage/dt=<usage_day>/`` of the project's lake. ``usage_day`` (templated) defaults to the run's
    day (:func:`~mlscale.airflow.run_context.run_day`). Accounting never fails the task: what cannot be recorded is
    a warning. ``conf`` with ``spark.eventLog.enabled=false`` records nothing.
    """

    template_fields = ("application", "application_args", "conf", "env_vars", "usage_day")
    ui_color = "#fff2e5"

    def __init__(self, *, application: str, application_args: Sequence[str] = (), conf: Mapping[str, Any] | str | None = None,
                 conn_id: str = "spark_default", env_vars: Mapping[str, str] | None = None, name: str = "mlscale",
                 usage_day: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.application = application
        self.application_args = application_args
        self.conf = conf
        self.conn_id = conn_id
        self.env_vars = env_vars
        self.name = name
        self.usage_day = usage_day
        self._hook: Any = None

    def execute(self, context: Any) -> None:
        from airflow.providers.apache.spark.hooks.spark_submit import SparkSubmitHook

        if isinstance(self.conf, str):
            raise ValueError(f"conf must render to a mapping, got the string {self.conf!r} "
                             "(the DAG needs render_template_as_native_obj=True)")
        conf = dict(self.conf or {})
        events = self._event_log(conf, context)

        def hook(conf: dict[str, Any]) -> Any:
            return SparkSubmitHook(conf=conf, conn_id=self.conn_id, name=self.name,
                                   application_args=[str(a) for a in self.application_args],
                                   env_vars=dict(self.env_vars or {}))

        self._hook = hook(conf)
        if events is not None and events.created and getattr(self._hook, "_connection", {}).get("deploy_mode") == "cluster":
            self.log.warning("cluster deploy mode: the driver cannot write its event log here; resource use is not "
                             "recorded (name a spark.eventLog.dir this machine can read to record it)")
            shutil.rmtree(events.directory, ignore_errors=True)
            events, self._hook = None, hook(dict(self.conf or {}))
        self.log.info("spark-submit %s %s with conf %s", self.application, list(self.application_args), conf)
        succeeded = False
        try:
            self._hook.submit(self.application)
            succeeded = True
        finally:
            if events is not None:
                self._record_usage(events, context, succeeded)

    def _event_log(self, conf: dict[str, Any], context: Any) -> _EventLog | None:
        """Turn Spark's event log on in ``conf`` (in place) for this try; None where the conf turns it off."""
        if str(conf.get("spark.eventLog.enabled", "true")).strip().lower() != "true":
            self.log.warning("the conf turns Spark's event log off (spark.eventLog.enabled=%s): resource use of this "
                             "task is not recorded", conf["spark.eventLog.enabled"])
            return None
        from mlscale.usage.spark_events import USAGE_TAG_PROPERTY

        created = not conf.get("spark.eventLog.dir")
        directory = tempfile.mkdtemp(prefix="mlscale-spark-events-") if created else str(conf["spark.eventLog.dir"])
        conf["spark.eventLog.enabled"] = "true"
        conf["spark.eventLog.dir"] = Path(directory).as_uri() if created else directory
        for key, value in EVENT_LOG_DEFAULTS.items():
            conf.setdefault(key, value)
        try_number = int(getattr(context.get("ti"), "try_number", 1) or 1)
        tag = f"{self.dag_id}.{self.task_id}.{context['run_id']}.{try_number}.{uuid.uuid4().hex[:8]}"
        conf[USAGE_TAG_PROPERTY] = tag
        return _EventLog(directory=directory, tag=tag, created=created, since=time.time() - 1)

    def _record_usage(self, events: _EventLog, context: Any, succeeded: bool = True) -> None:
        """The resource use of this try's application and its cost: one log line, and ``_meta/resource_usage/dt=D/``
        (never fails the task: usage that cannot be recorded is a warning)."""
        try:
            from mlscale.usage.cost import load_prices, usage_cost
            from mlscale.usage.sampler import write_usage
            from mlscale.usage.spark_events import EventLogError, find_event_logs, parse_event_logs

            logs = find_event_logs(events.directory, tag=events.tag, since=None if events.created else events.since)
            if not logs:
                raise EventLogError(f"no event log of this application in {events.directory}")
            record = parse_event_logs(logs).record(
                dag_id=self.dag_id, task_id=self.task_id, run_id=context["run_id"],
                try_number=int(getattr(context.get("ti"), "try_number", 1) or 1), day=self._day(context))
            record.succeeded = succeeded   # a failed try's cost counts; its times do not size or fit anything
            record.cost = usage_cost(record, load_prices())
            self.log.info("%s%s", record.summary(), "" if succeeded else " (failed try)")
            lake = self._lake()
            self.log.info("resource use recorded: %s", lake.uri(write_usage(lake, record)))
        except Exception as exc:  # noqa: BLE001 - accounting must never fail the work it accounts for
            self.log.warning("resource use not recorded (%s: %s)", type(exc).__name__, exc)
        finally:
            if events.created:
                shutil.rmtree(events.directory, ignore_errors=True)

    def _day(self, context: Any) -> str:
        if self.usage_day:
            return str(self.usage_day)[:10]
        return run_day(context)

    @staticmethod
    def _lake() -> Any:
        from mlscale.airflow.hooks.lake_hook import LakeHook

        return LakeHook().get_lake()

    def on_kill(self) -> None:
        if self._hook is not None:
            self._hook.on_kill()
