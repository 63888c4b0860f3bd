"""Paged listings of a lake (local directories or S3), with request counters.

The lifecycle plans over the whole lake, so it never holds a full listing: :meth:`LakeLister.iter_objects`
yields object metadata (key, size, mtime, storage class) page by page (S3 ``list_objects_v2`` pages of
1000 keys; local ``scandir`` one directory at a time), in key order, so every directory's objects come
contiguously. Object bodies are read only for manifests and markers. Every request is counted in
:attr:`LakeLister.counters` (``list_requests``, ``get_requests``, ``delete_requests``, ``objects_listed``).
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from mlscale.lake import Lake, S3Options

logger = logging.getLogger(__name__)
PAGE_SIZE = 1000


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    key: str              # relative to the lake root
    size: int
    mtime: float | None   # seconds since the epoch (S3: LastModified)
    storage_class: str = ""  # S3 storage class; "" on a local lake


def aws_client(service: str, options: S3Options | None) -> Any:
    """A boto3 client for ``service`` configured like the lake (endpoint, credentials, region)."""
    import boto3
    from botocore.config import Config

    options = options or S3Options()
    return boto3.client(
        service, endpoint_url=options.endpoint_url or None, region_name=options.region or "us-east-1",
        aws_access_key_id=options.access_key or None, aws_secret_access_key=options.secret_key or None,
        aws_session_token=options.session_token or None,
        config=Config(retries={"max_attempts": 5, "mode": "standard"}, connect_timeout=10, read_timeout=60,
                      max_pool_connections=32),
    )


class LakeLister:
    """Listings, small reads and batch deletes of one lake, counted."""

    def __init__(self, lake: Lake, *, s3: Any = None, page_size: int = PAGE_SIZE, workers: int = 16) -> None:
        self.lake = lake
        self.page_size = page_size
        self.workers = workers
        self.counters: Counter[str] = Counter()
        parsed = urlparse(lake.root)
        self.is_s3 = parsed.scheme == "s3"
        self.bucket = parsed.netloc
        prefix = parsed.path.strip("/")
        self.base = f"{prefix}/" if prefix else ""
        self._s3 = s3

    @property
    def s3(self) -> Any:
        if self._s3 is None and self.is_s3:
            self._s3 = aws_client("s3", self.lake.s3)
        return self._s3

    def s3_key(self, key: str) -> str:
        return f"{self.base}{key}"

    # -- listing ------------------------------------------------------------------------------
    def children(self, prefix: str) -> list[str]:
        """Names of the immediate sub-directories of ``prefix`` (one delimiter listing), sorted."""
        prefix = prefix.strip("/")
        if self.is_s3:
            names: set[str] = set()
            full = self.s3_key(f"{prefix}/" if prefix else "")
            for page in self.s3.get_paginator("list_objects_v2").paginate(
                    Bucket=self.bucket, Prefix=full, Delimiter="/", PaginationConfig={"PageSize": self.page_size}):
                self.counters["list_requests"] += 1
                names.update(p["Prefix"][len(full):].rstrip("/") for p in page.get("CommonPrefixes", []))
            return sorted(names)
        path = self.lake.path(prefix)
        self.counters["list_requests"] += 1
        try:
            with os.scandir(path) as it:
                return sorted(e.name for e in it if e.is_dir())
        except (FileNotFoundError, NotADirectoryError):
            return []

    def iter_objects(self, prefix: str) -> Iterator[ObjectInfo]:
        """Every object below ``prefix`` in key order, one page at a time (no full listing in memory)."""
        prefix = prefix.strip("/")
        if self.is_s3:
            full = self.s3_key(f"{prefix}/" if prefix else "")
            cut = len(self.base)
            for page in self.s3.get_paginator("list_objects_v2").paginate(
                    Bucket=self.bucket, Prefix=full, PaginationConfig={"PageSize": self.page_size}):
                self.counters["list_requests"] += 1
                for obj in page.get("Contents", []):
                    self.counters["objects_listed"] += 1
                    yield ObjectInfo(obj["Key"][cut:], obj["Size"], obj["LastModified"].timestamp(),
                                     obj.get("StorageClass", "STANDARD"))
            return
        root = self.lake.path("")
        yield from self._walk(self.lake.path(prefix), len(root) + 1)

    def _walk(self, path: str, cut: int) -> Iterator[ObjectInfo]:
        self.counters["list_requests"] += 1
        try:
            with os.scandir(path) as it:
                entries = sorted(it, key=lambda e: e.name)
        except (FileNotFoundError, NotADirectoryError):
            return
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                yield from self._walk(entry.path, cut)
            elif entry.is_file(follow_symlinks=False):
                st = entry.stat(follow_symlinks=False)
                self.counters["objects_listed"] += 1
                yield ObjectInfo(entry.path[cut:].replace(os.sep, "/"), st.st_size, st.st_mtime)

    # -- reads --------------------------------------------------------------------------------
    def read_bytes(self, key: str) -> bytes | None:
        """The object's body, or None when it does not exist (one GET)."""
        self.counters["get_requests"] += 1
        return self._get(key)

    def _get(self, key: str) -> bytes | None:
        if self.is_s3:
            try:
                return self.s3.get_object(Bucket=self.bucket, Key=self.s3_key(key))["Body"].read()
            except self.s3.exceptions.NoSuchKey:
                return None
        try:
            return self.lake.read_bytes(key)
        except FileNotFoundError:
            return None

    def read_many(self, keys: Iterable[str]) -> dict[str, bytes | None]:
        """Bodies of small objects (manifests, markers), fetched concurrently on S3."""
        keys = list(keys)
        self.counters["get_requests"] += len(keys)  # counted here: Counter updates are not thread-safe
        if self.is_s3 and len(keys) > 1:
            with ThreadPoolExecutor(self.workers) as pool:
                return dict(zip(keys, pool.map(self._get, keys), strict=True))
        return {k: self._get(k) for k in keys}

    # -- deletes ------------------------------------------------------------------------------
    def delete_keys(self, keys: Iterable[str]) -> int:
        """Delete objects (S3: ``delete_objects`` batches of 1000). Missing objects are not an error."""
        keys = list(keys)
        if not self.is_s3:
            for key in keys:
                self.lake.delete(key)
            self.counters["delete_requests"] += len(keys)
            return len(keys)
        for start in range(0, len(keys), 1000):
            batch = keys[start:start + 1000]
            self.counters["delete_requests"] += 1
            out = self.s3.delete_objects(Bucket=self.bucket, Delete={
                "Objects": [{"Key": self.s3_key(k)} for k in batch], "Quiet": True})
            errors = out.get("Errors", [])
            if errors:
                first = errors[0]
                raise OSError(f"s3://{self.bucket}: {len(errors)} of {len(batch)} deletes failed, e.g. "
                              f"{first.get('Key')}: {first.get('Code')} {first.get('Message')}")
        return len(keys)
