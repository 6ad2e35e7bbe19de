"""Model files that ComfyUI_IPAdapter_plus's unified loaders look for by name at run time.

``IPAdapterUnifiedLoader`` and ``IPAdapterUnifiedLoaderFaceID`` take a preset, not a file:
the files are found while the prompt runs, by the regexes of IPAdapter_plus 2.0.0
``utils.py`` (``get_ipadapter_file``, ``get_clipvision_file``; docs/reference section 4.2),
and a missing one fails mid-run ("IPAdapter model not found."). So before queueing, the
pool lists ``models/ipadapter`` and ``models/clip_vision`` (``GET /models/<folder>``) and
checks that the preset's files are there, the same way.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from charstudio.workflows import IPADAPTER_PRESETS, ModelFamilyName, ModelMissing
from charstudio.workflows.types import ComfyError, Graph, MissingModel, NodeError

__all__ = ["FileNeed", "missing_files", "preset_needs"]

_VIT_H = r"(ViT.H.14.*s32B.b79K|ipadapter.*sd15|sd1.?5.*model)\.(bin|safetensors)$"
_VIT_G = r"(ViT.bigG.14.*39B.b160k|ipadapter.*sdxl|sdxl.*model)\.(bin|safetensors)$"
# preset -> (sd15 pattern, sdxl pattern) for models/ipadapter (utils.py get_ipadapter_file).
_ADAPTER_PATTERNS: dict[str, tuple[str | None, str | None]] = {
    "LIGHT - SD1.5 only (low strength)": (r"sd15.light", None),
    "STANDARD (medium strength)": (r"ip.adapter.sd15\.", r"ip.adapter.sdxl.vit.h"),
    "VIT-G (medium strength)": (r"sd15.vit.g", r"ip.adapter.sdxl\."),
    "PLUS (high strength)": (r"ip.adapter.plus.sd15", r"plus.sdxl.vit.h"),
    "PLUS FACE (portraits)": (r"plus.face.sd15", r"plus.face.sdxl.vit.h"),
    "FULL FACE - SD1.5 only (portraits stronger)": (r"full.face.sd15", None),
    "FACEID": (r"faceid.sd15", r"faceid.sdxl"),
    "FACEID PLUS V2": (r"faceid.plusv2.sd15", r"faceid.plusv2.sdxl"),
    "FACEID PORTRAIT (style transfer)": (r"portrait.(v11.)?sd15", r"portrait.sdxl"),
}
_UNIFIED_LOADERS = ("IPAdapterUnifiedLoader", "IPAdapterUnifiedLoaderFaceID")


@dataclass(frozen=True, slots=True)
class FileNeed:
    """A file a node will look for at run time.

    Attributes:
        node_id: The node that needs it.
        class_type: Its class.
        input_name: The input that names it (``preset``).
        value: That input's value.
        folder: The ``models/`` folder searched.
        pattern: The regex the node matches file names with (case-insensitive).
        example: The usual file name, for the message.
    """

    node_id: str
    class_type: str
    input_name: str
    value: str
    folder: str
    pattern: str
    example: str


def preset_needs(graph: Graph, family: ModelFamilyName) -> list[FileNeed]:
    """The IP-Adapter and CLIP vision files the graph's unified loaders will look for."""
    needs: list[FileNeed] = []
    for node_id, node in graph.items():
        if node.get("class_type") not in _UNIFIED_LOADERS:
            continue
        preset_name = str(node.get("inputs", {}).get("preset", ""))
        preset = IPADAPTER_PRESETS.get(preset_name)
        patterns = _ADAPTER_PATTERNS.get(preset_name)
        if preset is None or patterns is None:
            continue
        adapter = patterns[0] if family == "sd15" else patterns[1]
        common = (node_id, str(node["class_type"]), "preset", preset_name)
        if adapter is not None:
            example = preset.ipadapter_file(family) or adapter
            needs.append(FileNeed(*common, "ipadapter", adapter, example))
        vit_g = preset_name.startswith("VIT-G")
        needs.append(
            FileNeed(*common, "clip_vision", _VIT_G if vit_g else _VIT_H, preset.clip_vision)
        )
    return needs


def missing_files(
    needs: Sequence[FileNeed], listed: Mapping[str, Sequence[str]], *, server: str
) -> ModelMissing | None:
    """The error for the needs no listed file satisfies, or ``None``.

    Args:
        needs: From :func:`preset_needs`.
        listed: ``models/<folder>`` listings by folder.
        server: The server's URL.
    """
    missing = [
        need
        for need in needs
        if not any(re.search(need.pattern, name, re.IGNORECASE) for name in listed[need.folder])
    ]
    if not missing:
        return None
    lines = []
    node_errors: dict[str, NodeError] = {}
    for need in missing:
        have = ", ".join(listed[need.folder]) or "nothing"
        lines.append(
            f"node {need.node_id} ({need.class_type}) input '{need.input_name}' = "
            f"{need.value!r}: model {need.example!r} not found on {server}: put it in "
            f"models/{need.folder} (it has: {have})"
        )
        problem = ComfyError(
            type="value_not_in_list",
            message="Model file not found",
            details=f"{need.folder}: no file matching {need.pattern}",
            extra_info=_extra(need),
        )
        entry = node_errors.setdefault(
            need.node_id, NodeError(errors=[], dependent_outputs=[], class_type=need.class_type)
        )
        entry["errors"].append(problem)
    plural = "problem" if len(lines) == 1 else "problems"
    message = (
        f"ComfyUI on {server} would fail the workflow while running ({len(lines)} {plural}):\n- "
        + "\n- ".join(lines)
    )
    error = ComfyError(
        type="model_missing",
        message="IP-Adapter preset files missing",
        details="",
        extra_info={},
    )
    found = tuple(
        MissingModel(
            node_id=n.node_id,
            class_type=n.class_type,
            input_name=n.input_name,
            name=n.example,
            folder=n.folder,
            available=tuple(listed[n.folder]),
        )
        for n in missing
    )
    return ModelMissing(message, error=error, node_errors=node_errors, missing=found, server=server)


def _extra(need: FileNeed) -> dict[str, Any]:
    return {"input_name": need.input_name, "received_value": need.value, "folder": need.folder}
