"""The partition manifest: the commit point of every partition write."""

from __future__ import annotations

import builtins
import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

import pyarrow as pa

MANIFEST_NAME = "_manifest.json"
MANIFEST_FORMAT = 1


class ManifestError(ValueError):
    """A manifest is unreadable or inconsistent with the files it lists."""


@dataclass(frozen=True)
class FileEntry:
    """One committed data file, its path relative to the partition directory."""

    path: str
    rows: int
    bytes: int
    sha256: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


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

    @property
    def rows(self) -> int:
        return sum(f.rows for f in self.files)

    @property
    def bytes(self) -> int:
        return sum(f.bytes for f in self.files)

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
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise ManifestError(
                f"manifest {where} is unreadable ({exc}); restore it from the object store's versions "
                "or re-run the partition's producing task"
            ) from exc


def schema_fingerprint(schema: pa.Schema) -> str:
    """A stable hash of column names, types and nullability (metadata ignored)."""
    text = "|".join(f"{f.name}:{f.type}:{int(f.nullable)}" for f in schema.remove_metadata())
    return hashlib.sha256(text.encode()).hexdigest()[:16]
