"""ComfyUI's run-time failures (``execution_error``) as messages naming node, input and fix.

Validation problems (``node_errors`` in a 400 answer) are explained by
:mod:`charstudio.workflows.rejections`; this module covers what only fails while
running: model files an IP-Adapter unified loader looks for by name, InsightFace, a
CLIP vision model that does not fit the adapter, out-of-memory. The patterns are the
exception texts of ComfyUI_IPAdapter_plus 2.0.0 (``utils.py``, ``IPAdapterPlus.py``) and
the common user problems listed in docs/reference (IPAdapter_plus issues #108, #162,
#237, #310).

comfyui_controlnet_aux's pose preprocessors (``OpenposePreprocessor``, ``DWPreprocessor``)
fetch their annotator weights from Hugging Face on first use through
``custom_controlnet_aux/util.py`` ``custom_hf_download`` into
``custom_nodes/comfyui_controlnet_aux/ckpts/<repo>/<file>``. On a server without internet
that fails after minutes with huggingface_hub's ``LocalEntryNotFoundError`` ("An error
happened while trying to locate the file on the Hub and we cannot find the requested files
in the local cache. Please check your connection ...", comfyui_controlnet_aux issues #165,
#286) or a ``requests``/``urllib3`` connection error naming ``huggingface.co`` (#53); both
become one message naming the files, the folder and the skeleton-image alternative.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from charstudio.errors import GenerationCancelled, GenerationFailed

__all__ = [
    "ANNOTATORS_FOLDER",
    "OPENPOSE_FILES",
    "execution_failure",
    "interruption",
    "preprocessor_warning",
]

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
# comfyui_controlnet_aux's annotator checkpoints: folder, and what OpenposeDetector fetches.
ANNOTATORS_FOLDER = "ComfyUI/custom_nodes/comfyui_controlnet_aux/ckpts"
OPENPOSE_REPO = "lllyasviel/Annotators"
OPENPOSE_FILES = ("body_pose_model.pth", "hand_pose_model.pth", "facenet.pth")
"""OpenposeDetector.from_pretrained downloads all three, body first, whatever is detected."""
_POSE_NODES = frozenset({"OpenposePreprocessor", "DWPreprocessor"})
# Signs of a failed download: huggingface_hub's and requests/urllib3's texts and types.
_DOWNLOAD_FAILED = re.compile(
    r"LocalEntryNotFound|locate the file on the Hub|cannot find the requested files|"
    r"internet connection|check your connection|huggingface\.co|huggingface_hub|hf_hub|"
    r"OfflineModeIsEnabled|HF_HUB_OFFLINE|ConnectionError|ConnectTimeout|NewConnectionError|"
    r"NameResolutionError|MaxRetryError|Max retries exceeded|HTTPSConnectionPool|"
    r"Network is unreachable|Temporary failure in name resolution|getaddrinfo failed|"
    r"Name or service not known|timed out|custom_hf_download|\.incomplete",
    re.IGNORECASE,
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
    if node_type in _POSE_NODES and _download_failed(data):
        return _annotator_missing(data, server=server, graph=graph)
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


def preprocessor_warning(server: str | None) -> str:
    """What to tell the user before queueing a pose *photo* (it needs the preprocessor).

    Args:
        server: The server's URL, or ``None`` when not yet chosen.
    """
    on = f"ComfyUI on {server}" if server else "the ComfyUI server"
    return (
        f"the pose image is a photo, so {on} must draw its skeleton with "
        f"comfyui_controlnet_aux's OpenposePreprocessor, which needs "
        f"{', '.join(OPENPOSE_FILES)} from {OPENPOSE_REPO} (huggingface.co/{OPENPOSE_REPO}) "
        f"in {ANNOTATORS_FOLDER}/{OPENPOSE_REPO}/; a server without internet cannot download "
        "them and the job fails after minutes: put the files there, or give an OpenPose "
        "skeleton image instead (--pose-kind skeleton)"
    )


def _download_failed(data: Mapping[str, Any]) -> bool:
    trace = data.get("traceback")
    lines = [str(line) for line in trace] if isinstance(trace, list) else []
    text = " ".join(
        [str(data.get("exception_type", "")), str(data.get("exception_message", "")), *lines]
    )
    return _DOWNLOAD_FAILED.search(text) is not None


def _dwpose_files(graph: Mapping[str, Any] | None, node_id: str) -> list[tuple[str, str]]:
    """(repo, file) pairs a DWPreprocessor node fetches, as node_wrappers/dwpose.py picks."""
    bbox = _input_value(graph, node_id, "bbox_detector") or "yolox_l.onnx"
    pose = _input_value(graph, node_id, "pose_estimator") or "dw-ll_ucoco_384_bs5.torchscript.pt"
    files: list[tuple[str, str]] = []
    bbox, pose = str(bbox), str(pose)
    if bbox != "None":
        if bbox == "yolox_l.onnx":
            files.append(("yzd-v/DWPose", bbox))
        elif "yolox" in bbox:
            files.append(("hr16/yolox-onnx", bbox))
        else:
            files.append(("hr16/yolo-nas-fp16", bbox))
    if pose == "dw-ll_ucoco_384.onnx":
        files.append(("yzd-v/DWPose", pose))
    elif pose.endswith(".onnx"):
        files.append(("hr16/UnJIT-DWPose", pose))
    else:
        files.append(("hr16/DWPose-TorchScript-BatchSize5", pose))
    return files


def _annotator_missing(
    data: Mapping[str, Any], *, server: str, graph: Mapping[str, Any] | None
) -> GenerationFailed:
    node_id = str(data.get("node_id", "?"))
    node_type = str(data.get("node_type", "?"))
    text = str(data.get("exception_message", "")).strip()
    kind = str(data.get("exception_type", "Exception"))
    if node_type == "OpenposePreprocessor":
        files = [(OPENPOSE_REPO, name) for name in OPENPOSE_FILES]
    else:
        files = _dwpose_files(graph, node_id)
    places = "; ".join(
        f"{name} from {repo} (huggingface.co/{repo}) in {ANNOTATORS_FOLDER}/{repo}/"
        for repo, name in files
    )
    short = text.splitlines()[0][:300] if text else "no message"
    return GenerationFailed(
        f"ComfyUI on {server} failed at node {node_id} ({node_type}) while running prompt "
        f"{data.get('prompt_id', '?')}: the pose preprocessor could not download its "
        f"annotator weights (the server has no internet?): {kind}: {short}; fix: put {places} "
        "(or in the folder annotator_ckpts_path in comfyui_controlnet_aux's config.yaml or "
        "AUX_ANNOTATOR_CKPTS_PATH names), or give an OpenPose skeleton image instead of a "
        "photo: --pose-kind skeleton"
    )


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
