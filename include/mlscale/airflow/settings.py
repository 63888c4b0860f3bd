"""The :class:`~mlscale.settings.Platform` of this deployment, built from Airflow Variables.

One builder for tasks, the API server and the command line: each Variable is read through the task SDK
inside a task and through Airflow's secrets backends elsewhere (``AIRFLOW_VAR_<NAME>`` environment variables
win either way). The configuration folder, when the Variable ``mlscale_config_dir`` names one, is exported
as ``MLSCALE_CONFIG_DIR`` so the library's loaders find it (:func:`mlscale.layout.config_root`).
"""

from __future__ import annotations

import os

from mlscale.layout import CONFIG_DIR_ENV
from mlscale.settings import Platform


def _variable(name: str) -> str | None:
    try:
        from airflow.sdk import Variable

        return Variable.get(name, default=None)
    except Exception:  # noqa: BLE001 - not in a task: read the secrets backends (env, then the metadata DB)
        pass
    try:
        from airflow.models.variable import Variable as StoredVariable

        return StoredVariable.get(name, default_var=None)
    except Exception:  # noqa: BLE001 - no metadata DB reachable (a bare command line): the environment only
        return os.environ.get(f"AIRFLOW_VAR_{name.upper()}")


def platform() -> Platform:
    """The platform settings, read now (Variables may change between runs: nothing is cached)."""
    settings = Platform.from_lookup(_variable)
    if settings.config_dir:
        os.environ[CONFIG_DIR_ENV] = settings.config_dir
    return settings
