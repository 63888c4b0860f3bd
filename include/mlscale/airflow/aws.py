"""The one reader of the AWS connection: ``aws_default`` (or another id) as :class:`~mlscale.lake.S3Options`.

Fields come from the Amazon provider's own parsing of the connection (``AwsConnectionWrapper``: login and
password or ``extra.aws_access_key_id``/``aws_secret_access_key``, ``extra.aws_session_token``,
``extra.endpoint_url``, ``extra.region_name``, and a per-service endpoint in
``extra.service_config.<service>.endpoint_url``), so a connection that works for the provider's own hooks
works here. Inside a task the connection is read through the task SDK; in the API server and on the
command line through Airflow's secrets backends.
"""

from __future__ import annotations

import logging
from typing import Any

from mlscale.lake import S3Options

logger = logging.getLogger(__name__)

AWS_CONN_ID = "aws_default"


def aws_connection(conn_id: str) -> Any | None:
    """The connection, or None when it is not defined (boto3's default credential chain then applies).

    In a task through the task SDK; elsewhere (API server, command line) through the secrets backends.
    """
    try:
        from airflow.sdk import BaseHook

        return BaseHook.get_connection(conn_id)
    except Exception as exc:  # noqa: BLE001 - not in a task, or not defined: ask the backends directly
        in_task = exc
    try:
        from airflow.models.connection import Connection

        return Connection.get_connection_from_secrets(conn_id)
    except Exception:  # noqa: BLE001 - an undefined connection is allowed: the credential chain applies
        logger.warning("connection %s is not defined (%s); using the default AWS credential chain", conn_id, in_task)
        return None


def s3_options(conn_id: str = AWS_CONN_ID, *, service: str = "s3") -> S3Options:
    """Credentials, endpoint and region for ``service`` (``s3``, ``ec2``) from connection ``conn_id``."""
    from airflow.providers.amazon.aws.utils.connection_wrapper import AwsConnectionWrapper

    conn = aws_connection(conn_id)
    if conn is None:
        return S3Options()
    wrapper = AwsConnectionWrapper(conn=conn)
    extra = conn.extra_dejson
    endpoint = (wrapper.service_config.get(service) or {}).get("endpoint_url") if wrapper.service_config else None
    if service == "s3":
        endpoint = endpoint or wrapper.endpoint_url
    else:
        endpoint = endpoint or extra.get(f"{service}_endpoint_url", "")
    return S3Options(endpoint_url=endpoint or "", access_key=wrapper.aws_access_key_id or "",
                     secret_key=wrapper.aws_secret_access_key or "", session_token=wrapper.aws_session_token or "",
                     region=wrapper.region_name or "us-east-1")
