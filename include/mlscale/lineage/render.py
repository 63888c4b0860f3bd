"""Plain-text lineage trees for a terminal, a ticket or a regulator's inquiry."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from mlscale.lineage.graph import UP, LineageGraph
from mlscale.lineage.node import EXTERNAL, FILE, MODEL, PARTITION, Node

# manifest ``extra`` fields that are checksums or bookkeeping, not something a reader looks for
NOISY_EXTRA = frozenset({"inputs_signature", "content", "contract_fingerprint", "compaction_attempt", "findings"})
MAX_VALUE = 48


def describe(node: Node) -> str:
    """``key  [facts]``: rows, producing run and the manifest's short ``extra`` values; for a model version
    ``model``, its algorithm, registered day and training run."""
    facts: list[str] = []
    if node.kind == PARTITION:
        if not node.exists:
            facts.append("not committed")
        else:
            facts.append(f"{node.rows:,} rows")
            if node.run_id:
                facts.append(f"run {node.run_id}")
        facts.extend(_extra_facts(node))
    elif node.kind == MODEL:
        facts.append("model version" if node.exists else "model version, model.json no longer present")
        facts.extend(_extra_facts(node, skip=frozenset({"name", "version"})))
        if node.run_id:
            facts.append(f"run {node.run_id}")
    elif node.kind == EXTERNAL:
        facts.append("outside the lake")
    else:
        facts.append("file" if node.exists else "file, no longer present")
    return f"{node.key}  [{'; '.join(facts)}]"


def _extra_facts(node: Node, skip: frozenset[str] = frozenset()) -> list[str]:
    facts = []
    for name, value in sorted(node.extra.items()):
        if name in NOISY_EXTRA or name in skip or isinstance(value, dict | list | tuple) or value in (None, ""):
            continue
        text = str(value)
        facts.append(f"{name}={text if len(text) <= MAX_VALUE else text[:MAX_VALUE - 1] + '…'}")
    return facts


def summarize(nodes: Iterable[Node]) -> str:
    """``total: 6 partitions (raw 3, …), 2 model versions, 4 files[, …]`` for the nodes of a walk."""
    nodes = list(nodes)
    kinds = Counter(n.kind for n in nodes)
    zones = Counter(n.zone for n in nodes if n.kind == PARTITION)
    by_zone = ", ".join(f"{zone} {count}" for zone, count in sorted(zones.items()))
    parts = [f"{kinds[PARTITION]} partitions" + (f" ({by_zone})" if by_zone else "")]
    if kinds[MODEL]:
        parts.append(f"{kinds[MODEL]} model versions")
    parts.append(f"{kinds[FILE]} files")
    if kinds[EXTERNAL]:
        parts.append(f"{kinds[EXTERNAL]} inputs outside the lake")
    missing = sum(1 for n in nodes if n.exists is False)
    if missing:
        parts.append(f"{missing} no longer present")
    return "total: " + ", ".join(parts)


def render_tree(graph: LineageGraph, start: list[Node], direction: str) -> list[str]:
    """One tree per start node: inputs (``up``) or consumers (``down``), each node expanded once.

    A node reached again is printed as ``key  (see above)`` instead of again with its subtree, so shared
    inputs and cycles stay finite and the output is deterministic.
    """
    lines: list[str] = []
    expanded: set[str] = set()

    def children(node: Node) -> list[Node]:
        return graph.inputs_of(node.key) if direction == UP else graph.consumers_of(node.key)

    def visit(node: Node, prefix: str, last: bool, top: bool) -> None:
        branch = "" if top else ("└── " if last else "├── ")
        if node.key in expanded:
            lines.append(f"{prefix}{branch}{node.key}  (see above)")
            return
        lines.append(f"{prefix}{branch}{describe(node)}")
        expanded.add(node.key)
        kids = children(node)
        inner = prefix if top else prefix + ("    " if last else "│   ")
        for i, kid in enumerate(kids):
            visit(kid, inner, i == len(kids) - 1, False)

    for node in start:
        visit(node, "", True, True)
    return lines
