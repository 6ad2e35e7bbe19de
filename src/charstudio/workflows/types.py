"""Types of the workflows package: node specs, graph shapes, ComfyUI's error shapes, errors.

A ComfyUI node is described the way ComfyUI itself publishes it in ``/object_info``
(``INPUT_TYPES`` / ``RETURN_TYPES`` in ``nodes.py``): named input sockets with a type and,
for widgets, a default, a range or a list of choices; and typed outputs. Graphs are the
API format ComfyUI's ``POST /prompt`` takes::

    {"1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "x.safetensors"}},
     "2": {"class_type": "LoraLoader", "inputs": {"model": ["1", 0], ...}}}

where a two-element list ``[node_id, output_slot]`` is a link and anything else a value.

Errors follow ``validate_prompt`` in ComfyUI's ``execution.py`` exactly (``ComfyError`` and
``NodeError``), so the same code explains a rejection found here and one a server sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypedDict

from charstudio.errors import BackendError, InvalidObjectInfo

__all__ = [
    "WIDGET_TYPES",
    "ComfyError",
    "Graph",
    "InvalidObjectInfo",
    "Link",
    "MissingModel",
    "ModelMissing",
    "NodeError",
    "NodeSpec",
    "OutputSpec",
    "Socket",
    "WorkflowRejected",
]

# An API-format graph: node id -> {"class_type": ..., "inputs": {...}, "_meta": {...}}.
Graph = dict[str, dict[str, Any]]
# A link value: [source node id, output slot].
Link = list[str | int]

# Input types that are widget values rather than links (ComfyUI's validate_inputs
# coerces exactly these four; "COMBO" is a choice list).
WIDGET_TYPES = frozenset({"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"})


class ComfyError(TypedDict):
    """One problem, shaped like ComfyUI's: ``{"type", "message", "details", "extra_info"}``."""

    type: str
    message: str
    details: str
    extra_info: dict[str, Any]


class NodeError(TypedDict):
    """Problems of one node: ``node_errors[node_id]`` in ComfyUI's 400 response."""

    errors: list[ComfyError]
    dependent_outputs: list[str]
    class_type: str


@dataclass(frozen=True, slots=True)
class Socket:
    """One input of a node, as published in ``/object_info``.

    Attributes:
        name: Input name (``ckpt_name``, ``strength_model``).
        type: ``INT``, ``FLOAT``, ``STRING``, ``BOOLEAN``, ``COMBO`` for widgets; otherwise
            the link type (``MODEL``, ``IMAGE``; may be a comma list or ``*``).
        required: ``True`` for ``required`` inputs, ``False`` for ``optional`` ones.
        default: The widget default, if published.
        min: Smallest allowed number, if published.
        max: Largest allowed number, if published.
        step: Widget step, if published (ComfyUI does not enforce it).
        options: Allowed values of a combo; ``None`` for other types.
        options_enforced: ``False`` when the options are a list of files the server
            happens to have and this catalog does not know the server (the built-in
            catalog), or when the node checks the value itself (``LoadImage.image``).
        model_folder: The ``models/`` folder the combo lists (``checkpoints``, ``loras``).
        config: The input spec exactly as published (``[type, {extra}]``), echoed in
            errors as ``extra_info.input_config`` the way ComfyUI does.
    """

    name: str
    type: str
    required: bool
    default: Any = None
    min: int | float | None = None
    max: int | float | None = None
    step: int | float | None = None
    options: tuple[Any, ...] | None = None
    options_enforced: bool = True
    model_folder: str | None = None
    config: list[Any] = field(default_factory=list, compare=False)

    @property
    def is_link(self) -> bool:
        """Whether the input takes a link (another node's output) rather than a value."""
        return self.type not in WIDGET_TYPES


@dataclass(frozen=True, slots=True)
class OutputSpec:
    """One output slot of a node: its published name and type."""

    name: str
    type: str
    is_list: bool = False


@dataclass(frozen=True, slots=True)
class NodeSpec:
    """A node class: its inputs (required first, in ComfyUI's order) and outputs.

    Attributes:
        class_type: The key in ``NODE_CLASS_MAPPINGS`` (``IPAdapterAdvanced``).
        inputs: Input sockets by name.
        outputs: Output slots in order; a link's slot number indexes this.
        output_node: Whether ComfyUI treats the node as an output (``SaveImage``).
        display_name: Name shown in ComfyUI's editor.
        category: Menu category.
        python_module: Where the class lives (``nodes``,
            ``custom_nodes.ComfyUI_IPAdapter_plus``); names the node pack to install.
    """

    class_type: str
    inputs: Mapping[str, Socket]
    outputs: tuple[OutputSpec, ...]
    output_node: bool = False
    display_name: str = ""
    category: str = ""
    python_module: str = ""

    def output_slot(self, name: str) -> int:
        """The slot number of the output called ``name`` (or, failing that, typed ``name``).

        Raises:
            KeyError: no output has that name, or several have that type.
        """
        for slot, output in enumerate(self.outputs):
            if output.name == name:
                return slot
        typed = [slot for slot, output in enumerate(self.outputs) if output.type == name]
        if len(typed) == 1:
            return typed[0]
        names = ", ".join(o.name for o in self.outputs) or "none"
        raise KeyError(f"{self.class_type} has no single output {name!r} (outputs: {names})")


@dataclass(frozen=True, slots=True)
class MissingModel:
    """A model file a graph names that the server does not have."""

    node_id: str
    class_type: str
    input_name: str
    name: str
    folder: str
    available: tuple[str, ...]


class WorkflowRejected(BackendError):
    """ComfyUI refuses (or would refuse) a graph; carries ComfyUI's own error data.

    Attributes:
        error: The top-level error (``type``, ``message``, ``details``, ``extra_info``).
        node_errors: ``node_errors`` keyed by node id, as in a ``POST /prompt`` 400 answer.
        server: The server that refused it, or ``None`` when found by local validation.
    """

    def __init__(
        self,
        message: str,
        *,
        error: ComfyError,
        node_errors: Mapping[str, NodeError],
        server: str | None = None,
    ) -> None:
        super().__init__(message)
        self.error = error
        self.node_errors = dict(node_errors)
        self.server = server


class ModelMissing(WorkflowRejected):
    """A graph names a model file (checkpoint, LoRA, IP-Adapter ...) the server lacks.

    Attributes:
        missing: Each missing file with the folder it belongs in.
    """

    def __init__(
        self,
        message: str,
        *,
        error: ComfyError,
        node_errors: Mapping[str, NodeError],
        missing: tuple[MissingModel, ...],
        server: str | None = None,
    ) -> None:
        super().__init__(message, error=error, node_errors=node_errors, server=server)
        self.missing = missing
