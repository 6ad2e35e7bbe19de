"""Turn ComfyUI's validation errors into exceptions whose message names node, input and fix.

The same data comes from two places: :func:`charstudio.workflows.validate.validate_graph`
(before sending) and a server's ``POST /prompt`` 400 answer
(``{"error": {...}, "node_errors": {...}}``, see :func:`rejection_from_response`). Both
become a :class:`WorkflowRejected`, or a :class:`ModelMissing` when a model file the
graph names is not on the server. For example::

    IPAdapterApply is not a node on http://gpu2:8188 (node 'ipadapter_apply'): it was
    removed in ComfyUI_IPAdapter_plus v2; install ComfyUI_IPAdapter_plus v2 and use
    IPAdapterAdvanced instead
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from charstudio.workflows.catalog import (
    MODEL_FOLDERS,
    REMOVED_NODES,
    Catalog,
    NodePack,
    node_pack_for,
)
from charstudio.workflows.types import (
    ComfyError,
    MissingModel,
    ModelMissing,
    NodeError,
    WorkflowRejected,
)

__all__ = ["describe_error", "rejection", "rejection_from_response"]

_IPADAPTER_PACK = node_pack_for("custom_nodes.ComfyUI_IPAdapter_plus")

# What to connect when a well-known required input is missing.
_CONNECT_HINTS: dict[tuple[str, str], str] = {
    ("KSampler", "latent_image"): (
        "connect an EmptyLatentImage (text-to-image) or a VAEEncode of the reference (img2img)"
    ),
    ("VAEDecode", "samples"): "connect the KSampler's LATENT output",
    ("SaveImage", "images"): "connect VAEDecode's IMAGE output",
    ("IPAdapterAdvanced", "ipadapter"): (
        "connect an IPAdapterUnifiedLoader or an IPAdapterModelLoader"
    ),
    ("IPAdapterAdvanced", "image"): "connect a LoadImage of the reference image",
}


def rejection(
    error: ComfyError,
    node_errors: Mapping[str, NodeError],
    *,
    graph: Mapping[str, Any] | None = None,
    catalog: Catalog | None = None,
    server: str | None = None,
) -> WorkflowRejected:
    """Build the exception for a refused graph.

    Args:
        error: ComfyUI's top-level error.
        node_errors: ComfyUI's ``node_errors``.
        graph: The graph that was refused (finds a missing node's class and a link's type).
        catalog: The catalog validated against (input types for hints); built-in if absent.
        server: The server's URL, named in the message.

    Returns:
        A :class:`ModelMissing` if any model file is missing, else a
        :class:`WorkflowRejected`; the caller raises it.
    """
    where = server or "this server"
    if error["type"] in ("invalid_prompt", "missing_node_type") and not node_errors:
        message = _describe_missing_node(error, graph, where)
        return WorkflowRejected(message, error=error, node_errors=node_errors, server=server)
    if error["type"] == "prompt_no_outputs":
        message = (
            "the workflow has no output node, so ComfyUI would run nothing: add a SaveImage "
            "fed by VAEDecode's IMAGE output"
        )
        return WorkflowRejected(message, error=error, node_errors=node_errors, server=server)
    lines: list[str] = []
    missing: list[MissingModel] = []
    for node_id, entry in node_errors.items():
        for problem in entry["errors"]:
            lines.append(describe_error(node_id, entry["class_type"], problem, where, catalog))
            found = _missing_model(node_id, entry["class_type"], problem)
            if found is not None:
                missing.append(found)
    if not lines:
        lines.append(f"{error['message']}: {error['details']}".rstrip(": "))
    count = sum(len(e["errors"]) for e in node_errors.values())
    plural = "problem" if count == 1 else "problems"
    message = f"ComfyUI on {where} would refuse the workflow ({count} {plural}):\n- " + (
        "\n- ".join(lines)
    )
    if missing:
        return ModelMissing(
            message, error=error, node_errors=node_errors, missing=tuple(missing), server=server
        )
    return WorkflowRejected(message, error=error, node_errors=node_errors, server=server)


def rejection_from_response(
    body: Any, *, server: str, graph: Mapping[str, Any] | None = None
) -> WorkflowRejected:
    """Map a ``POST /prompt`` 400 answer to an exception.

    Args:
        body: The decoded JSON body (``{"error": {...}, "node_errors": {...}}``).
        server: The server's URL.
        graph: The graph that was sent.

    Returns:
        The exception to raise (a :class:`ModelMissing` for a missing model file).
    """
    if not isinstance(body, Mapping) or not isinstance(body.get("error"), Mapping):
        error = ComfyError(
            type="unexpected_response",
            message="ComfyUI refused the prompt with an answer in an unknown format",
            details=repr(body)[:500],
            extra_info={},
        )
        message = f"{server} refused the workflow with an unexpected answer: {error['details']}"
        return WorkflowRejected(message, error=error, node_errors={}, server=server)
    raw = body["error"]
    error = ComfyError(
        type=str(raw.get("type", "")),
        message=str(raw.get("message", "")),
        details=str(raw.get("details", "")),
        extra_info=dict(raw.get("extra_info") or {}),
    )
    node_errors = body.get("node_errors")
    return rejection(
        error,
        node_errors if isinstance(node_errors, Mapping) else {},
        graph=graph,
        server=server,
    )


def describe_error(
    node_id: str,
    class_type: str,
    problem: ComfyError,
    where: str = "this server",
    catalog: Catalog | None = None,
) -> str:
    """One line naming the node, the input, what is wrong and how to fix it."""
    extra = problem.get("extra_info") or {}
    name = str(extra.get("input_name") or problem["details"].split(",")[0].split(":")[0])
    head = f"node {node_id} ({class_type}) input '{name}'"
    kind, value = problem["type"], extra.get("received_value")
    if kind == "required_input_missing":
        return f"{head} is missing: {_connect_hint(class_type, name, catalog)}"
    if kind == "value_not_in_list":
        folder = MODEL_FOLDERS.get((class_type, name))
        choices = _choices(extra.get("input_config"))
        if folder is not None:
            have = ", ".join(choices) if choices else "nothing"
            return (
                f"{head}: model {value!r} not found on {where}: put it in models/{folder} "
                f"(it has: {have})"
            )
        listed = ", ".join(choices) if choices else problem["details"]
        return f"{head}: {value!r} is not one of the choices: use one of {listed}"
    if kind in ("value_bigger_than_max", "value_smaller_than_min"):
        low, high = _range(extra.get("input_config"))
        side = "above the maximum" if kind == "value_bigger_than_max" else "below the minimum"
        limit = high if kind == "value_bigger_than_max" else low
        return f"{head}: {value} is {side} {limit}: use a value from {low} to {high}"
    if kind == "return_type_mismatch":
        expected = _input_type(extra.get("input_config"))
        return (
            f"{head} is linked to an output of type {extra.get('received_type')}, but it "
            f"takes {expected}: connect a {expected} output"
        )
    return f"{head}: {problem['message']} ({problem['details']})"


def _describe_missing_node(error: ComfyError, graph: Mapping[str, Any] | None, where: str) -> str:
    extra = error.get("extra_info") or {}
    node_id = str(extra.get("node_id") or _node_id_from_details(error["details"]) or "?")
    class_type = str(extra.get("class_type") or "")
    if not class_type:
        found = re.search(r"node (\S+) does not exist", error["message"])
        if found:
            class_type = found.group(1)
        elif isinstance(graph, Mapping) and isinstance(graph.get(node_id), Mapping):
            class_type = str(graph[node_id].get("class_type", ""))
    if "missing the class_type" in error["message"]:
        return f"node '{node_id}' has no class_type: give every node a class_type"
    if not class_type:
        return (
            f"{error['message']} {error['details']}".strip()
            + ': send an API-format graph, {node_id: {"class_type": ..., "inputs": {...}}}'
        )
    head = f"{class_type} is not a node on {where} (node '{node_id}')"
    if class_type in REMOVED_NODES:
        replacement = REMOVED_NODES[class_type]
        use = f" and use {replacement} instead" if replacement else ""
        return (
            f"{head}: it was removed in ComfyUI_IPAdapter_plus v2; "
            f"install {_pack_text(_IPADAPTER_PACK)}{use}"
        )
    known = Catalog.builtin().get(class_type)
    pack = node_pack_for(known.python_module) if known is not None else None
    if pack is not None:
        return f"{head}: install {_pack_text(pack)} in ComfyUI's custom_nodes and restart it"
    return f"{head}: install the custom node pack that provides it, or fix the class name"


def _pack_text(pack: NodePack | None) -> str:
    return "ComfyUI_IPAdapter_plus v2" if pack is None else f"{pack.name} ({pack.url})"


def _node_id_from_details(details: str) -> str | None:
    found = re.search(r"#([^']+)'", details)
    return found.group(1) if found else None


def _connect_hint(class_type: str, name: str, catalog: Catalog | None) -> str:
    hint = _CONNECT_HINTS.get((class_type, name))
    if hint is not None:
        return hint
    spec = (catalog or Catalog.builtin()).get(class_type)
    socket = spec.inputs.get(name) if spec is not None else None
    if socket is None:
        return "set it"
    if socket.is_link:
        return f"connect a {socket.type} output"
    return f"set a {socket.type} value"


def _missing_model(node_id: str, class_type: str, problem: ComfyError) -> MissingModel | None:
    extra = problem.get("extra_info") or {}
    name = str(extra.get("input_name", ""))
    folder = MODEL_FOLDERS.get((class_type, name))
    if problem["type"] != "value_not_in_list" or folder is None:
        return None
    return MissingModel(
        node_id=node_id,
        class_type=class_type,
        input_name=name,
        name=str(extra.get("received_value")),
        folder=folder,
        available=tuple(_choices(extra.get("input_config"))),
    )


def _choices(config: Any) -> list[str]:
    """The option list of a published input config (both combo forms)."""
    if not isinstance(config, list | tuple) or not config:
        return []
    head = config[0]
    if isinstance(head, list | tuple):
        return [str(o) for o in head]
    if head == "COMBO" and len(config) > 1 and isinstance(config[1], Mapping):
        return [str(o) for o in config[1].get("options") or ()]
    return []


def _range(config: Any) -> tuple[Any, Any]:
    extra = config[1] if isinstance(config, list | tuple) and len(config) > 1 else {}
    if not isinstance(extra, Mapping):
        return None, None
    return extra.get("min"), extra.get("max")


def _input_type(config: Any) -> str:
    if isinstance(config, list | tuple) and config and isinstance(config[0], str):
        return config[0]
    return "the declared type"
