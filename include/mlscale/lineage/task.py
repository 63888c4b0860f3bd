"""What one task read and wrote, from its (small) result: the datasets of its OpenLineage run events.

A task's result names what it committed (``raw_uri``, ``quarantine_uri``, ``training_set``, ``predictions``,
``report``…, or any other top-level value that is a lake location; ``model`` + ``version`` next to a
``training_set`` for a model version it registered). Those are its outputs; a landing drop or a model
version named otherwise was read, so it is an input. Its inputs are what the outputs' own records name: the ``inputs`` of each
output partition's manifest and of each output model version's ``model.json``, less the outputs themselves
(a training set built and fitted in the same task is an output, not an input). Only these few small
documents are read; nothing is listed.

Locations are rendered once per dataset (``lake_uri``): the absolute path for a local lake, ``root/key``
for an object store; :func:`openlineage_name` turns one into an OpenLineage ``(namespace, name)``.
"""

from __future__ import annotations

import logging
import os
import posixpath
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from mlscale.lake import MANIFEST_NAME, ZONES, Lake, Manifest
from mlscale.lineage.locate import LakeLocator, OutsideLake
from mlscale.lineage.node import key_parts, looks_like_partition, model_version_key

logger = logging.getLogger(__name__)

MODEL_DOC = "model.json"
LANDING_ZONE = "landing"                                 # third-party drops: only ever read by tasks
BOOKKEEPING_ZONES = frozenset({"_meta", "checkpoints"})  # run logs and resumable state, not datasets
MAX_INPUTS = 500                                         # keeps one run event small (ingestion of many drops)
S3_SCHEMES = frozenset({"s3", "s3a", "s3n"})


@dataclass(frozen=True)
class TaskLineage:
    """Inputs and outputs of one task run, as dataset URIs (sorted inputs; outputs in the result's order)."""

    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {"inputs": list(self.inputs), "outputs": list(self.outputs)}

    def input_names(self) -> list[tuple[str, str]]:
        """OpenLineage ``(namespace, name)`` of each input."""
        return [openlineage_name(uri) for uri in self.inputs]

    def output_names(self) -> list[tuple[str, str]]:
        """OpenLineage ``(namespace, name)`` of each output."""
        return [openlineage_name(uri) for uri in self.outputs]


def task_lineage(result: Mapping[str, Any], lake: Lake | Callable[[], Lake]) -> TaskLineage:
    """The datasets a task's ``result`` says it wrote, and the inputs their manifests record.

    ``lake`` may be a function returning the lake: it is called only when the result names a location.
    A dry run (``result["dry_run"]`` true) wrote nothing: no datasets. An output partition without a
    committed manifest is left out (nothing was committed there); a model version only counts when its
    ``model.json`` exists. Raises what reading a manifest raises; callers that must not fail catch it.
    """
    names_model = isinstance(result.get("model"), str) and result.get("version") not in (None, "")
    if result.get("dry_run") is True or not (names_model or any("/" in value for value in _strings(result))):
        return TaskLineage()
    lake = lake if isinstance(lake, Lake) else lake()
    locator = LakeLocator.of(lake)
    outputs: dict[str, None] = {}
    inputs: dict[str, None] = {}
    recorded: list[str] = []
    for value in _strings(result):
        key = _lake_key(value, locator)
        if key is None:
            continue
        if key_parts(key)[0] == LANDING_ZONE:
            inputs[lake_uri(locator, key)] = None
            continue
        manifest = _manifest(lake, key) if looks_like_partition(key) else None
        if looks_like_partition(key) and manifest is None:
            logger.info("lineage: %s has no committed manifest; not reported as an output", lake.uri(key))
            continue
        outputs[lake_uri(locator, key)] = None
        recorded += manifest.inputs if manifest is not None else []
    name, version = result.get("model"), result.get("version")
    key = model_version_key(f"models/{name}/{version}") if isinstance(name, str) and \
        isinstance(version, str | int) and not isinstance(version, bool) else None
    doc = _model_doc(lake, key) if key else None
    if key and doc is not None:
        if result.get("training_set"):  # the task fitted and registered this version
            outputs[lake_uri(locator, key)] = None
            found = doc.get("inputs")
            recorded += [str(uri) for uri in found if uri] if isinstance(found, list) else []
        else:
            inputs[lake_uri(locator, key)] = None
    for uri in recorded:
        inputs[_normalise(locator, uri)] = None
    found_inputs = sorted(uri for uri in inputs if uri not in outputs)
    if len(found_inputs) > MAX_INPUTS:
        logger.info("lineage: %d inputs; reporting the first %d", len(found_inputs), MAX_INPUTS)
        found_inputs = found_inputs[:MAX_INPUTS]
    return TaskLineage(inputs=tuple(found_inputs), outputs=tuple(outputs))


def lake_uri(locator: LakeLocator, key: str) -> str:
    """One spelling per dataset: the absolute path in a local lake, ``<root>/<key>`` otherwise."""
    if locator.local_base:
        return f"{locator.local_base}/{key}"
    return f"{locator.root.rstrip('/')}/{key}"


def openlineage_name(uri: str) -> tuple[str, str]:
    """OpenLineage dataset naming: ``("file", "/abs/path")`` for a local path or ``file://`` URI,
    ``("s3://bucket", "key")`` for S3, ``("<scheme>://<authority>", "path")`` for other object stores."""
    uri = uri.strip()
    parts = urlsplit(uri)
    if not parts.scheme or len(parts.scheme) == 1:  # a path (a one-letter "scheme" is a Windows drive)
        return "file", posixpath.normpath(uri if uri.startswith("/") else os.path.abspath(uri))
    if parts.scheme == "file":
        path = posixpath.normpath(parts.path or "/")
        return ("file" if parts.netloc in ("", "localhost") else f"file://{parts.netloc}"), path
    scheme = "s3" if parts.scheme in S3_SCHEMES else parts.scheme
    return f"{scheme}://{parts.netloc}", parts.path.strip("/") or "/"


def _strings(result: Mapping[str, Any]) -> Iterator[str]:
    """Top-level string values of ``result`` and the strings of its top-level lists."""
    for value in result.values():
        if isinstance(value, str):
            yield value
        elif isinstance(value, list | tuple):
            yield from (item for item in value if isinstance(item, str))


def _lake_key(value: str, locator: LakeLocator) -> str | None:
    """The lake key ``value`` names when it is a location in one of the lake's data zones, else None."""
    if "/" not in value or "\n" in value:
        return None
    try:
        key = locator.key_of(value)
    except OutsideLake:
        return None
    zone = key_parts(key)[0]
    if not key or "/" not in key or zone not in ZONES or zone in BOOKKEEPING_ZONES:
        return None
    return key


def _normalise(locator: LakeLocator, uri: str) -> str:
    try:
        key = locator.key_of(uri)
    except OutsideLake:
        return uri.rstrip("/") or uri
    return lake_uri(locator, key) if key else uri


def _manifest(lake: Lake, key: str) -> Manifest | None:
    path = f"{key}/{MANIFEST_NAME}"
    try:
        return Manifest.from_json(lake.read_bytes(path), lake.uri(path))
    except FileNotFoundError:
        return None


def _model_doc(lake: Lake, key: str) -> dict[str, Any] | None:
    try:
        doc = lake.read_json(f"{key}/{MODEL_DOC}")
    except FileNotFoundError:
        return None
    return doc if isinstance(doc, dict) else None
