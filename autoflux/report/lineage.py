"""The lineage graph: files → raw tables → dbt models → training frames, in layers left to right.

A node's layer is the longest path to it (:mod:`graphlib` orders the graph); within a layer nodes follow
the mean position of their parents, which keeps edges from crossing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from graphlib import CycleError, TopologicalSorter
from itertools import pairwise
from typing import Any

NODE_WIDTH, NODE_HEIGHT = 160, 30
LAYER_GAP, ROW_GAP, MARGIN = 44, 12, 8


@dataclass
class Node:
    id: str
    label: str
    kind: str  # file, raw, model, frame
    status: str = "ok"  # ok, failed, skipped, stale
    detail: str = ""
    anchor: str | None = None
    x: float = 0.0
    y: float = 0.0


@dataclass
class Graph:
    nodes: list[Node] = field(default_factory=list)
    edges: list[tuple[str, str]] = field(default_factory=list)
    width: float = 0.0
    height: float = 0.0
    paths: list[dict[str, Any]] = field(default_factory=list)

    def add(self, node: Node) -> None:
        if all(n.id != node.id for n in self.nodes):
            self.nodes.append(node)

    def link(self, source: str, target: str) -> None:
        ids = {n.id for n in self.nodes}
        if source in ids and target in ids and (source, target) not in self.edges:
            self.edges.append((source, target))


def build(
    files: list[dict[str, Any]],
    raw_tables: list[str],
    manifest: dict[str, Any] | None,
    results: dict[str, dict[str, Any]],
    frames: dict[str, Any] | None,
) -> Graph:
    """The graph of ``files`` (``{"file", "table", "outcome"}``), raw tables, dbt's models and the hand-off frames."""
    graph = Graph()
    for name in raw_tables:
        graph.add(Node(f"raw.{name}", f"raw.{name}", "raw", anchor=f"table-raw-{name}"))
    for entry in files:
        node_id = f"file:{entry['file']}"
        label = entry["file"].replace("\\", "/").rsplit("/", 1)[-1]
        graph.add(Node(node_id, label, "file", "failed" if entry["outcome"] == "failed" else "ok", entry["file"]))
        graph.link(node_id, f"raw.{entry['table']}")
    models = {k: v for k, v in ((manifest or {}).get("nodes") or {}).items() if v.get("resource_type") == "model"}
    sources = (manifest or {}).get("sources") or {}
    for unique_id, node in sorted(models.items(), key=lambda kv: kv[1]["name"]):
        result = results.get(unique_id, {})
        status = {"error": "failed", "skipped": "skipped"}.get(result.get("status", ""), "ok")
        relation = f"{node.get('schema')}.{node['name']}"
        graph.add(
            Node(
                unique_id,
                node["name"],
                "model",
                status,
                f"{relation} ({node.get('config', {}).get('materialized', '')})",
                f"model-{node['name']}",
            )
        )
    for unique_id, node in models.items():
        for parent in node.get("depends_on", {}).get("nodes", []):
            if parent in sources:
                graph.link(f"raw.{sources[parent]['name']}", unique_id)
            else:
                graph.link(parent, unique_id)
    if frames:
        relation = frames["relation"]
        owner = next(
            (k for k, v in models.items() if f"{v.get('schema')}.{v['name']}" == relation or v["name"] == relation.rsplit(".", 1)[-1]), None
        )
        for split in ("train", "test"):
            rows = frames.get(split)
            graph.add(
                Node(f"frame:{split}", f"{split} frame", "frame", detail=f"{rows:,} rows" if rows is not None else "", anchor="checks")
            )
            if owner:
                graph.link(owner, f"frame:{split}")
    _layout(graph)
    return graph


def _ordered(graph: Graph) -> tuple[list[str], dict[str, list[str]]]:
    """The nodes in topological order and each node's parents, less the edges that close a cycle (there
    should be none: dbt refuses them)."""
    edges = list(graph.edges)
    while True:
        parents: dict[str, list[str]] = {n.id: [] for n in graph.nodes}
        for source, target in edges:
            parents[target].append(source)
        try:
            return list(TopologicalSorter(parents).static_order()), parents
        except CycleError as error:
            closing = set(pairwise(error.args[1]))  # the cycle: each node a parent of the next, the first repeated last
            edges = [edge for edge in edges if edge not in closing]


def _layout(graph: Graph) -> None:
    ordered, parents = _ordered(graph)
    kinds = {n.id: n.kind for n in graph.nodes}
    layer: dict[str, int] = {}
    for node_id in ordered:
        floor = {"file": 0, "raw": 1, "model": 2, "frame": 3}[kinds[node_id]]
        layer[node_id] = max([floor, *(layer[p] + 1 for p in parents[node_id])])
    # Within a layer, nodes follow the mean row of their parents (fewer crossings), then their name.
    order: dict[str, float] = {}
    for depth in sorted(set(layer.values())):
        members = [n for n in graph.nodes if layer[n.id] == depth]
        members.sort(key=lambda n: (_mean([order[p] for p in parents[n.id] if p in order]), n.label))
        order.update({n.id: float(i) for i, n in enumerate(members)})
    rows = max(sum(1 for v in layer.values() if v == d) for d in set(layer.values())) if layer else 0
    layers = max(layer.values()) + 1 if layer else 0
    graph.width = MARGIN * 2 + layers * NODE_WIDTH + max(layers - 1, 0) * LAYER_GAP
    graph.height = MARGIN * 2 + rows * NODE_HEIGHT + max(rows - 1, 0) * ROW_GAP
    for node in graph.nodes:  # each layer a column, its nodes centred vertically in their order
        size = sum(1 for v in layer.values() if v == layer[node.id])
        node.x = MARGIN + layer[node.id] * (NODE_WIDTH + LAYER_GAP)
        node.y = MARGIN + ((rows - size) / 2 + order[node.id]) * (NODE_HEIGHT + ROW_GAP)
    by_id = {n.id: n for n in graph.nodes}
    for source, target in graph.edges:
        a, b = by_id[source], by_id[target]
        x1, y1 = a.x + NODE_WIDTH, a.y + NODE_HEIGHT / 2
        x2, y2 = b.x, b.y + NODE_HEIGHT / 2
        middle = (x1 + x2) / 2
        graph.paths.append(
            {"source": source, "target": target, "d": f"M{x1:.1f},{y1:.1f} C{middle:.1f},{y1:.1f} {middle:.1f},{y2:.1f} {x2:.1f},{y2:.1f}"}
        )


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0
