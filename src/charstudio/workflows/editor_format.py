"""API-format graphs as ComfyUI editor workflows (the PNG ``workflow`` chunk).

ComfyUI's SaveImage writes two text chunks: ``prompt`` (the API graph that ran) and
``workflow`` (what the editor shows: nodes with positions, typed input and output slots,
widget values, and a link table), taken from ``extra_pnginfo``. charstudio builds API
graphs, so to give its images the same two chunks it lays the graph out as an editor
workflow (litegraph's serialisation, ``version`` 0.4, as ComfyUI's frontend saves it):

* a node's ``inputs`` are its link sockets in the catalog's order, each with the
  ``link`` id that feeds it; ``outputs`` list every slot with the ids it feeds;
* ``widgets_values`` are the widget inputs in the catalog's order, with the extra
  "control after generate" value (``fixed``: the recorded seed is kept) after a seed, and
  the upload widget's value after ``LoadImage.image`` — as in ComfyUI's own exports
  (``KSampler``: ``[seed, "fixed", steps, cfg, sampler, scheduler, denoise]``);
* ``links`` rows are ``[id, from node, from slot, to node, to input index, type]``;
* nodes are placed in columns by their distance from the loaders.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from charstudio.workflows.catalog import Catalog
from charstudio.workflows.types import Graph, NodeSpec

__all__ = ["editor_workflow"]

_COLUMN_WIDTH = 360
_ROW_HEIGHT = 220


def editor_workflow(graph: Graph, catalog: Catalog | None = None) -> dict[str, Any]:
    """The editor workflow of an API-format graph (node ids must be integers as text).

    Args:
        graph: An API-format graph, as the builders make it.
        catalog: Node specs for slot names, types and widget order; built-in by default.

    Returns:
        A JSON-ready editor workflow.

    Raises:
        KeyError: a node class the catalog does not know.
    """
    catalog = catalog or Catalog.builtin()
    specs = {node_id: catalog.spec(str(node["class_type"])) for node_id, node in graph.items()}
    depth = _depths(graph)
    rows: dict[int, int] = {}
    links: list[list[Any]] = []
    feeds: dict[tuple[str, int], list[int]] = {}
    nodes = []
    for order, (node_id, node) in enumerate(graph.items()):
        spec = specs[node_id]
        inputs: list[dict[str, Any]] = []
        for name, socket in spec.inputs.items():
            value = node.get("inputs", {}).get(name)
            linked = _is_link(value, graph)
            if not socket.is_link and not linked:
                continue
            entry: dict[str, Any] = {"name": name, "type": socket.type, "link": None}
            if not socket.is_link:
                entry["widget"] = {"name": name}
            if linked:
                link_id = len(links) + 1
                source, slot = str(value[0]), int(value[1])
                kind = specs[source].outputs[slot].type
                links.append([link_id, int(source), slot, int(node_id), len(inputs), kind])
                feeds.setdefault((source, slot), []).append(link_id)
                entry["link"] = link_id
            inputs.append(entry)
        column = depth[node_id]
        rows[column] = rows.get(column, -1) + 1
        nodes.append(
            {
                "id": int(node_id),
                "type": spec.class_type,
                "pos": [column * _COLUMN_WIDTH, rows[column] * _ROW_HEIGHT],
                "size": [315, 60 + 26 * (len(inputs) + len(spec.outputs))],
                "flags": {},
                "order": order,
                "mode": 0,
                "inputs": inputs,
                "outputs": [],
                "properties": {"Node name for S&R": spec.class_type},
                "widgets_values": _widget_values(spec, node.get("inputs", {}), graph),
                **({"title": node["_meta"]["title"]} if "title" in node.get("_meta", {}) else {}),
            }
        )
    for entry in nodes:
        node_id = str(entry["id"])
        entry["outputs"] = [
            {
                "name": output.name,
                "type": output.type,
                "links": feeds.get((node_id, slot), []),
                "slot_index": slot,
            }
            for slot, output in enumerate(specs[node_id].outputs)
        ]
    return {
        "last_node_id": max((int(n) for n in graph), default=0),
        "last_link_id": len(links),
        "nodes": nodes,
        "links": links,
        "groups": [],
        "config": {},
        "extra": {},
        "version": 0.4,
    }


def _widget_values(spec: NodeSpec, inputs: Mapping[str, Any], graph: Graph) -> list[Any]:
    values: list[Any] = []
    for name, socket in spec.inputs.items():
        if socket.is_link:
            continue
        value = inputs.get(name, socket.default)
        values.append(socket.default if _is_link(value, graph) else value)
        extra = socket.config[1] if len(socket.config) > 1 else {}
        if extra.get("control_after_generate"):
            values.append("fixed")
        if extra.get("image_upload"):
            values.append("image")
    return values


def _is_link(value: Any, graph: Graph) -> bool:
    return isinstance(value, list) and len(value) == 2 and str(value[0]) in graph


def _depths(graph: Graph) -> dict[str, int]:
    """Each node's column: 0 for nodes without links in, else one past its deepest input."""
    depth: dict[str, int] = {}

    def visit(node_id: str, seen: frozenset[str]) -> int:
        if node_id in depth:
            return depth[node_id]
        if node_id in seen:  # a cycle: validation reports it; lay it out anyway
            return 0
        sources = [
            str(v[0]) for v in graph[node_id].get("inputs", {}).values() if _is_link(v, graph)
        ]
        depth[node_id] = 1 + max((visit(s, seen | {node_id}) for s in sources), default=-1)
        return depth[node_id]

    for node_id in graph:
        visit(node_id, frozenset())
    return depth
