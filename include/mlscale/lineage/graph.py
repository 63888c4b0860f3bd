"""The lake's lineage graph, read from the ``inputs`` every partition manifest records.

Each committed partition points to what it was built from: landing files (ingestion), raw partitions
(feature partials), feature partitions (as-of tables, training sets), model versions and features
(predictions). Model versions are not partitions: each lives in ``models/<model>/<version>/`` and its
``model.json`` records the training set it was fitted on (``inputs``); they are nodes of their own
(kind ``model``, key ``models/<model>/<version>``). :class:`LineageGraph` reads every manifest once and answers two questions for an
on-call engineer or a regulatory inquiry: what did this come from (:meth:`LineageGraph.upstream`, back to
the landing files) and what did this influence (:meth:`LineageGraph.downstream`).

Inputs are normalised to lake keys: a partition key stays a partition; a file inside a committed partition
(including its cold-tier copies) becomes that partition; a model version directory (``…/models/m/4/``, with
or without the trailing slash) or a file in it becomes the model version; any other file in the lake (a
landing drop) is a leaf; a URI outside the lake root is an ``external`` leaf.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from mlscale.lake import MANIFEST_NAME, ZONES, Lake, Manifest, ManifestError
from mlscale.lineage.locate import LakeLocator, OutsideLake
from mlscale.lineage.node import (
    EXTERNAL,
    FILE,
    MODEL,
    MODELS_ZONE,
    PARTITION,
    Node,
    key_parts,
    looks_like_partition,
    model_version_key,
)

logger = logging.getLogger(__name__)
META_ZONE = "_meta"
COLD_PREFIX = "cold/"
UP, DOWN, BOTH = "up", "down", "both"
READ_THREADS = 8
DIRECTIONS = (UP, DOWN, BOTH)
MODEL_DOC = "model.json"  # written by mlscale.training.model.StoredModel.save


class LineageLookupError(LookupError):
    """A URI, key or path names nothing the lineage graph knows."""


@dataclass(frozen=True)
class LineageResult:
    """The answer to one lineage question; ``depth`` is the number of hops from the start (1 = direct)."""

    query: str
    start: tuple[Node, ...]
    upstream: tuple[tuple[Node, int], ...] = ()
    downstream: tuple[tuple[Node, int], ...] = ()
    # (partition or model version key, input key) among the nodes shown
    edges: tuple[tuple[str, str], ...] = field(default=())

    def as_dict(self) -> dict[str, Any]:
        return {
            "query": self.query,
            "start": [n.as_dict() for n in self.start],
            "upstream": [n.as_dict() | {"depth": d} for n, d in self.upstream],
            "downstream": [n.as_dict() | {"depth": d} for n, d in self.downstream],
            "edges": [{"partition": a, "input": b} for a, b in self.edges],
        }


class LineageGraph:
    """Directed graph partition or model version → its inputs. Read-only, deterministic (every list is
    sorted), cycle-safe.

    ``models`` maps a model version key (``models/<model>/<version>``) to its ``model.json`` document.
    """

    def __init__(self, manifests: Mapping[str, Manifest], *, locator: LakeLocator, files: Iterable[str] = (),
                 unreadable: Iterable[str] = (), models: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        self.locator = locator
        self.manifests = dict(manifests)
        self.models = {key: dict(doc) for key, doc in (models or {}).items()
                       if model_version_key(key) == key and key not in self.manifests}
        self.files = frozenset(files)
        self.unreadable = tuple(sorted(unreadable))
        self._owner: dict[str, str] = {}
        for key, manifest in self.manifests.items():
            for file_key in manifest.file_keys():
                self._owner[file_key] = key
        self._nodes: dict[str, Node] = {key: self._partition_node(key) for key in self.manifests}
        self._nodes.update((key, self._model_node(key)) for key in self.models)
        recorded: dict[str, list[str]] = {key: list(m.inputs) for key, m in self.manifests.items()}
        recorded.update((key, self._model_inputs(doc)) for key, doc in self.models.items())
        self._inputs: dict[str, list[str]] = {}
        self._consumers: dict[str, set[str]] = {}
        for key in sorted(recorded):
            found: list[str] = []
            for uri in recorded[key]:
                node = self._input_node(uri)
                if node.key != key and node.key not in found:
                    found.append(node.key)
                    self._nodes.setdefault(node.key, node)
                    self._consumers.setdefault(node.key, set()).add(key)
            self._inputs[key] = sorted(found)

    # -- construction ------------------------------------------------------------------------------
    @classmethod
    def from_lake(cls, lake: Lake, zones: Iterable[str] | None = None) -> LineageGraph:
        """Read every manifest below ``zones`` (all zones but ``_meta`` by default).

        An unreadable manifest is skipped with a warning and listed in :attr:`unreadable`: lineage through
        it is missing, the rest of the graph is still right.
        """
        manifest_keys: list[str] = []
        model_keys: list[str] = []
        files: list[str] = []
        for zone in zones if zones is not None else [z for z in ZONES if z != META_ZONE]:
            for stored in lake.list_files(zone):
                if stored.key.endswith("/" + MANIFEST_NAME):
                    manifest_keys.append(stored.key)
                    continue
                files.append(stored.key)
                if _is_model_doc(stored.key):
                    model_keys.append(stored.key)

        def read(key: str) -> Manifest | dict[str, Any] | Exception:
            try:
                if key.endswith("/" + MANIFEST_NAME):
                    return Manifest.from_json(lake.read_bytes(key), lake.uri(key))
                doc = lake.read_json(key)
                if not isinstance(doc, dict):
                    raise ValueError(f"expected a JSON object, found {type(doc).__name__}")
                return doc
            except (ManifestError, OSError, ValueError) as exc:  # json.JSONDecodeError is a ValueError
                return exc

        manifests: dict[str, Manifest] = {}
        models: dict[str, dict[str, Any]] = {}
        unreadable: list[str] = []
        wanted = manifest_keys + model_keys
        with ThreadPoolExecutor(max_workers=READ_THREADS) as pool:  # object stores: one GET per document
            for key, found in zip(wanted, pool.map(read, wanted), strict=True):
                if isinstance(found, Exception):
                    logger.warning("lineage: skipping unreadable %s %s (%s); lineage through it is missing",
                                   "manifest" if key.endswith(MANIFEST_NAME) else "model document",
                                   lake.uri(key), found)
                    unreadable.append(key)
                elif isinstance(found, Manifest):
                    manifests[key[: -len(MANIFEST_NAME) - 1]] = found
                else:
                    models[key[: -len(MODEL_DOC) - 1]] = found
        graph = cls(manifests, locator=LakeLocator.of(lake), files=files, unreadable=unreadable, models=models)
        logger.info("lineage graph of %s: %d partitions, %d model versions, %d nodes, %d edges", lake.root,
                    len(manifests), len(graph.models), len(graph._nodes), sum(len(v) for v in graph._inputs.values()))
        return graph

    def _partition_node(self, key: str) -> Node:
        manifest = self.manifests.get(key)
        zone, dataset, dt = key_parts(key)
        return Node(key=key, kind=PARTITION, uri=self._uri(key), zone=zone, dataset=dataset, dt=dt,
                    exists=manifest is not None, run_id=manifest.run_id if manifest else "",
                    rows=manifest.rows if manifest else None, extra=dict(manifest.extra) if manifest else {})

    def _model_node(self, key: str) -> Node:
        """A model version; ``exists`` is False for one recorded as an input whose ``model.json`` is gone."""
        _, name, version = key.split("/")
        doc = self.models.get(key)
        if doc is None:
            return Node(key=key, kind=MODEL, uri=self._uri(key), zone=MODELS_ZONE, dataset=name, exists=False,
                        extra={"name": name, "version": version})
        tags = doc.get("tags")
        tags = tags if isinstance(tags, dict) else {}
        day = str(doc.get("registered_day") or "")
        extra = {"name": str(doc.get("model") or name), "version": str(doc.get("version") or version),
                 "algorithm": str(doc.get("algorithm") or ""), "registered_day": day}
        return Node(key=key, kind=MODEL, uri=self._uri(key), zone=MODELS_ZONE, dataset=name, dt=day, exists=True,
                    run_id=str(tags.get("airflow_run_id") or ""), extra=extra)

    def _model_inputs(self, doc: Mapping[str, Any]) -> list[str]:
        """The ``inputs`` a ``model.json`` records; for documents without them, its training set partition."""
        inputs = doc.get("inputs")
        if isinstance(inputs, list | tuple):
            return [str(uri) for uri in inputs if uri]
        training_set = doc.get("training_set")
        partition = training_set.get("partition") if isinstance(training_set, dict) else None
        tags = doc.get("tags")
        partition = partition or (tags.get("training_set") if isinstance(tags, dict) else None)
        return [self._uri(str(partition))] if partition else []

    def _file_node(self, key: str) -> Node:
        zone, dataset, dt = key_parts(key)
        return Node(key=key, kind=FILE, uri=self._uri(key), zone=zone, dataset=dataset, dt=dt,
                    exists=key in self.files)

    def _uri(self, key: str) -> str:
        return f"{self.locator.root}/{key}"

    def _input_node(self, uri: str) -> Node:
        try:
            key = self.locator.key_of(uri)
        except OutsideLake:
            return Node(key=uri, kind=EXTERNAL, uri=uri)
        owner = self.partition_of(key)
        if owner is not None:
            return self._nodes[owner]
        if looks_like_partition(key):  # a partition since deleted (retention) or never committed
            return self._partition_node(key)
        version = model_version_key(key)
        if version is not None:  # a model version directory or a file in it, stored or since deleted
            return self._nodes.get(version) or self._model_node(version)
        return self._file_node(key)

    # -- lookups -----------------------------------------------------------------------------------
    def partition_of(self, key: str) -> str | None:
        """The committed partition ``key`` is, or lies in (cold-tier copies included); None if none."""
        key = key.strip("/")
        if key in self.manifests:
            return key
        if key in self._owner:
            return self._owner[key]
        for candidate in (key, key[len(COLD_PREFIX):] if key.startswith(COLD_PREFIX) else None):
            if not candidate:
                continue
            parts = candidate.split("/")
            for end in range(len(parts) - 1, 2, -1):
                prefix = "/".join(parts[:end])
                if prefix in self.manifests:
                    return prefix
        return None

    def model_of(self, key: str) -> str | None:
        """The stored model version ``key`` is, or lies in (``models/m/4/model.bin`` → ``models/m/4``)."""
        version = model_version_key(key)
        return version if version is not None and version in self.models else None

    def node(self, key: str) -> Node:
        if key in self._nodes:
            return self._nodes[key]
        raise LineageLookupError(f"{key} is not in the lineage graph of {self.locator.root}")

    def nodes(self) -> list[Node]:
        return [self._nodes[k] for k in sorted(self._nodes)]

    def inputs_of(self, key: str) -> list[Node]:
        """What partition or model version ``key`` was built from (sorted by key); empty for leaves."""
        return [self._nodes[k] for k in self._inputs.get(key, [])]

    def consumers_of(self, key: str) -> list[Node]:
        """Partitions and model versions that list ``key`` among their inputs (sorted by key)."""
        return [self._nodes[k] for k in sorted(self._consumers.get(key, ()))]

    def resolve(self, uri_or_key: str) -> list[Node]:
        """The node(s) a lake URI, lake key or local path names.

        A file inside a committed partition (or its manifest) resolves to the partition; a model version
        directory or a file in it (``models/fraud_detector/4/model.json``) to the model version; a directory
        that is no partition (``landing/transactions/dt=2026-11-25``) to every node below it. Raises
        :class:`LineageLookupError` when nothing matches.
        """
        try:
            key = self.locator.key_of(uri_or_key)
        except OutsideLake as exc:
            if uri_or_key.strip() in self._nodes:
                return [self._nodes[uri_or_key.strip()]]
            raise LineageLookupError(f"{exc}; give a lake URI, a key such as raw/transactions/dt=2026-11-25, "
                                     "or a path inside the lake") from exc
        if key.endswith("/" + MANIFEST_NAME):
            key = key[: -len(MANIFEST_NAME) - 1]
        if not key:
            raise LineageLookupError(f"{uri_or_key} is the lake root; name a partition or a file")
        owner = self.partition_of(key) or self.model_of(key)
        if owner is not None:
            return [self._nodes[owner]]
        if key in self._nodes:
            return [self._nodes[key]]
        if key in self.files:
            return [self._file_node(key)]
        below = [self._nodes[k] for k in sorted(self._nodes) if k.startswith(key + "/")]
        if below:
            return below
        hint = f" ({len(self.unreadable)} manifests were unreadable)" if self.unreadable else ""
        raise LineageLookupError(
            f"{uri_or_key} is not a committed partition, a stored model version, a file inside one, or an input "
            f"recorded by any of the {len(self.manifests)} manifests and {len(self.models)} model documents under "
            f"{self.locator.root}{hint}. Check the spelling (keys look like raw/transactions/dt=2026-11-25 or "
            "models/fraud_detector/4) and whether the producing task has committed it.")

    # -- walks -------------------------------------------------------------------------------------
    def upstream(self, uri_or_key: str) -> list[Node]:
        """Everything the named data was built from, transitively, down to the landing files.

        Ordered by distance (direct inputs first), then key. The start node(s) are not included.
        """
        return [n for n, _ in self._walk(self.resolve(uri_or_key), UP)]

    def downstream(self, uri_or_key: str) -> list[Node]:
        """Every partition and model version the named data influenced, transitively (raw → features →
        training set → model version → predictions). Ordered by distance, then key. The start node(s) are
        not included."""
        return [n for n, _ in self._walk(self.resolve(uri_or_key), DOWN)]

    def sources(self, uri_or_key: str) -> list[Node]:
        """The leaves of :meth:`upstream`: landing files, external inputs, partitions (and model versions)
        recorded without inputs."""
        return sorted((n for n in self.upstream(uri_or_key) if not self._inputs.get(n.key)), key=lambda n: n.key)

    def lineage(self, uri_or_key: str, direction: str = BOTH) -> LineageResult:
        """Upstream and/or downstream of the named data, with depths and the edges between the nodes."""
        if direction not in DIRECTIONS:
            raise ValueError(f"direction {direction!r} is not one of {', '.join(DIRECTIONS)}")
        start = self.resolve(uri_or_key)
        up = self._walk(start, UP) if direction in (UP, BOTH) else []
        down = self._walk(start, DOWN) if direction in (DOWN, BOTH) else []
        shown = {n.key for n in start} | {n.key for n, _ in up} | {n.key for n, _ in down}
        edges = sorted((a, b) for a in shown for b in self._inputs.get(a, []) if b in shown)
        return LineageResult(query=uri_or_key, start=tuple(start), upstream=tuple(up), downstream=tuple(down),
                             edges=tuple(edges))

    def _walk(self, start: list[Node], direction: str) -> list[tuple[Node, int]]:
        """Breadth-first from ``start``; each node once, at its shortest distance (so cycles end)."""
        seen = {n.key: 0 for n in start}
        queue = deque(n.key for n in start)
        found: list[tuple[str, int]] = []
        while queue:
            key = queue.popleft()
            nxt = self._inputs.get(key, []) if direction == UP else sorted(self._consumers.get(key, ()))
            for other in nxt:
                if other not in seen:
                    seen[other] = seen[key] + 1
                    found.append((other, seen[other]))
                    queue.append(other)
        return [(self._nodes[k], d) for k, d in sorted(found, key=lambda kd: (kd[1], kd[0]))]


def _is_model_doc(key: str) -> bool:
    """``models/<model>/<version>/model.json`` exactly (not a cold-tier copy, not a nested file)."""
    parts = key.split("/")
    return len(parts) == 4 and parts[0] == MODELS_ZONE and parts[3] == MODEL_DOC and \
        model_version_key(key) == "/".join(parts[:3])
