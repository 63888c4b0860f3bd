"""Shared fixtures: lakes on the local filesystem and on an S3 API served by moto over HTTP."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator

import pytest
from mlscale.lake import Lake, S3Options


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Options]:
    """moto's S3 server on loopback (a real HTTP endpoint, as MinIO would be)."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield S3Options(endpoint_url=f"http://127.0.0.1:{port}", access_key="testing", secret_key="testing")
    server.stop()


@pytest.fixture
def s3_lake(s3_server: S3Options) -> Lake:
    import boto3

    bucket = f"lake-{uuid.uuid4().hex[:10]}"
    boto3.client("s3", endpoint_url=s3_server.endpoint_url, aws_access_key_id="testing",
                 aws_secret_access_key="testing", region_name="us-east-1").create_bucket(Bucket=bucket)
    return Lake(f"s3://{bucket}/lake", s3_server)


@pytest.fixture
def local_lake(tmp_path) -> Lake:
    return Lake(f"file://{tmp_path}/lake")


@pytest.fixture(params=["local", "s3"])
def lake(request) -> Lake:
    """The same tests run against both storage backends."""
    return request.getfixturevalue(f"{request.param}_lake")
