"""ComfyUI's run-time failures (``execution_error``) as messages naming node, input and fix.

Validation problems (``node_errors`` in a 400 answer) are explained by
:mod:`charstudio.workflows.rejections`; this module covers what only fails while
running: model files an IP-Adapter unified loader looks for by name, InsightFace, a
CLIP vision model that does not fit the adapter, out-of-memory. The patterns are the
exception texts of ComfyUI_IPAdapter_plus 2.0.0 (``utils.py``, ``IPAdapterPlus.py``) and
the common user problems listed in docs/reference (IPAdapter_plus issues #108, #162,
#237, #310).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from charstudio.errors import GenerationCancelled, GenerationFailed

__all__ = ["execution_failure", "interruption"]

# (pattern in the exception text, fix). First match wins.
_FIXES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), fix)
    for pattern, fix in (
        (
            r"ClipVision model not found",
            "put CLIP-ViT-H-14-laion2B-s32B-b79K.safetensors (CLIP-ViT-bigG-14-laion2B-39B-"
            "b160k.safetensors for VIT-G presets) in models/clip_vision, named exactly so",
        ),
        (
            r"IPAdapter model not found",
            "put the preset's adapter file (e.g. ip-adapter-plus-face_sd15.safetensors) in "
            "models/ipadapter, named as the IPAdapter_plus README says",
        ),
        (r"LoRA model not found", "put the FaceID preset's LoRA file in models/loras"),
        (
            r"No face detected",
            "choose a reference image with one clear face: "
            "charstudio faces reference NAME --use IMAGE",
        ),
        (
            r"insightface",
            "install insightface in ComfyUI's Python and put buffalo_l in "
            "models/insightface/models/, or use the PLUS FACE (portraits) preset",
        ),
        (
            r"mat1 and mat2 shapes cannot be multiplied",
            "the CLIP vision model does not fit the IP-Adapter: use ViT-H for SD1.5 and "
            "*_vit-h SDXL adapters, ViT-bigG only for VIT-G presets",
        ),
        (
            r"out of memory|OutOfMemory",
            "use a smaller image size or fewer images at once, or free GPU memory "
            "(POST /free) and try again",
        ),
        (
            r"cannot identify image file",
            "the uploaded image is not a readable image: choose another reference "
            "(charstudio faces reference NAME --use IMAGE) or re-import it",
        ),
        (
            r"Invalid image file|No such file",
            "the uploaded image is gone from ComfyUI's input folder: run the command again "
            "to upload it again",
        ),
    )
)
_DEFAULT_FIX = "see the traceback in ComfyUI's console and check that node's inputs"

# The input that names the file a loader node fails on.
_FILE_INPUTS: dict[str, str] = {
    "CheckpointLoaderSimple": "ckpt_name",
    "LoraLoader": "lora_name",
    "LoraLoaderModelOnly": "lora_name",
    "IPAdapterUnifiedLoader": "preset",
    "IPAdapterUnifiedLoaderFaceID": "preset",
    "IPAdapterModelLoader": "ipadapter_file",
    "IPAdapterInsightFaceLoader": "model_name",
    "CLIPVisionLoader": "clip_name",
    "ControlNetLoader": "control_net_name",
    "LoadImage": "image",
}


def execution_failure(
    data: Mapping[str, Any], *, server: str, graph: Mapping[str, Any] | None = None
) -> GenerationFailed:
    """The exception for an ``execution_error`` message (or history entry).

    Args:
        data: The message's ``data``: ``node_id``, ``node_type``, ``exception_type``,
            ``exception_message``, ``prompt_id`` ...
        server: The server's URL.
        graph: The graph that was sent (to quote the failing input's value).

    Returns:
        A :class:`GenerationFailed` to raise.
    """
    node_id = str(data.get("node_id", "?"))
    node_type = str(data.get("node_type", "?"))
    text = str(data.get("exception_message", "")).strip()
    kind = str(data.get("exception_type", "Exception"))
    fix = next((fix for pattern, fix in _FIXES if pattern.search(text)), _DEFAULT_FIX)
    where = f"node {node_id} ({node_type})"
    input_name = _FILE_INPUTS.get(node_type)
    if input_name is not None:
        value = _input_value(graph, node_id, input_name)
        where += f" input '{input_name}'" + (f" = {value!r}" if value is not None else "")
    message = (
        f"ComfyUI on {server} failed at {where} while running prompt "
        f"{data.get('prompt_id', '?')}: {kind}: {text or 'no message'}; fix: {fix}"
    )
    return GenerationFailed(message)


def interruption(data: Mapping[str, Any], *, server: str) -> GenerationCancelled:
    """The exception for an ``execution_interrupted`` message."""
    node = data.get("node_id")
    at = f" at node {node} ({data.get('node_type', '?')})" if node else ""
    return GenerationCancelled(
        f"prompt {data.get('prompt_id', '?')} was interrupted on {server}{at} (cancelled here "
        "or with ComfyUI's Cancel button): run the command again to generate it"
    )


def _input_value(graph: Mapping[str, Any] | None, node_id: str, name: str) -> Any:
    if graph is None or not isinstance(graph.get(node_id), Mapping):
        return None
    inputs = graph[node_id].get("inputs")
    value = inputs.get(name) if isinstance(inputs, Mapping) else None
    return value if isinstance(value, str | int | float) else None
