"""Filesystems behind a lake root URI: local paths and S3-compatible object stores."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from urllib.parse import urlparse

import pyarrow.fs as pafs

from mlscale.errors import NotRetryable

logger = logging.getLogger(__name__)


class LakeConfigError(ValueError, NotRetryable):
    """A lake root URI or its storage options cannot be used."""


@dataclass(frozen=True)
class S3Options:
    """How to reach an S3-compatible store (AWS, MinIO, moto).

    ``endpoint_url`` is empty for AWS itself; for MinIO it is e.g. ``http://minio:9000``.
    Credentials left empty fall back to the standard AWS chain (env, profile, instance role).
    """

    endpoint_url: str = ""
    access_key: str = ""
    secret_key: str = ""
    session_token: str = ""
    region: str = "us-east-1"

    def __repr__(self) -> str:  # never print secrets in logs
        return f"S3Options(endpoint_url={self.endpoint_url!r}, region={self.region!r})"


def open_filesystem(root_uri: str, s3: S3Options | None = None) -> tuple[pafs.FileSystem, str]:
    """Return the pyarrow filesystem for ``root_uri`` and the root's path inside it.

    ``file:///abs/path`` and plain paths give a local filesystem; ``s3://bucket/prefix`` gives an
    S3 filesystem configured from ``s3`` (endpoint, credentials, region).
    """
    parsed = urlparse(root_uri)
    if parsed.scheme in ("", "file"):
        path = parsed.path if parsed.scheme == "file" else root_uri
        if not path:
            raise LakeConfigError(f"lake root {root_uri!r} has no path")
        return pafs.LocalFileSystem(), os.path.abspath(path).rstrip("/")
    if parsed.scheme == "s3":
        if not parsed.netloc:
            raise LakeConfigError(f"lake root {root_uri!r} names no bucket (expected s3://bucket/prefix)")
        options = s3 or S3Options()
        kwargs: dict[str, object] = {"region": options.region or "us-east-1"}
        if options.access_key:
            kwargs["access_key"] = options.access_key
            kwargs["secret_key"] = options.secret_key
            if options.session_token:
                kwargs["session_token"] = options.session_token
        if options.endpoint_url:
            endpoint = urlparse(options.endpoint_url)
            kwargs["endpoint_override"] = endpoint.netloc or endpoint.path
            kwargs["scheme"] = endpoint.scheme or "https"
        fs = pafs.S3FileSystem(**kwargs)  # type: ignore[arg-type]
        return fs, f"{parsed.netloc}/{parsed.path.strip('/')}".rstrip("/")
    raise LakeConfigError(f"lake root {root_uri!r}: unsupported scheme {parsed.scheme!r} (use file:// or s3://)")


def is_local(fs: pafs.FileSystem) -> bool:
    return isinstance(fs, pafs.LocalFileSystem)
