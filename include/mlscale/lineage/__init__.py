"""Lineage of the lake's data, read from partition manifests (see :mod:`mlscale.lineage.graph`)."""

from mlscale.lineage.graph import DIRECTIONS, LineageGraph, LineageLookupError, LineageResult
from mlscale.lineage.locate import LakeLocator, OutsideLake
from mlscale.lineage.node import EXTERNAL, FILE, PARTITION, Node
from mlscale.lineage.render import describe, render_tree

__all__ = [
    "DIRECTIONS", "EXTERNAL", "FILE", "PARTITION", "LakeLocator", "LineageGraph", "LineageLookupError",
    "LineageResult", "Node", "OutsideLake", "describe", "render_tree",
]
