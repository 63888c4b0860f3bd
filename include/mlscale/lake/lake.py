"""The lake: one root URI, day partitions, and the manifest commit protocol.

Every partition write follows one protocol. Data files get names unique to the attempt
(``part-<attempt>-<n>.parquet``); the partition manifest ``_manifest.json`` is written last and is the
commit point. Readers read manifests, never globs, and pin the manifest they started with
(:meth:`Lake.dataset` lists its files once), so a crash before the manifest leaves readers on the previous
version and the crashed attempt's files become orphans (see :meth:`Lake.orphans`). Files listed by the
previous manifest and not by the new one are *superseded*: they stay, recorded with the time of the commit in
``<partition>/_superseded/<attempt>.json``, so a reader still on the previous version reads it whole; lifecycle
removes them once the orphan grace period has passed since that time (see :mod:`mlscale.lifecycle.plan`).

A manifest entry may also name a file under another root of the lake (a path starting with ``/``,
relative to the lake root): :meth:`Lake.move_partition` moves a partition's files to the cold tier
(``cold/<zone>/<dataset>/dt=…/``) and commits a manifest pointing there, so readers keep finding them.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import io
import json
import logging
import posixpath
import random
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.dataset as pds
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from mlscale.errors import NotRetryable
from mlscale.lake.conditional import create_exclusive
from mlscale.lake.manifest import (
    MANIFEST_NAME,
    VERSIONS_DIR,
    FileEntry,
    Manifest,
    ManifestError,
    entry_key,
    schema_fingerprint,
    version_key,
)
from mlscale.lake.partition import PartitionRef, check_name, parse_day
from mlscale.lake.storage import S3Options, is_local, open_filesystem

logger = logging.getLogger(__name__)
COLD_ROOT = "cold"
SUPERSEDED_DIR = "_superseded"  # per partition: which files a commit superseded, and when


class PartitionNotFound(LookupError, NotRetryable):
    """No committed manifest exists for a partition."""


class CommitError(RuntimeError):
    """A commit was refused because the files it lists are not all present."""


class CommitConflict(CommitError):
    """Another writer committed the partition between this writer's read of it and its own commit."""


COMMIT_RETRIES = 8          # a writer that lost a race re-reads the partition and commits again, this many times
STALE_VERSION_S = 600.0     # a version nobody pointed readers to for this long: its writer died; roll it forward


def new_attempt_id() -> str:
    """An id unique to one write attempt; it names the attempt's data files."""
    return uuid.uuid4().hex[:12]


@dataclass(frozen=True)
class StoredFile:
    key: str
    size: int
    mtime: float | None


class Lake:
    """A lake rooted at ``root`` (``file://…``, a local path, or ``s3://bucket/prefix``).

    Picklable: Dask workers receive the root and options and open their own filesystem.
    """

    def __init__(self, root: str, s3: S3Options | None = None) -> None:
        self.root = root.rstrip("/")
        self.s3 = s3
        self._fs: pafs.FileSystem | None = None
        self._base = ""

    def __getstate__(self) -> dict[str, Any]:
        return {"root": self.root, "s3": self.s3}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["root"], state["s3"])  # type: ignore[misc]

    def __repr__(self) -> str:
        return f"Lake({self.root!r})"

    @property
    def fs(self) -> pafs.FileSystem:
        if self._fs is None:
            self._fs, self._base = open_filesystem(self.root, self.s3)
        return self._fs

    def path(self, key: str) -> str:
        """The filesystem path of ``key`` (relative to the root)."""
        self.fs  # noqa: B018 - resolves the base path
        return posixpath.join(self._base, key.strip("/")) if key else self._base

    def uri(self, key: str) -> str:
        return f"{self.root}/{key.strip('/')}"

    # -- plain objects ---------------------------------------------------------------------------
    def write_bytes(self, key: str, data: bytes) -> None:
        """Write one object. Local writes go through a temporary name and a rename (atomic)."""
        path = self.path(key)
        if is_local(self.fs):
            self.fs.create_dir(posixpath.dirname(path), recursive=True)
            tmp = f"{path}.tmp-{new_attempt_id()}"
            with self.fs.open_output_stream(tmp, compression=None) as out:
                out.write(data)
            self.fs.move(tmp, path)
        else:  # an object PUT is atomic
            with self.fs.open_output_stream(path, compression=None) as out:
                out.write(data)

    def read_bytes(self, key: str) -> bytes:
        with self.fs.open_input_stream(self.path(key), compression=None) as src:
            return src.read()

    def exists(self, key: str) -> bool:
        return self.fs.get_file_info(self.path(key)).type != pafs.FileType.NotFound

    def delete(self, key: str) -> None:
        try:
            self.fs.delete_file(self.path(key))
        except FileNotFoundError:
            pass

    def delete_tree(self, prefix: str) -> int:
        """Delete every file below ``prefix`` (and, locally, the emptied directories)."""
        files = self.list_files(prefix)
        for stored in files:
            self.delete(stored.key)
        if is_local(self.fs):
            try:
                self.fs.delete_dir(self.path(prefix))
            except (FileNotFoundError, OSError):
                pass
        return len(files)

    def list_files(self, prefix: str) -> list[StoredFile]:
        """Every file below ``prefix`` (recursive), sorted by key; empty if the prefix is absent."""
        selector = pafs.FileSelector(self.path(prefix), recursive=True, allow_not_found=True)
        base = self.path("") + "/"
        found = [
            StoredFile(
                key=info.path[len(base):] if info.path.startswith(base) else info.path,
                size=info.size or 0,
                mtime=info.mtime.timestamp() if info.mtime else None,
            )
            for info in self.fs.get_file_info(selector)
            if info.type == pafs.FileType.File
        ]
        return sorted(found, key=lambda f: f.key)

    def write_json(self, key: str, doc: Any) -> None:
        self.write_bytes(key, json.dumps(doc, indent=1, sort_keys=True, default=str).encode())

    def read_json(self, key: str) -> Any:
        return json.loads(self.read_bytes(key))

    # -- partitions: write -----------------------------------------------------------------------
    def write_table(self, ref: PartitionRef, table: pa.Table, *, attempt: str, seq: int,
                    subdir: str = "") -> FileEntry:
        """Write one data file of an attempt (not visible to readers until :meth:`commit`)."""
        sink = io.BytesIO()
        pq.write_table(table, sink, compression="zstd")
        data = sink.getvalue()
        rel = self._data_file(attempt, seq, subdir)
        self.write_bytes(f"{ref.key}/{rel}", data)
        return FileEntry(path=rel, rows=table.num_rows, bytes=len(data), sha256=hashlib.sha256(data).hexdigest())

    @contextmanager
    def parquet_writer(self, ref: PartitionRef, schema: pa.Schema, *, attempt: str, seq: int,
                       subdir: str = "") -> Iterator[StreamingFile]:
        """Stream tables into one data file of an attempt; memory stays at one table, not the file.

        ``with lake.parquet_writer(...) as out: out.write(t1); out.write(t2)`` then ``out.entry`` holds the
        file's manifest entry (rows, bytes, sha256 computed while writing).
        """
        rel = self._data_file(attempt, seq, subdir)
        path = self.path(f"{ref.key}/{rel}")
        target = path
        if is_local(self.fs):
            self.fs.create_dir(posixpath.dirname(path), recursive=True)
            target = f"{path}.tmp-{new_attempt_id()}"
        out = StreamingFile(self.fs.open_output_stream(target, compression=None), schema)
        try:
            yield out
            out.close()
        except BaseException:
            out.abort()
            if target != path:
                self.delete(target[len(self.path("")) + 1:])
            raise
        if target != path:
            self.fs.move(target, path)
        out.entry = FileEntry(path=rel, rows=out.rows, bytes=out.bytes, sha256=out.sha256.hexdigest())

    @staticmethod
    def _data_file(attempt: str, seq: int, subdir: str) -> str:
        for part in filter(None, subdir.split("/")):
            key, _, value = part.partition("=")
            check_name("sub-partition key", key)
            check_name(f"value of {key}", value)
        return posixpath.join(subdir, f"part-{attempt}-{seq:05d}.parquet")

    def commit(self, ref: PartitionRef, files: Iterable[FileEntry], *, schema: pa.Schema, run_id: str,
               attempt: str, inputs: Iterable[str] = (), extra: dict[str, Any] | None = None,
               expected_version: int | None = None) -> Manifest:
        """Make ``files`` the partition's content; the manifest write is the commit point.

        Idempotent: committing the same content again replaces the partition exactly. Files of the previous
        version are recorded as superseded (see :meth:`publish`). An empty ``files`` commits one empty file with
        ``schema``, so an empty day reads as an empty table. A whole-partition rewrite that loses a race to
        another writer commits again over the new state; a writer whose content was derived from a version it
        read (``expected_version``: compaction) gets :class:`CommitConflict` instead.
        """
        files = tuple(sorted(files, key=lambda f: f.path))
        if not files:  # an empty partition still has a schema: readers get an empty table, not an error
            files = (self.write_table(ref, schema.empty_table(), attempt=attempt, seq=0),)
        manifest = Manifest(
            partition=ref.key, files=files, schema_fingerprint=schema_fingerprint(schema),
            schema=schema.remove_metadata().to_string(), run_id=run_id, attempt=attempt,
            inputs=tuple(inputs), extra=dict(extra or {}),
        )
        for tries in range(1, COMMIT_RETRIES + 1):
            try:
                manifest = self.publish(ref, manifest, expected_version=expected_version)
                break
            except CommitConflict as exc:  # a whole-partition rewrite: commit again over the new state
                if tries == COMMIT_RETRIES or expected_version is not None:
                    raise
                logger.warning("%s; retrying from the new state (%d of %d)", exc, tries, COMMIT_RETRIES - 1)
                self._roll_forward(ref)
                time.sleep(min(2.0, 0.05 * 2 ** tries) * (0.5 + random.random()))
        logger.info("committed %s version %d: %d files, %d rows, %d bytes (run %s, attempt %s)",
                    ref.key, manifest.version, len(files), manifest.rows, manifest.bytes, run_id, attempt)
        return manifest

    def publish(self, ref: PartitionRef, manifest: Manifest, *, expected_version: int | None = None) -> Manifest:
        """Commit ``manifest`` as the partition's next version; the files only the previous version listed are
        recorded as superseded (kept for readers of it; lifecycle removes them after the grace period).

        The version is created once (``_manifests/<version>.json``, a create-only write: see
        :mod:`mlscale.lake.conditional`), the superseded files are recorded, then the version becomes what
        readers read (``_manifest.json``). Raises :class:`CommitConflict` when another writer created that
        version first, or when the partition is no longer at ``expected_version``; :class:`CommitError` when a
        listed file is missing. Returns the committed manifest (with its version).
        """
        missing = [f.path for f in manifest.files if not self.exists(self.file_key(ref, f.path))]
        if missing:
            raise CommitError(f"refusing to commit {ref.key}: listed files are missing: {missing[:5]}")
        previous = self._current(ref)
        base = previous.version if previous is not None else 0
        if expected_version is not None and base != expected_version:
            raise CommitConflict(f"{ref.key} is at version {base}, not {expected_version}: another writer committed "
                                 f"it meanwhile (attempt {previous.attempt if previous else '-'})")
        manifest = dataclasses.replace(manifest, version=base + 1)
        data = manifest.to_json()
        if not create_exclusive(self.fs, self.path(version_key(ref.key, manifest.version)), data, self.s3):
            raise CommitConflict(f"{ref.key}: version {manifest.version} was committed by another writer while "
                                 f"attempt {manifest.attempt} (run {manifest.run_id}) was committing")
        self._record_superseded(ref, previous, manifest)  # before readers can switch: never an unrecorded orphan
        self._point_readers(ref, manifest)
        return manifest

    def _current(self, ref: PartitionRef) -> Manifest | None:
        """The committed manifest, for a writer: a pointer caught while another writer replaces it (some S3-API
        stores expose the object mid-upload) is read again before it counts as damaged."""
        for attempt in range(5):
            try:
                return self.manifest(ref)
            except ManifestError:
                if attempt == 4:
                    raise
                time.sleep(0.05 * (attempt + 1))
        return None

    def _record_superseded(self, ref: PartitionRef, previous: Manifest | None, manifest: Manifest) -> None:
        if previous is None:
            return
        kept = set(manifest.file_keys())
        superseded = [old for old in previous.file_keys() if old not in kept]
        if superseded:
            now = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
            self.write_json(f"{ref.key}/{SUPERSEDED_DIR}/{new_attempt_id()}.json",
                            {"superseded_at": now, "by_attempt": manifest.attempt, "version": manifest.version,
                             "files": superseded})

    def _point_readers(self, ref: PartitionRef, manifest: Manifest) -> None:
        """Make ``manifest`` what readers read, then make sure no later version was passed over meanwhile (a writer
        that stalled between its two writes must not move readers back: the newest version wins)."""
        self.write_bytes(f"{ref.key}/{MANIFEST_NAME}", manifest.to_json())
        newest = manifest
        while self.exists(version_key(ref.key, newest.version + 1)):
            key = version_key(ref.key, newest.version + 1)
            newest = Manifest.from_json(self.read_bytes(key), self.uri(key))
        if newest.version != manifest.version:
            logger.warning("%s: version %d was committed while version %d was being published; readers read %d",
                           ref.key, newest.version, manifest.version, newest.version)
            self.write_bytes(f"{ref.key}/{MANIFEST_NAME}", newest.to_json())

    def _roll_forward(self, ref: PartitionRef) -> None:
        """The next version exists but readers were never pointed to it (its writer died in between), and it has
        waited longer than any live writer would: publish it, or, when its files are gone, retire it so that the
        partition can be committed again."""
        current = self._current(ref)
        key = version_key(ref.key, (current.version if current else 0) + 1)
        info = self.fs.get_file_info(self.path(key))
        if info.type == pafs.FileType.NotFound or info.mtime is None:
            return
        if datetime.datetime.now(datetime.UTC).timestamp() - info.mtime.timestamp() < STALE_VERSION_S:
            return
        stranded = Manifest.from_json(self.read_bytes(key), self.uri(key))
        if all(self.exists(k) for k in stranded.file_keys()):
            logger.warning("%s: version %d was created but never published (its writer stopped); publishing it",
                           ref.key, stranded.version)
            self._record_superseded(ref, current, stranded)
            self._point_readers(ref, stranded)
        else:
            logger.warning("%s: version %d was created but never published and its files are gone; retiring it",
                           ref.key, stranded.version)
            self.write_bytes(f"{ref.key}/{VERSIONS_DIR}/retired-{stranded.version:010d}-{new_attempt_id()}.json",
                             stranded.to_json())
            self.delete(key)

    def superseded(self, prefix: str) -> dict[str, str]:
        """Files below ``prefix`` that a later commit superseded and that still exist: key -> when (ISO time)."""
        found: dict[str, str] = {}
        for stored in self.list_files(prefix):
            if f"/{SUPERSEDED_DIR}/" in stored.key and stored.key.endswith(".json"):
                doc = self.read_json(stored.key)
                for key in doc.get("files", []):
                    found.setdefault(key, doc.get("superseded_at", ""))
        return {key: when for key, when in found.items() if self.exists(key)}

    def file_key(self, ref: PartitionRef, path: str) -> str:
        """The lake key of a manifest entry path of ``ref`` (resolves entries under another root)."""
        return entry_key(ref.key, path)

    def move_partition(self, ref: PartitionRef, root: str = COLD_ROOT, *, run_id: str) -> Manifest:
        """Move a committed partition's files below ``root`` (``"cold"``; ``""`` moves them back home).

        The files are copied to ``<root>/<partition key>/<relative path>`` (checksums verified), a manifest
        listing the new locations is committed (the commit point: readers switch atomically and
        :meth:`read_table` keeps working), then the old copies are deleted. Rows, checksums, producing
        run and attempt stay as they were; ``extra["storage_root"]`` records the root. Idempotent: files
        already below ``root`` stay. Raises :class:`CommitError` if the partition changed meanwhile.
        """
        if root:
            check_name("storage root", root)
        before = self.require_manifest(ref)
        entries: list[FileEntry] = []
        copied: list[str] = []
        for entry in before.files:
            rel = self.relative_path(ref, entry.path)
            target_path = f"/{root}/{ref.key}/{rel}" if root else rel
            if target_path == entry.path:
                entries.append(entry)
                continue
            data = self.read_bytes(self.file_key(ref, entry.path))
            if len(data) != entry.bytes or hashlib.sha256(data).hexdigest() != entry.sha256:
                raise ManifestError(f"{self.uri(self.file_key(ref, entry.path))} does not match its manifest "
                                    "entry; not moving it (check the partition with Lake.verify)")
            self.write_bytes(self.file_key(ref, target_path), data)
            copied.append(self.file_key(ref, target_path))
            entries.append(dataclasses.replace(entry, path=target_path))
        if not copied:
            return before
        extra = {k: v for k, v in before.extra.items() if k != "storage_root"}
        if root:
            extra["storage_root"] = root
        moved = dataclasses.replace(before, files=tuple(entries), extra=extra)
        current = self.manifest(ref)
        if current is None or current.to_json() != before.to_json():
            for key in copied:
                self.delete(key)
            raise CommitError(f"{ref.key} changed while its files were moved to {root or 'its own directory'!r}; "
                              "nothing was moved (re-run to move the new version)")
        try:
            moved = self.publish(ref, moved, expected_version=before.version)
        except CommitConflict:
            for key in copied:
                self.delete(key)
            raise
        logger.info("moved %s: %d files to %s", ref.key, len(copied), self.uri(f"{root}/{ref.key}") if root else
                    self.uri(ref.key))
        return moved

    def relative_path(self, ref: PartitionRef, path: str) -> str:
        """An entry path relative to the partition (``region=NL/part-….parquet``), wherever the file lives."""
        if not path.startswith("/"):
            return path
        key = path[1:]
        marker = f"{ref.key}/"
        at = key.find(marker)
        return key[at + len(marker):] if at >= 0 else posixpath.basename(key)

    def _entry_base(self, ref: PartitionRef, path: str) -> str:
        """The directory an entry's Hive sub-partitions (``region=NL/``) are relative to."""
        if not path.startswith("/"):
            return ref.key
        key = path[1:]
        at = key.find(f"{ref.key}/")
        return key[: at + len(ref.key)] if at >= 0 else posixpath.dirname(key)

    @contextmanager
    def writer(self, ref: PartitionRef, *, run_id: str, schema: pa.Schema,
               inputs: Iterable[str] = (), extra: dict[str, Any] | None = None) -> Iterator[PartitionWriter]:
        """Write tables, then commit on a clean exit; on an error nothing is committed."""
        writer = PartitionWriter(self, ref, schema)
        yield writer
        writer.manifest = self.commit(ref, writer.files, schema=schema, run_id=run_id,
                                      attempt=writer.attempt, inputs=inputs, extra=extra)

    def delete_partition(self, ref: PartitionRef) -> int:
        """Remove a partition: the manifest first (readers stop seeing it), then its files and its versions (a
        later commit starts again at version 1). Superseded files stay for lifecycle. Returns the files deleted."""
        manifest = self.manifest(ref)
        if manifest is None:
            return 0
        self.delete(f"{ref.key}/{MANIFEST_NAME}")
        for key in manifest.file_keys():
            self.delete(key)
        self.delete_tree(f"{ref.key}/{VERSIONS_DIR}/")
        return len(manifest.files)

    # -- partitions: read ------------------------------------------------------------------------
    def manifest(self, ref: PartitionRef) -> Manifest | None:
        key = f"{ref.key}/{MANIFEST_NAME}"
        try:
            data = self.read_bytes(key)
        except FileNotFoundError:
            return None
        return Manifest.from_json(data, self.uri(key))

    def require_manifest(self, ref: PartitionRef) -> Manifest:
        manifest = self.manifest(ref)
        if manifest is None:
            raise PartitionNotFound(f"{self.uri(ref.key)} has no committed manifest: has its producer run?")
        return manifest

    def dataset(self, ref: PartitionRef, schema: pa.Schema | None = None) -> pds.Dataset:
        """A pyarrow dataset over exactly the committed files (Hive sub-partitions become columns)."""
        manifest = self.require_manifest(ref)
        by_base: dict[str, list[str]] = {}
        for f in manifest.files:
            by_base.setdefault(self._entry_base(ref, f.path), []).append(self.path(self.file_key(ref, f.path)))
        parts = [pds.dataset(paths, schema=schema, filesystem=self.fs, format="parquet",
                             partitioning="hive", partition_base_dir=self.path(base))
                 for base, paths in by_base.items()]
        if len(parts) == 1:
            return parts[0]
        return pds.dataset(parts, schema=schema)  # files in two roots (e.g. partly moved to cold)

    def read_table(self, ref: PartitionRef, columns: list[str] | None = None,
                   filter: pds.Expression | None = None) -> pa.Table:
        return self.dataset(ref).to_table(columns=columns, filter=filter)

    def verify(self, ref: PartitionRef) -> None:
        """Check every listed file's size and checksum; raise :class:`ManifestError` on a mismatch."""
        for entry in self.require_manifest(ref).files:
            data = self.read_bytes(self.file_key(ref, entry.path))
            if len(data) != entry.bytes or hashlib.sha256(data).hexdigest() != entry.sha256:
                raise ManifestError(f"{self.uri(self.file_key(ref, entry.path))} does not match its manifest entry")

    def partitions(self, zone: str, dataset: str) -> list[PartitionRef]:
        """Committed partitions of a dataset, sorted by day and keys."""
        refs = []
        for stored in self.list_files(f"{zone}/{check_name('dataset', dataset)}"):
            if stored.key.endswith("/" + MANIFEST_NAME):
                refs.append(PartitionRef.from_key(stored.key[: -len(MANIFEST_NAME) - 1]))
        return sorted(refs)

    def partition_days(self, zone: str, dataset: str, first: str, last: str) -> list[PartitionRef]:
        lo, hi = parse_day(first).isoformat(), parse_day(last).isoformat()
        return [r for r in self.partitions(zone, dataset) if lo <= r.dt <= hi]

    def orphans(self, prefix: str) -> list[StoredFile]:
        """Files below ``prefix`` that no manifest lists and no record of superseded files names (crashed attempts,
        leftovers); superseded files are listed by :meth:`superseded`.

        Only directories that belong to a partition are considered: anything under a
        ``dt=`` directory that is neither a manifest nor listed by the manifest governing it. Files
        under ``cold/`` are governed by the manifest of the partition they were moved from.
        """
        listed: set[str] = set()
        candidates: list[StoredFile] = []
        for stored in self.list_files(prefix):
            if stored.key.endswith("/" + MANIFEST_NAME):
                manifest = Manifest.from_json(self.read_bytes(stored.key), self.uri(stored.key))
                listed.update(manifest.file_keys())
            elif f"/{VERSIONS_DIR}/" in stored.key:  # the partition's committed versions
                listed.add(stored.key)
            elif f"/{SUPERSEDED_DIR}/" in stored.key:  # a record of superseded files: accounted for
                listed.add(stored.key)
                listed.update(self.read_json(stored.key).get("files", []))
            elif "/dt=" in f"/{stored.key}":
                candidates.append(stored)
        seen: set[str] = set()
        for cold in (c for c in candidates if c.key.startswith(f"{COLD_ROOT}/") and c.key not in listed):
            for part in _governing_partitions(cold.key[len(COLD_ROOT) + 1:]):
                if part not in seen:
                    seen.add(part)
                    listed.update(self.superseded(f"{part}/{SUPERSEDED_DIR}/"))
                    try:
                        data = self.read_bytes(f"{part}/{MANIFEST_NAME}")
                    except FileNotFoundError:
                        continue
                    listed.update(Manifest.from_json(data, self.uri(part)).file_keys())
        return [c for c in candidates if c.key not in listed]


def _governing_partitions(key: str) -> list[str]:
    """Partition directories that may govern the file ``key``: ``z/d/dt=D`` and each ``k=v`` below it."""
    parts = key.split("/")
    if len(parts) < 4 or not parts[2].startswith("dt="):
        return []
    found = ["/".join(parts[:3])]
    for i in range(3, len(parts) - 1):
        if "=" not in parts[i]:
            break
        found.append("/".join(parts[: i + 1]))
    return found


class _HashingSink(io.RawIOBase):
    """Bytes pass through to the lake's output stream; their count and SHA-256 are kept."""

    def __init__(self, stream: Any) -> None:
        super().__init__()
        self.stream = stream
        self.sha256 = hashlib.sha256()
        self.bytes = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:  # type: ignore[override]
        view = memoryview(data)
        self.sha256.update(view)
        self.stream.write(view)
        self.bytes += view.nbytes
        return view.nbytes


class StreamingFile:
    """A Parquet file written table by table (see :meth:`Lake.parquet_writer`)."""

    def __init__(self, stream: Any, schema: pa.Schema) -> None:
        self.sink = _HashingSink(stream)
        self.rows = 0
        self.entry: FileEntry | None = None
        self._writer: pq.ParquetWriter | None = pq.ParquetWriter(pa.PythonFile(self.sink, mode="w"), schema,
                                                                 compression="zstd")

    def write(self, table: pa.Table) -> None:
        assert self._writer is not None, "file already closed"
        self._writer.write_table(table)
        self.rows += table.num_rows

    @property
    def bytes(self) -> int:
        return self.sink.bytes

    @property
    def sha256(self) -> Any:
        return self.sink.sha256

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
            self.sink.stream.close()

    def abort(self) -> None:
        self._writer = None
        self.sink.stream.close()


class PartitionWriter:
    """Collects the files of one attempt; see :meth:`Lake.writer`."""

    def __init__(self, lake: Lake, ref: PartitionRef, schema: pa.Schema) -> None:
        self.lake, self.ref, self.schema = lake, ref, schema
        self.attempt = new_attempt_id()
        self.files: list[FileEntry] = []
        self.manifest: Manifest | None = None

    def write(self, table: pa.Table, subdir: str = "") -> FileEntry:
        if table.schema.remove_metadata() != self.schema.remove_metadata():
            table = table.cast(self.schema)
        entry = self.lake.write_table(self.ref, table, attempt=self.attempt, seq=len(self.files), subdir=subdir)
        self.files.append(entry)
        return entry

__all__ = ["COLD_ROOT", "Lake", "PartitionWriter", "PartitionNotFound", "CommitError", "StoredFile",
           "new_attempt_id", "ManifestError"]
