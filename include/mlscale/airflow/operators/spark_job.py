"""SparkJobOperator: spark-submit an application through the Spark provider's ``SparkSubmitHook``.

It does what the provider's ``SparkSubmitOperator`` does for a Python application, but imports the
provider only when the task runs: the operator module pulls in OpenLineage's listener at import time,
which would add about 0.7 s to every parse of the DAG file that uses it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from airflow.sdk import BaseOperator


class SparkJobOperator(BaseOperator):
    """Submit ``application`` with ``application_args`` and Spark ``conf`` on the ``conn_id`` cluster."""

    template_fields = ("application", "application_args", "conf", "env_vars")
    ui_color = "#fff2e5"

    def __init__(self, *, application: str, application_args: Sequence[str] = (), conf: Mapping[str, Any] | str | None = None,
                 conn_id: str = "spark_default", env_vars: Mapping[str, str] | None = None, name: str = "mlscale",
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.application = application
        self.application_args = application_args
        self.conf = conf
        self.conn_id = conn_id
        self.env_vars = env_vars
        self.name = name
        self._hook: Any = None

    def execute(self, context: Any) -> None:
        from airflow.providers.apache.spark.hooks.spark_submit import SparkSubmitHook

        if isinstance(self.conf, str):
            raise ValueError(f"conf must render to a mapping, got the string {self.conf!r} "
                             "(the DAG needs render_template_as_native_obj=True)")
        self._hook = SparkSubmitHook(conf=dict(self.conf or {}), conn_id=self.conn_id, name=self.name,
                                     application_args=[str(a) for a in self.application_args],
                                     env_vars=dict(self.env_vars or {}))
        self.log.info("spark-submit %s %s with conf %s", self.application, list(self.application_args), self.conf)
        self._hook.submit(self.application)

    def on_kill(self) -> None:
        if self._hook is not None:
            self._hook.on_kill()
