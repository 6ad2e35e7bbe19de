"""A small helper that writes API-format graphs against the node catalog.

Builders add nodes by class and named inputs, and link outputs by *name*
(``checkpoint.out("VAE")``), never by slot number: the slot comes from the catalog's
``RETURN_TYPES`` / ``RETURN_NAMES``, so a builder cannot link the wrong slot, and an input
name that the node does not declare fails at build time instead of being silently
ignored by ComfyUI.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass

from charstudio.workflows.catalog import Catalog
from charstudio.workflows.types import Graph, Link, NodeSpec

__all__ = ["GraphBuilder", "InputValue", "NodeRef"]

InputValue = Link | str | int | float | bool


@dataclass(frozen=True, slots=True)
class NodeRef:
    """A node added to a graph: its id and spec."""

    id: str
    spec: NodeSpec

    def out(self, name: str) -> Link:
        """A link to the output called ``name`` (or the only output of type ``name``)."""
        return [self.id, self.spec.output_slot(name)]


class GraphBuilder:
    """Collects nodes with ids ``"1"``, ``"2"``, ... in the order they are added.

    Args:
        catalog: Specs used for output slots and input names; the built-in catalog by
            default (slots and names do not vary between servers of a node version).
    """

    def __init__(self, catalog: Catalog | None = None) -> None:
        self._catalog = catalog or Catalog.builtin()
        self._nodes: Graph = {}

    def add(
        self, class_type: str, inputs: Mapping[str, InputValue], *, title: str | None = None
    ) -> NodeRef:
        """Add a node.

        Args:
            class_type: Node class, which must be in the catalog.
            inputs: Values and links by input name.
            title: Shown as the node's title when the graph is opened in ComfyUI.

        Returns:
            A reference to link the node's outputs from.

        Raises:
            KeyError: the class or an input name is not in the catalog (a builder bug).
            ValueError: a required input is missing (a builder bug).
        """
        spec = self._catalog.spec(class_type)
        unknown = sorted(set(inputs) - set(spec.inputs))
        if unknown:
            raise KeyError(f"{class_type} has no input(s) {', '.join(unknown)}")
        missing = [n for n, s in spec.inputs.items() if s.required and n not in inputs]
        if missing:
            raise ValueError(f"{class_type} needs input(s) {', '.join(missing)}")
        node_id = str(len(self._nodes) + 1)
        node: dict[str, object] = {"class_type": class_type, "inputs": dict(inputs)}
        if title is not None:
            node["_meta"] = {"title": title}
        self._nodes[node_id] = node
        return NodeRef(id=node_id, spec=spec)

    def graph(self) -> Graph:
        """The graph so far, as a new plain dict."""
        return copy.deepcopy(self._nodes)
