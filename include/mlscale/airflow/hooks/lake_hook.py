"""LakeHook: the lake at the platform's root (Variable ``mlscale_lake_root``), S3 access from ``aws_default``."""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseHook

from mlscale.airflow.aws import AWS_CONN_ID, s3_options
from mlscale.lake import Lake
from mlscale.settings import resolve_root


class LakeHook(BaseHook):
    """Build a :class:`~mlscale.lake.Lake` from Airflow configuration.

    The root is the platform's ``lake_root`` (:func:`mlscale.airflow.settings.platform`: the Variable
    ``mlscale_lake_root``, ``data/lake`` in the project by default) unless ``root`` is given. For ``s3://``
    roots the ``aws_default`` connection gives credentials, ``extra.endpoint_url`` (MinIO) and
    ``extra.region_name`` (:func:`mlscale.airflow.aws.s3_options`).
    """

    conn_name_attr = "aws_conn_id"
    default_conn_name = AWS_CONN_ID
    conn_type = "aws"
    hook_name = "mlscale lake"

    def __init__(self, aws_conn_id: str = default_conn_name, root: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.aws_conn_id = aws_conn_id
        self.root = root

    def get_root(self) -> str:
        if self.root:
            return resolve_root(self.root)
        from mlscale.airflow.settings import platform

        return platform().lake_root

    def get_lake(self) -> Lake:
        root = self.get_root()
        s3 = s3_options(self.aws_conn_id) if root.startswith("s3://") else None
        self.log.info("lake root: %s", root)
        return Lake(root, s3)
