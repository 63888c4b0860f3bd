"""The platform's runtime settings, in one frozen object.

:class:`Platform` holds what every pipeline needs to know about the deployment — the lake root, the MLflow
tracking server, the Feast repository root and online store, the code version, the configuration folder —
and nothing else. It is built in one place from a key lookup (Airflow Variables in tasks and the API
server, the environment on the command line: :func:`Platform.from_lookup`) and passed to the library
explicitly; library functions never look settings up themselves.

Variable names (``AIRFLOW_VAR_<NAME>`` or ``MLSCALE_<NAME without mlscale_>`` in the environment):

==============================  ==========================================================================
``mlscale_lake_root``           lake root URI (``data/lake`` in the project by default; ``s3://bucket/prefix``)
``mlscale_mlflow_tracking_uri`` MLflow tracking server (empty: the lake's embedded SQLite registry)
``mlscale_feast_root``          Feast repository root (required when the lake is not local)
``mlscale_feast_online_store``  ``sqlite`` (embedded) or ``redis``
``mlscale_feast_redis``         Redis connection string for the ``redis`` online store
``mlscale_code_version``        the code version recorded on model versions (default: git or package)
``mlscale_config_dir``          the folder with contracts/, models/, policies/, feature_repo/
``mlscale_alert_connections``   Airflow connection ids alerts go to, comma-separated (empty: logged only);
                                an ``smtp`` connection sends e-mail, an ``http`` one posts JSON to a webhook
``mlscale_ui_url``              the Airflow UI's address, for the links in alerts (default: ``[api] base_url``)
==============================  ==========================================================================
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

DEFAULT_LAKE_ROOT = "data/lake"
#: Settings a task callable receives by declaring a parameter of the same name.
INJECTED = ("tracking_uri", "feast_root", "online_store", "redis_connection_string", "code_version")
ONLINE_STORES = ("sqlite", "redis")

#: Platform field -> the Variable it is read from.
VARIABLES = {
    "lake_root": "mlscale_lake_root",
    "tracking_uri": "mlscale_mlflow_tracking_uri",
    "feast_root": "mlscale_feast_root",
    "online_store": "mlscale_feast_online_store",
    "redis_connection_string": "mlscale_feast_redis",
    "code_version": "mlscale_code_version",
    "config_dir": "mlscale_config_dir",
    "alert_connections": "mlscale_alert_connections",
    "ui_url": "mlscale_ui_url",
}


class SettingsError(ValueError):
    """A platform setting has a value that cannot work; the message names the Variable to fix."""


def project_home() -> Path:
    """The folder relative lake roots are taken from: ``$MLSCALE_HOME``, else the source checkout this package
    runs from, else the working directory."""
    if os.environ.get("MLSCALE_HOME"):
        return Path(os.environ["MLSCALE_HOME"])
    checkout = Path(__file__).resolve().parents[2]
    return checkout if (checkout / "include" / "mlscale").is_dir() else Path.cwd()


def resolve_root(root: str) -> str:
    """A relative local root is taken from the project folder, so every process agrees on it."""
    if "://" in root or os.path.isabs(root):
        return root
    return str(project_home() / root)


@dataclass(frozen=True)
class Platform:
    lake_root: str = DEFAULT_LAKE_ROOT
    tracking_uri: str = ""
    feast_root: str = ""
    online_store: str = "sqlite"
    redis_connection_string: str = ""
    code_version: str = ""
    config_dir: str = ""
    alert_connections: str = ""
    ui_url: str = ""

    def __post_init__(self) -> None:
        if self.online_store not in ONLINE_STORES:
            raise SettingsError(f"Variable mlscale_feast_online_store is {self.online_store!r}: use one of "
                                f"{', '.join(ONLINE_STORES)}")
        if self.online_store == "redis" and not self.redis_connection_string:
            raise SettingsError("the Feast online store is redis but Variable mlscale_feast_redis is empty: set it "
                                "to the Redis connection string (host:port)")
        object.__setattr__(self, "lake_root", resolve_root(self.lake_root or DEFAULT_LAKE_ROOT))

    @classmethod
    def from_lookup(cls, get: Callable[[str], str | None]) -> Platform:
        """Read every setting through ``get(variable_name)`` (``None`` or empty: the default)."""
        values = {name: get(variable) for name, variable in VARIABLES.items()}
        return cls(**{k: str(v) for k, v in values.items() if v not in (None, "")})

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Platform:
        """From ``AIRFLOW_VAR_MLSCALE_*`` or ``MLSCALE_*`` environment variables (command line, API server)."""
        env = os.environ if environ is None else environ

        def get(variable: str) -> str | None:
            return env.get(f"AIRFLOW_VAR_{variable.upper()}") or env.get(variable.upper())

        return cls.from_lookup(get)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def injectable(self) -> dict[str, str]:
        """Settings a task callable receives when it declares a parameter of that name."""
        return {name: getattr(self, name) for name in INJECTED}
