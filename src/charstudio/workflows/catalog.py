"""The node catalog: which ComfyUI nodes exist, with their inputs, ranges, choices and outputs.

Two sources, one parser:

* the **built-in** catalog, ``data/object_info_builtin.json``: the nodes charstudio emits,
  copied verbatim from a real ComfyUI 0.3.64 + ComfyUI_IPAdapter_plus 2.0.0 +
  comfyui_controlnet_aux 1.1.5 ``/object_info`` (tests/data/comfyui/README.md) by
  :func:`extract_builtin`; a test checks the copy has not drifted. Its model-file lists
  are those of the recording machine, so they are not enforced;
* a **live** catalog from a server's ``/object_info`` (:meth:`Catalog.from_object_info`),
  whose model lists are the files that server really has.

A live catalog always wins over the built-in one (:func:`merge_catalogs`). ComfyUI
publishes combos in two forms and both are read: the legacy ``[["a", "b"], {...}]`` and
the V3 ``["COMBO", {"options": ["a", "b"], ...}]`` (``comfy_api/latest/_io.py``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

from charstudio.workflows.types import InvalidObjectInfo, NodeSpec, OutputSpec, Socket

__all__ = [
    "BUILTIN_CLASS_TYPES",
    "MODEL_FOLDERS",
    "NODE_PACKS",
    "REMOVED_NODES",
    "Catalog",
    "NodePack",
    "extract_builtin",
    "merge_catalogs",
    "node_pack_for",
]

# The nodes the built-in catalog describes: the ones the builders emit plus close
# relatives a user's template may use.
BUILTIN_CLASS_TYPES: tuple[str, ...] = (
    # ComfyUI core (nodes.py)
    "CheckpointLoaderSimple",
    "LoraLoader",
    "LoraLoaderModelOnly",
    "VAELoader",
    "CLIPSetLastLayer",
    "CLIPTextEncode",
    "EmptyLatentImage",
    "KSampler",
    "VAEDecode",
    "VAEEncode",
    "LoadImage",
    "ImageScale",
    "SaveImage",
    "PreviewImage",
    "CLIPVisionLoader",
    "CLIPVisionEncode",
    "ControlNetLoader",
    "ControlNetApplyAdvanced",
    # ComfyUI_IPAdapter_plus v2 (IPAdapterPlus.py)
    "IPAdapterUnifiedLoader",
    "IPAdapterModelLoader",
    "IPAdapterAdvanced",
    "IPAdapter",
    "IPAdapterUnifiedLoaderFaceID",
    "IPAdapterFaceID",
    "IPAdapterInsightFaceLoader",
    "PrepImageForClipVision",
    # comfyui_controlnet_aux (node_wrappers/openpose.py, dwpose.py)
    "OpenposePreprocessor",
    "DWPreprocessor",
)

# (class_type, input) -> the models/ folder whose file list the combo shows
# (folder_paths.py; "ipadapter" is registered by ComfyUI_IPAdapter_plus).
MODEL_FOLDERS: dict[tuple[str, str], str] = {
    ("CheckpointLoaderSimple", "ckpt_name"): "checkpoints",
    ("LoraLoader", "lora_name"): "loras",
    ("LoraLoaderModelOnly", "lora_name"): "loras",
    ("VAELoader", "vae_name"): "vae",
    ("CLIPVisionLoader", "clip_name"): "clip_vision",
    ("ControlNetLoader", "control_net_name"): "controlnet",
    ("IPAdapterModelLoader", "ipadapter_file"): "ipadapter",
    ("UpscaleModelLoader", "model_name"): "upscale_models",
}

# Inputs a node checks itself (VALIDATE_INPUTS): ComfyUI skips the combo check for them.
# LoadImage checks that the file exists in input/, so an image uploaded after
# /object_info was read still validates.
_NODE_CHECKED_INPUTS: frozenset[tuple[str, str]] = frozenset({("LoadImage", "image")})


@dataclass(frozen=True, slots=True)
class NodePack:
    """A custom node pack: what to install when one of its nodes is missing."""

    name: str
    url: str


# python_module prefix (as /object_info publishes it) -> the pack to install.
NODE_PACKS: dict[str, NodePack] = {
    "custom_nodes.ComfyUI_IPAdapter_plus": NodePack(
        "ComfyUI_IPAdapter_plus v2", "https://github.com/cubiq/ComfyUI_IPAdapter_plus"
    ),
    "custom_nodes.comfyui_controlnet_aux": NodePack(
        "comfyui_controlnet_aux", "https://github.com/Fannovel16/comfyui_controlnet_aux"
    ),
}

# Nodes removed from ComfyUI_IPAdapter_plus by the v2 rewrite (commit 643cb81,
# 2024-03-23) -> their replacement ("ipadapter advanced is a drop in replacement for the
# old ipadapterapply", maintainer in issue #559). ``None``: no direct replacement.
REMOVED_NODES: dict[str, str | None] = {
    "IPAdapterApply": "IPAdapterAdvanced",
    "IPAdapterApplyFaceID": "IPAdapterFaceID",
    "IPAdapterApplyEncoded": "IPAdapterEmbeds",
    "IPAdapterBatchEmbeds": "IPAdapterCombineEmbeds",
    "InsightFaceLoader": "IPAdapterInsightFaceLoader",
    "IPAdapterTilesMasked": "IPAdapterTiled",
    "PrepImageForInsightFace": None,
}


@dataclass(frozen=True)
class Catalog:
    """Node specs by class type, and where they came from.

    Attributes:
        nodes: Specs by ``class_type``.
        source: Where the specs came from (a server URL, or the built-in recording).
        complete: Whether ``nodes`` lists every node the source has, so that a class
            absent here is absent there (``False`` for a partial or built-in catalog).
        skipped: Node classes the source published in a shape that could not be read,
            each with the reason; they are treated as unknown.
    """

    nodes: Mapping[str, NodeSpec]
    source: str
    complete: bool = True
    skipped: tuple[str, ...] = ()

    def __contains__(self, class_type: object) -> bool:
        return class_type in self.nodes

    def __len__(self) -> int:
        return len(self.nodes)

    def get(self, class_type: str) -> NodeSpec | None:
        """The spec of ``class_type``, or ``None`` if the catalog does not have it."""
        return self.nodes.get(class_type)

    def combo(self, class_type: str, name: str) -> tuple[str, ...]:
        """The values a combo input allows (``KSampler``'s ``sampler_name``), or ``()``
        when the catalog does not know the node or the input is not a combo."""
        spec = self.nodes.get(class_type)
        socket = spec.inputs.get(name) if spec is not None else None
        if socket is None or socket.options is None:
            return ()
        return tuple(str(option) for option in socket.options)

    def spec(self, class_type: str) -> NodeSpec:
        """The spec of ``class_type``.

        Raises:
            KeyError: the catalog has no such node.
        """
        found = self.nodes.get(class_type)
        if found is None:
            raise KeyError(f"{class_type} is not in the node catalog ({self.source})")
        return found

    @classmethod
    def from_object_info(
        cls,
        object_info: Mapping[str, Any],
        *,
        source: str = "live server",
        complete: bool = True,
        model_lists_known: bool = True,
    ) -> Catalog:
        """Read a catalog from ComfyUI's ``GET /object_info`` answer.

        Args:
            object_info: The decoded JSON: ``{class_type: {"input": ..., "output": ...}}``.
            source: Where it came from (a server URL), quoted in error messages.
            complete: Whether this is the full ``/object_info`` (not ``/object_info/X``).
            model_lists_known: Whether the combos of model files list what the server
                has (``True`` for a live server).

        Returns:
            The catalog; nodes in a shape that cannot be read are listed in ``skipped``.

        Raises:
            InvalidObjectInfo: the answer is not a mapping of node classes at all.
        """
        if not isinstance(object_info, Mapping):
            raise InvalidObjectInfo(
                f"/object_info from {source} is a {type(object_info).__name__}, not a JSON "
                "object of node classes: check that the URL points at a ComfyUI server"
            )
        nodes: dict[str, NodeSpec] = {}
        skipped: list[str] = []
        for class_type, info in object_info.items():
            try:
                nodes[class_type] = _parse_node(class_type, info, model_lists_known)
            except (TypeError, ValueError, KeyError) as exc:
                skipped.append(f"{class_type}: {exc}")
        return cls(nodes=nodes, source=source, complete=complete, skipped=tuple(skipped))

    @classmethod
    def builtin(cls) -> Catalog:
        """The catalog shipped with charstudio (recorded from ComfyUI 0.3.64)."""
        return _builtin()


@lru_cache(maxsize=1)
def _builtin() -> Catalog:
    text = resources.files("charstudio.workflows").joinpath("data/object_info_builtin.json")
    data = json.loads(text.read_text(encoding="utf-8"))
    return Catalog.from_object_info(
        data,
        source="the built-in catalog (ComfyUI 0.3.64)",
        complete=False,
        model_lists_known=False,
    )


def merge_catalogs(live: Catalog, base: Catalog) -> Catalog:
    """Overlay a live catalog on a base one; the live spec of a node always wins.

    A node only the base knows is kept when the live catalog is partial (say, read with
    ``/object_info/<class>``) and dropped when it is complete: a complete live catalog
    says the server does not have that node, and validation must report it missing.

    Args:
        live: What a server published.
        base: Usually :meth:`Catalog.builtin`.

    Returns:
        The merged catalog, named after the live source.
    """
    nodes = dict(live.nodes) if live.complete else {**base.nodes, **live.nodes}
    return Catalog(nodes=nodes, source=live.source, complete=live.complete, skipped=live.skipped)


def extract_builtin(object_info: Mapping[str, Any]) -> dict[str, Any]:
    """The subset of a recorded ``/object_info`` that becomes the built-in catalog.

    Raises:
        KeyError: the recording lacks one of :data:`BUILTIN_CLASS_TYPES`.
    """
    return {class_type: object_info[class_type] for class_type in BUILTIN_CLASS_TYPES}


def node_pack_for(python_module: str) -> NodePack | None:
    """The custom node pack a ``python_module`` belongs to, if it is one we know."""
    for prefix, pack in NODE_PACKS.items():
        if python_module == prefix or python_module.startswith(prefix + "."):
            return pack
    return None


def _parse_node(class_type: str, info: Any, model_lists_known: bool) -> NodeSpec:
    if not isinstance(info, Mapping):
        raise TypeError("node info is not an object")
    declared = info.get("input", {})
    if not isinstance(declared, Mapping):
        raise TypeError("'input' is not an object")
    inputs: dict[str, Socket] = {}
    for category in ("required", "optional"):
        group = declared.get(category) or {}
        if not isinstance(group, Mapping):
            raise TypeError(f"'input.{category}' is not an object")
        for name, spec in group.items():
            inputs[name] = _parse_socket(
                class_type, name, spec, category == "required", model_lists_known
            )
    return NodeSpec(
        class_type=class_type,
        inputs=inputs,
        outputs=_parse_outputs(info),
        output_node=bool(info.get("output_node", False)),
        display_name=str(info.get("display_name") or class_type),
        category=str(info.get("category") or ""),
        python_module=str(info.get("python_module") or ""),
    )


def _parse_socket(
    class_type: str, name: str, spec: Any, required: bool, model_lists_known: bool
) -> Socket:
    if not isinstance(spec, list | tuple) or not spec:
        raise ValueError(f"input {name!r} has no type")
    head, extra = spec[0], spec[1] if len(spec) > 1 and isinstance(spec[1], Mapping) else {}
    options: tuple[Any, ...] | None = None
    if isinstance(head, list | tuple):  # legacy combo: [["a", "b"], {...}]
        kind, options = "COMBO", tuple(head)
    elif head == "COMBO":  # V3 combo: ["COMBO", {"options": ["a", "b"]}]
        kind, options = "COMBO", tuple(extra.get("options") or ())
    elif isinstance(head, str):
        kind = head
    else:
        raise ValueError(f"input {name!r} has a type of {type(head).__name__}")
    folder = MODEL_FOLDERS.get((class_type, name))
    enforced = options is not None and (class_type, name) not in _NODE_CHECKED_INPUTS
    if folder is not None and not model_lists_known:
        enforced = False
    return Socket(
        name=name,
        type=kind,
        required=required,
        default=extra.get("default"),
        min=_number(extra.get("min")),
        max=_number(extra.get("max")),
        step=_number(extra.get("step")),
        options=options,
        options_enforced=enforced,
        model_folder=folder,
        config=[head, dict(extra)],
    )


def _parse_outputs(info: Mapping[str, Any]) -> tuple[OutputSpec, ...]:
    types = info.get("output") or []
    names = info.get("output_name") or []
    is_list = info.get("output_is_list") or []
    if not isinstance(types, list | tuple):
        raise TypeError("'output' is not a list")
    outputs = []
    for slot, kind in enumerate(types):
        type_name = kind if isinstance(kind, str) else "COMBO"  # a combo output is a list
        name = names[slot] if slot < len(names) and isinstance(names[slot], str) else type_name
        outputs.append(
            OutputSpec(
                name=name, type=type_name, is_list=bool(slot < len(is_list) and is_list[slot])
            )
        )
    return tuple(outputs)


def _number(value: Any) -> int | float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value
