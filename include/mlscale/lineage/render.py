"""Plain-text lineage trees for a terminal, a ticket or a regulator's inquiry."""

from __future__ import annotations

from mlscale.lineage.graph import UP, LineageGraph
from mlscale.lineage.node import EXTERNAL, PARTITION, Node

# manifest ``extra`` fields that are checksums or bookkeeping, not something a reader looks for
NOISY_EXTRA = frozenset({"inputs_signature", "content", "contract_fingerprint", "compaction_attempt", "findings"})
MAX_VALUE = 48


def describe(node: Node) -> str:
    """``key  [facts]``: rows, producing run and the manifest's short ``extra`` values (model name/version)."""
    facts: list[str] = []
    if node.kind == PARTITION:
        if not node.exists:
            facts.append("not committed")
        else:
            facts.append(f"{node.rows:,} rows")
            if node.run_id:
                facts.append(f"run {node.run_id}")
        for name, value in sorted(node.extra.items()):
            if name in NOISY_EXTRA or isinstance(value, dict | list | tuple) or value in (None, ""):
                continue
            text = str(value)
            facts.append(f"{name}={text if len(text) <= MAX_VALUE else text[:MAX_VALUE - 1] + '…'}")
    elif node.kind == EXTERNAL:
        facts.append("outside the lake")
    else:
        facts.append("file" if node.exists else "file, no longer present")
    return f"{node.key}  [{'; '.join(facts)}]"


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
