"""Validate an API-format graph the way ComfyUI's ``validate_prompt`` does, before sending it.

The walk, the checks, the error ``type`` strings and messages follow ``validate_prompt`` /
``validate_inputs`` in ComfyUI's ``execution.py`` (0.3.64), so a graph that passes here
is accepted by a server whose ``/object_info`` the catalog came from, and one that fails
gets the same ``node_errors`` ComfyUI would answer with:

1. every node names a class the server has (else ``invalid_prompt``, first one only);
2. at least one output node exists (else ``prompt_no_outputs``);
3. from each output node, upstream through the links: required inputs present
   (``required_input_missing``), links well formed (``bad_linked_input``) and typed like
   the input (``return_type_mismatch``), values convertible (``invalid_input_type``), in
   range (``value_smaller_than_min`` / ``value_bigger_than_max``) and among the choices
   (``value_not_in_list``). Nodes no output depends on are not checked, as in ComfyUI.

Where ComfyUI would crash or silently coerce, this is stricter and says so in the
message: a link to a missing node or slot (ComfyUI: an exception during validation), a
cycle, a non-integral number for an ``INT`` (ComfyUI truncates), a non-boolean for a
``BOOLEAN`` (ComfyUI takes ``bool("false")`` as true), a value where a link belongs. One
check goes past validation to a failure ComfyUI only meets mid-run: an IP-Adapter apply
node fed by ``IPAdapterModelLoader`` (which loads no image encoder) without a
``clip_vision`` link fails with "CLIPVision model not present in the pipeline"
(``clip_vision_missing``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from charstudio.workflows.catalog import Catalog
from charstudio.workflows.rejections import rejection
from charstudio.workflows.types import ComfyError, NodeError, Socket

__all__ = ["ValidationResult", "check_graph", "validate_graph"]

# ComfyUI leaves out option lists longer than this from error details.
_MAX_LISTED_OPTIONS = 20
# IPAdapter_plus apply nodes that need a CLIP vision model when the adapter comes from
# IPAdapterModelLoader rather than a unified loader (IPAdapterPlus.py, ipadapter_execute).
_NEEDS_CLIP_VISION = frozenset({"IPAdapterAdvanced", "IPAdapterFaceID", "IPAdapter"})


@dataclass(frozen=True)
class ValidationResult:
    """What ComfyUI would answer to ``POST /prompt`` with this graph.

    Attributes:
        error: The top-level error, ``None`` when at least one output validates.
        node_errors: Problems by node id (may be non-empty even when ``error`` is ``None``:
            ComfyUI then runs the good outputs and drops the others).
        good_outputs: Output nodes that would run.
    """

    error: ComfyError | None
    node_errors: dict[str, NodeError]
    good_outputs: tuple[str, ...]

    @property
    def ok(self) -> bool:
        """Whether every output would run: no top-level error and no node errors."""
        return self.error is None and not self.node_errors


def validate_graph(graph: Mapping[str, Any], catalog: Catalog) -> ValidationResult:
    """Validate ``graph`` against ``catalog`` as ComfyUI's ``validate_prompt`` does.

    Args:
        graph: An API-format graph (``{"1": {"class_type": ..., "inputs": {...}}}``).
        catalog: The nodes of the server it is meant for (or the built-in catalog).

    Returns:
        ComfyUI-shaped errors; nothing is raised for a bad graph.
    """
    # 1. Every node names a known class; collect the output nodes.
    if not isinstance(graph, Mapping):
        return _failed("invalid_prompt", "The prompt is not a JSON object of nodes", "")
    outputs: list[str] = []
    for node_id, node in graph.items():
        if not isinstance(node, Mapping) or "class_type" not in node:
            return _failed(
                "invalid_prompt",
                "Cannot execute because a node is missing the class_type property.",
                f"Node ID '#{node_id}'",
            )
        spec = catalog.get(str(node["class_type"]))
        if spec is None:
            return _failed(
                "invalid_prompt",
                f"Cannot execute because node {node['class_type']} does not exist.",
                f"Node ID '#{node_id}'",
            )
        if spec.output_node:
            outputs.append(node_id)
    # 2. Something must produce an output.
    if not outputs:
        return _failed("prompt_no_outputs", "Prompt has no outputs", "")
    # 3. Walk upstream from every output node.
    walker = _Walker(graph, catalog)
    node_errors: dict[str, NodeError] = {}
    good: list[str] = []
    failed: list[tuple[str, list[ComfyError]]] = []
    for output in outputs:
        valid, reasons = walker.validate(output)
        if valid:
            good.append(output)
            continue
        failed.append((output, reasons))
        # As ComfyUI does: every failed node seen so far depends on this output.
        for node_id, (node_valid, node_reasons) in walker.validated.items():
            if not node_valid and node_reasons:
                entry = node_errors.setdefault(
                    node_id,
                    NodeError(
                        errors=node_reasons,
                        dependent_outputs=[],
                        class_type=str(graph[node_id]["class_type"]),
                    ),
                )
                entry["dependent_outputs"].append(output)
    if good:
        return ValidationResult(error=None, node_errors=node_errors, good_outputs=tuple(good))
    details = "\n".join(f"{e['message']}: {e['details']}" for _, errs in failed for e in errs)
    error = ComfyError(
        type="prompt_outputs_failed_validation",
        message="Prompt outputs failed validation",
        details=details,
        extra_info={},
    )
    return ValidationResult(error=error, node_errors=node_errors, good_outputs=())


def check_graph(graph: Mapping[str, Any], catalog: Catalog, *, server: str | None = None) -> None:
    """Validate ``graph`` and raise if ComfyUI would refuse any part of it.

    Args:
        graph: An API-format graph.
        catalog: The target server's catalog (or the built-in one).
        server: The server's URL, named in the message.

    Raises:
        ModelMissing: a model file the graph names is not on the server.
        WorkflowRejected: any other problem; the message names node, input and fix.
    """
    result = validate_graph(graph, catalog)
    if result.ok:
        return
    error = result.error or ComfyError(
        type="prompt_outputs_failed_validation",
        message="Some prompt outputs failed validation",
        details="",
        extra_info={},
    )
    raise rejection(error, result.node_errors, graph=graph, catalog=catalog, server=server)


def _failed(kind: str, message: str, details: str) -> ValidationResult:
    error = ComfyError(type=kind, message=message, details=details, extra_info={})
    return ValidationResult(error=error, node_errors={}, good_outputs=())


class _Walker:
    """Validates nodes depth-first from an output, remembering each result."""

    def __init__(self, graph: Mapping[str, Any], catalog: Catalog) -> None:
        self.graph = graph
        self.catalog = catalog
        self.validated: dict[str, tuple[bool, list[ComfyError]]] = {}
        self._visiting: set[str] = set()

    def validate(self, node_id: str) -> tuple[bool, list[ComfyError]]:
        if node_id in self.validated:
            return self.validated[node_id]
        self._visiting.add(node_id)
        node = self.graph[node_id]
        spec = self.catalog.spec(str(node["class_type"]))
        inputs = node.get("inputs", {})
        errors: list[ComfyError] = []
        upstream_ok = True
        if not isinstance(inputs, Mapping):
            errors.append(_error("invalid_prompt", "Node inputs are not an object", "inputs", {}))
            inputs = {}
        for name, socket in spec.inputs.items():
            if name not in inputs:
                if socket.required:
                    errors.append(
                        _error(
                            "required_input_missing",
                            "Required input is missing",
                            name,
                            {"input_name": name},
                        )
                    )
                continue
            value = inputs[name]
            if isinstance(value, list):
                problem, linked_ok = self._check_link(node_id, socket, value)
                upstream_ok = upstream_ok and linked_ok
            else:
                problem = _check_value(socket, value)
            if problem is not None:
                errors.append(problem)
        errors.extend(self._run_time_needs(spec.class_type, inputs))
        self._visiting.discard(node_id)
        result = (not errors and upstream_ok, errors)
        self.validated[node_id] = result
        return result

    def _run_time_needs(self, class_type: str, inputs: Mapping[str, Any]) -> list[ComfyError]:
        """Problems ComfyUI would only meet while running (see the module docstring)."""
        link = inputs.get("ipadapter")
        if class_type not in _NEEDS_CLIP_VISION or "clip_vision" in inputs:
            return []
        if not isinstance(link, list) or not link or not isinstance(link[0], str):
            return []
        source = self.graph.get(link[0])
        if not isinstance(source, Mapping) or source.get("class_type") != "IPAdapterModelLoader":
            return []
        message = "IPAdapterModelLoader loads no CLIP vision model"
        details = "clip_vision: connect a CLIPVisionLoader (ViT-H for most presets)"
        return [_error("clip_vision_missing", message, details, {"input_name": "clip_vision"})]

    def _check_link(
        self, node_id: str, socket: Socket, link: list[Any]
    ) -> tuple[ComfyError | None, bool]:
        """Check one link; returns the problem (if any) and whether upstream validated."""
        name, info = socket.name, {"input_name": socket.name, "input_config": socket.config}
        if len(link) != 2:
            message = "Bad linked input, must be a length-2 list of [node_id, slot_index]"
            return _error("bad_linked_input", message, name, info | {"received_value": link}), True
        source_id, slot = link
        source = self.graph.get(source_id) if isinstance(source_id, str) else None
        if source is None:
            details = f"{name}: linked node {source_id!r} does not exist in the graph"
            return _error("bad_linked_input", "Linked node does not exist", details, info), True
        spec = self.catalog.spec(str(source["class_type"]))
        if isinstance(slot, bool) or not isinstance(slot, int) or not 0 <= slot < len(spec.outputs):
            names = ", ".join(f"{i}={o.name}" for i, o in enumerate(spec.outputs)) or "none"
            details = f"{name}: {spec.class_type} has no output slot {slot!r} (outputs: {names})"
            message = "Linked output slot does not exist"
            return _error("bad_linked_input", message, details, info), True
        received = spec.outputs[slot].type
        if not _types_match(received, socket):
            expected = socket.type
            details = f"{name}, received_type({received}) mismatch input_type({expected})"
            extra = info | {"received_type": received, "linked_node": link}
            message = "Return type mismatch between linked nodes"
            return _error("return_type_mismatch", message, details, extra), True
        if source_id in self._visiting:
            details = f"{name}: node {source_id!r} also depends on node {node_id!r}"
            return _error("dependency_cycle", "Dependency cycle detected", details, info), True
        upstream_valid, _ = self.validate(source_id)
        return None, upstream_valid


def _types_match(received: str, socket: Socket) -> bool:
    """ComfyUI's ``validate_node_input``: ``*`` matches anything, comma lists overlap."""
    expected = socket.type
    if received == expected or "*" in (received, expected):
        return True
    if expected == "COMBO":
        return received == "COMBO"
    received_set = {t.strip() for t in received.split(",")}
    expected_set = {t.strip() for t in expected.split(",")}
    return bool(received_set & expected_set)


def _check_value(socket: Socket, value: Any) -> ComfyError | None:
    """Check a widget value: type, range, choices (ComfyUI's order)."""
    name = socket.name
    info: dict[str, Any] = {"input_name": name, "input_config": socket.config}
    if isinstance(value, dict) and "__value__" in value:  # a list-valued widget, wrapped
        value = value["__value__"]
    if socket.is_link:
        message = f"Input {name} takes a link to a {socket.type} output, not a value"
        return _error("invalid_input_type", message, f"{name}, {value!r}", info)
    converted, why = _convert(socket.type, value)
    if why is not None:
        message = f"Failed to convert an input value to a {socket.type} value"
        extra = info | {"received_value": value, "exception_message": why}
        return _error("invalid_input_type", message, f"{name}, {value}, {why}", extra)
    if socket.min is not None and converted < socket.min:
        message = f"Value {converted} smaller than min of {socket.min}"
        return _error("value_smaller_than_min", message, name, info | {"received_value": converted})
    if socket.max is not None and converted > socket.max:
        message = f"Value {converted} bigger than max of {socket.max}"
        return _error("value_bigger_than_max", message, name, info | {"received_value": converted})
    if socket.options is not None and socket.options_enforced and converted not in socket.options:
        options = list(socket.options)
        config: list[Any] | None = socket.config
        if len(options) > _MAX_LISTED_OPTIONS:
            listed, config = f"(list of length {len(options)})", None
        else:
            listed = str(options)
        details = f"{name}: '{converted}' not in {listed}"
        extra = {"input_name": name, "input_config": config, "received_value": converted}
        return _error("value_not_in_list", "Value not in list", details, extra)
    return None


def _convert(kind: str, value: Any) -> tuple[Any, str | None]:
    """Convert like ComfyUI (``int()``, ``float()``, ``str()``) but refuse lossy cases."""
    if kind == "INT":
        if isinstance(value, bool):
            return value, "a boolean is not an integer"
        if isinstance(value, float):
            if not value.is_integer():
                return value, f"{value} is not a whole number (ComfyUI would truncate it)"
            return int(value), None
        if isinstance(value, int):
            return value, None
        if isinstance(value, str):
            try:
                return int(value), None
            except ValueError as exc:
                return value, str(exc)
        return value, f"a {type(value).__name__} is not an integer"
    if kind == "FLOAT":
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            return value, f"a {type(value).__name__} is not a number"
        try:
            return float(value), None
        except ValueError as exc:
            return value, str(exc)
    if kind == "STRING":
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            return value, f"a {type(value).__name__} is not text"
        return str(value), None
    if kind == "BOOLEAN":
        if not isinstance(value, bool):
            return value, f"{value!r} is not true or false (ComfyUI would take bool() of it)"
        return value, None
    return value, None


def _error(kind: str, message: str, details: str, extra_info: dict[str, Any]) -> ComfyError:
    return ComfyError(type=kind, message=message, details=details, extra_info=extra_info)
