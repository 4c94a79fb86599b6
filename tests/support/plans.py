"""Reading PostgreSQL's ``EXPLAIN (FORMAT JSON)``."""

from __future__ import annotations

from typing import Any

import orjson


def plan_nodes(explain_json: str) -> list[str]:
    """Every node of the plan, depth first, as ``"<Node Type> <Index Name>"`` (the index only
    where the node has one)."""
    nodes: list[str] = []

    def walk(node: dict[str, Any]) -> None:
        nodes.append(f"{node['Node Type']} {node.get('Index Name', '')}".strip())
        for child in node.get("Plans", []):
            walk(child)

    walk(orjson.loads(explain_json)[0]["Plan"])
    return nodes
