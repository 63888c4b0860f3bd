"""The lake: storage layout, partitions and the manifest commit protocol (see :mod:`mlscale.lake.lake`)."""

from mlscale.lake.lake import (
    CommitConflict,
    CommitError,
    Lake,
    PartitionNotFound,
    PartitionWriter,
    StoredFile,
    new_attempt_id,
)
from mlscale.lake.manifest import MANIFEST_NAME, FileEntry, Manifest, ManifestError, schema_fingerprint
from mlscale.lake.partition import ZONES, PartitionNameError, PartitionRef, file_name_of, parse_day
from mlscale.lake.storage import LakeConfigError, S3Options

__all__ = [
    "MANIFEST_NAME", "ZONES", "CommitConflict", "CommitError", "FileEntry", "Lake", "LakeConfigError", "Manifest",
    "ManifestError", "PartitionNameError", "PartitionNotFound", "PartitionRef", "PartitionWriter",
    "S3Options", "StoredFile", "file_name_of", "new_attempt_id", "parse_day", "schema_fingerprint",
]
