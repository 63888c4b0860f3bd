"""LakeHook: the lake root from the Airflow Variable ``mlscale_lake_root``, S3 access from ``aws_default``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from airflow.sdk import BaseHook, Variable

from mlscale.lake import Lake, S3Options

LAKE_ROOT_VARIABLE = "mlscale_lake_root"
PROJECT_ROOT = Path(os.environ.get("MLSCALE_HOME") or Path(__file__).resolve().parents[3])
DEFAULT_LAKE_ROOT = "data/lake"


def resolve_root(root: str) -> str:
    """Relative local roots are taken from the project directory, so every process agrees."""
    if "://" in root or os.path.isabs(root):
        return root
    return str(PROJECT_ROOT / root)


class LakeHook(BaseHook):
    """Build a :class:`~mlscale.lake.Lake` from Airflow configuration.

    The root is the Variable ``mlscale_lake_root`` (``AIRFLOW_VAR_MLSCALE_LAKE_ROOT`` overrides it),
    ``data/lake`` in the project by default. For ``s3://`` roots the ``aws_default`` connection gives
    credentials and ``extra.endpoint_url`` (MinIO) and ``extra.region_name``.
    """

    conn_name_attr = "aws_conn_id"
    default_conn_name = "aws_default"
    conn_type = "aws"
    hook_name = "mlscale lake"

    def __init__(self, aws_conn_id: str = default_conn_name, root: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.aws_conn_id = aws_conn_id
        self.root = root

    def get_root(self) -> str:
        return resolve_root(self.root or Variable.get(LAKE_ROOT_VARIABLE, default=DEFAULT_LAKE_ROOT))

    def get_lake(self) -> Lake:
        root = self.get_root()
        s3 = None
        if root.startswith("s3://"):
            conn = self.get_connection(self.aws_conn_id)
            extra = conn.extra_dejson
            s3 = S3Options(endpoint_url=extra.get("endpoint_url", ""), access_key=conn.login or "",
                           secret_key=conn.password or "", session_token=extra.get("aws_session_token", ""),
                           region=extra.get("region_name", "us-east-1"))
        self.log.info("lake root: %s", root)
        return Lake(root, s3)
