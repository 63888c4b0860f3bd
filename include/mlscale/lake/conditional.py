"""Create-only writes: the primitive that serialises commits of one partition.

A commit writes version ``n + 1`` of a partition's manifest to ``_manifests/<n + 1>.json`` with a write that
succeeds only if that object does not exist yet: on S3 ``PutObject`` with ``If-None-Match: *`` (a second writer
gets ``412 Precondition Failed``); on a local lake a temporary file hard-linked to the final name (``link``
fails when the name exists, atomically, on one filesystem). Of two writers that read version ``n``, exactly one
creates ``n + 1``; the other learns it lost the race (see :class:`mlscale.lake.lake.CommitConflict`).
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Any

from mlscale.lake.storage import S3Options, is_local

# S3 answers a lost create-only race with 412, or 409 while a concurrent conditional write is still in flight
_LOST_RACE = {"PreconditionFailed", "ConditionalRequestConflict", "412", "409"}


def create_exclusive(fs: Any, path: str, data: bytes, s3: S3Options | None) -> bool:
    """Write ``data`` at ``path`` (a filesystem path of the lake) only if nothing is there; False if something is."""
    if is_local(fs):
        return _create_local(path, data)
    return _create_s3(path, data, s3 or S3Options())


def _create_local(path: str, data: bytes) -> bool:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.tmp-{os.getpid()}-{os.urandom(4).hex()}"
    with open(tmp, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    try:
        os.link(tmp, path)
        return True
    except FileExistsError:
        return False
    finally:
        os.unlink(tmp)


@lru_cache(maxsize=8)
def s3_client(s3: S3Options) -> Any:
    """A boto3 S3 client configured like the lake's filesystem (endpoint, credentials, region)."""
    import boto3

    kwargs: dict[str, Any] = {"region_name": s3.region or "us-east-1"}
    if s3.endpoint_url:
        kwargs["endpoint_url"] = s3.endpoint_url
    if s3.access_key:
        kwargs.update(aws_access_key_id=s3.access_key, aws_secret_access_key=s3.secret_key,
                      aws_session_token=s3.session_token or None)
    return boto3.client("s3", **kwargs)


def _create_s3(path: str, data: bytes, s3: S3Options) -> bool:
    from botocore.exceptions import ClientError

    bucket, _, key = path.partition("/")
    try:
        s3_client(s3).put_object(Bucket=bucket, Key=key, Body=data, IfNoneMatch="*")
        return True
    except ClientError as exc:
        error = exc.response.get("Error", {})
        status = str(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))
        if error.get("Code") in _LOST_RACE or status in _LOST_RACE:
            return False
        raise
