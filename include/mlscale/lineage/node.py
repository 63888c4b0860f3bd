"""Nodes of the lineage graph: committed partitions, model versions, files in the lake, and inputs outside it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

PARTITION = "partition"
MODEL = "model"
FILE = "file"
EXTERNAL = "external"
KINDS = (PARTITION, MODEL, FILE, EXTERNAL)
MODELS_ZONE = "models"


@dataclass(frozen=True)
class Node:
    """One thing data came from or went to.

    ``key`` is the lake key (relative to the root: ``raw/transactions/dt=2026-11-25``, a model version
    ``models/fraud_detector/4``), or the URI itself for an input outside the lake (``kind == "external"``).
    ``exists`` says whether the partition is committed / the model version's ``model.json`` / the file is
    present now (None where the lake cannot tell: external inputs). ``extra`` is the manifest's ``extra``
    for a partition; for a model version its ``name``, ``version``, ``algorithm`` and ``registered_day``.
    ``dt`` is a partition's day, or the day a model version was registered.
    """

    key: str
    kind: str
    uri: str
    zone: str = ""
    dataset: str = ""
    dt: str = ""
    exists: bool | None = None
    run_id: str = ""
    rows: int | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def is_partition(self) -> bool:
        return self.kind == PARTITION

    @property
    def is_model(self) -> bool:
        return self.kind == MODEL

    def as_dict(self) -> dict[str, Any]:
        return {"key": self.key, "kind": self.kind, "uri": self.uri, "zone": self.zone, "dataset": self.dataset,
                "dt": self.dt, "exists": self.exists, "run_id": self.run_id, "rows": self.rows,
                "extra": dict(self.extra)}


def key_parts(key: str) -> tuple[str, str, str]:
    """``(zone, dataset, dt)`` of a lake key, each empty where the key has none.

    Keys under the cold tier (``cold/raw/x/dt=D/…``) are read as their home key.
    """
    parts = key.strip("/").split("/")
    if parts and parts[0] == "cold" and len(parts) > 1:
        parts = parts[1:]
    zone = parts[0] if parts else ""
    dataset = parts[1] if len(parts) > 1 and "=" not in parts[1] else ""
    dt = next((p[3:] for p in parts[2:] if p.startswith("dt=")), "")
    return zone, dataset, dt


def looks_like_partition(key: str) -> bool:
    """True for ``<zone>/<dataset>/dt=D[/k=v…]``: every component from the third on is ``name=value``."""
    parts = key.strip("/").split("/")
    return len(parts) >= 3 and parts[2].startswith("dt=") and all("=" in p for p in parts[2:])


def model_version_key(key: str) -> str | None:
    """``models/<model>/<version>`` for that directory or any file below it (cold-tier copies included),
    else None. Day-partitioned keys under ``models/`` (``models/x/dt=D``) are partitions, not versions."""
    parts = [p for p in key.strip("/").split("/") if p]
    if parts and parts[0] == "cold" and len(parts) > 1:
        parts = parts[1:]
    if len(parts) < 3 or parts[0] != MODELS_ZONE or "=" in parts[1] or "=" in parts[2]:
        return None
    return "/".join(parts[:3])
