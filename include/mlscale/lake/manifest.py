"""The partition manifest: the commit point of every partition write."""

from __future__ import annotations

import builtins
import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

import pyarrow as pa

MANIFEST_NAME = "_manifest.json"
VERSIONS_DIR = "_manifests"  # per partition: every committed manifest, by version (create-only)
MANIFEST_FORMAT = 1


class ManifestError(ValueError):
    """A manifest is unreadable or inconsistent with the files it lists."""


def entry_key(partition_key: str, path: str) -> str:
    """The lake key (relative to the lake root) of a manifest entry of partition ``partition_key``.

    An entry path is relative to the partition directory (``region=NL/part-….parquet``), or, when it
    starts with ``/``, relative to the lake root: a file kept under another root, e.g. the cold tier
    (``/cold/raw/transactions/dt=2026-01-01/region=NL/part-….parquet``, see :meth:`Lake.move_partition`).
    """
    return path[1:] if path.startswith("/") else f"{partition_key}/{path}"


@dataclass(frozen=True)
class FileEntry:
    """One committed data file, its path relative to the partition directory."""

    path: str
    rows: int
    bytes: int
    sha256: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def key_in(self, partition_key: str) -> str:
        """This file's lake key when listed by the manifest of ``partition_key`` (see :func:`entry_key`)."""
        return entry_key(partition_key, self.path)


@dataclass(frozen=True)
class Manifest:
    """What a committed partition holds. Readers read exactly ``files``, nothing else."""

    partition: str
    files: tuple[FileEntry, ...]
    schema_fingerprint: str
    run_id: str
    attempt: str
    schema: str = ""
    inputs: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)
    format: int = MANIFEST_FORMAT
    version: int = 0  # the partition's commit number (1, 2, ...; 0: written before commits were numbered)

    @property
    def rows(self) -> int:
        return sum(f.rows for f in self.files)

    @property
    def bytes(self) -> int:
        return sum(f.bytes for f in self.files)

    def file_keys(self) -> list[str]:
        """Lake keys of every listed file (entries under another root, e.g. ``cold/``, resolved)."""
        return [f.key_in(self.partition) for f in self.files]

    def as_dict(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "partition": self.partition,
            "rows": self.rows,
            "bytes": self.bytes,
            "files": [f.as_dict() for f in self.files],
            "schema_fingerprint": self.schema_fingerprint,
            "schema": self.schema,
            "run_id": self.run_id,
            "attempt": self.attempt,
            "inputs": list(self.inputs),
            "extra": self.extra,
            "version": self.version,
        }

    def to_json(self) -> builtins.bytes:
        return json.dumps(self.as_dict(), indent=1, sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: builtins.bytes, where: str) -> Manifest:
        try:
            doc = json.loads(data)
            return cls(
                partition=doc["partition"],
                files=tuple(FileEntry(**f) for f in doc["files"]),
                schema_fingerprint=doc["schema_fingerprint"],
                schema=doc.get("schema", ""),
                run_id=doc["run_id"],
                attempt=doc["attempt"],
                inputs=tuple(doc.get("inputs", ())),
                extra=doc.get("extra", {}),
                format=doc.get("format", MANIFEST_FORMAT),
                version=int(doc.get("version", 0)),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise ManifestError(
                f"manifest {where} is unreadable ({exc}); restore it from the object store's versions "
                "or re-run the partition's producing task"
            ) from exc


def version_key(partition_key: str, version: int) -> str:
    """The lake key of version ``version`` of a partition's manifest."""
    return f"{partition_key}/{VERSIONS_DIR}/{version:010d}.json"


def schema_fingerprint(schema: pa.Schema) -> str:
    """A stable hash of column names, types and nullability (metadata ignored)."""
    text = "|".join(f"{f.name}:{f.type}:{int(f.nullable)}" for f in schema.remove_metadata())
    return hashlib.sha256(text.encode()).hexdigest()[:16]
