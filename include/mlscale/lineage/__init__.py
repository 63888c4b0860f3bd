"""Lineage of the lake's data, read from partition manifests and model documents (see :mod:`mlscale.lineage.graph`)."""

from mlscale.lineage.graph import DIRECTIONS, LineageGraph, LineageLookupError, LineageResult
from mlscale.lineage.locate import LakeLocator, OutsideLake
from mlscale.lineage.node import EXTERNAL, FILE, MODEL, PARTITION, Node
from mlscale.lineage.render import describe, render_tree, summarize

__all__ = [
    "DIRECTIONS", "EXTERNAL", "FILE", "MODEL", "PARTITION", "LakeLocator", "LineageGraph", "LineageLookupError",
    "LineageResult", "Node", "OutsideLake", "describe", "render_tree", "summarize",
]
