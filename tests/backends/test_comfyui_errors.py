"""Run-time failures as messages naming node, input and fix (IPAdapter_plus's own texts)."""

from __future__ import annotations

import pytest

from charstudio.backends.comfyui_errors import (
    execution_failure,
    interruption,
    preprocessor_warning,
)

SERVER = "http://gpu2:8188"
GRAPH = {
    "2": {"class_type": "IPAdapterUnifiedLoader", "inputs": {"preset": "PLUS FACE (portraits)"}},
    "5": {"class_type": "LoadImage", "inputs": {"image": "charstudio_ab.png"}},
}


@pytest.mark.parametrize(
    ("node", "node_type", "text", "where", "fix"),
    [
        (
            "2",
            "IPAdapterUnifiedLoader",
            "ClipVision model not found.",
            "node 2 (IPAdapterUnifiedLoader) input 'preset' = 'PLUS FACE (portraits)'",
            "put CLIP-ViT-H-14-laion2B-s32B-b79K.safetensors (CLIP-ViT-bigG-14-laion2B-39B-"
            "b160k.safetensors for VIT-G presets) in models/clip_vision, named exactly so",
        ),
        (
            "2",
            "IPAdapterUnifiedLoader",
            "LoRA model not found.",
            "node 2 (IPAdapterUnifiedLoader) input 'preset' = 'PLUS FACE (portraits)'",
            "put the FaceID preset's LoRA file in models/loras",
        ),
        (
            "7",
            "IPAdapterFaceID",
            "insightface model is required for FaceID models",
            "node 7 (IPAdapterFaceID)",
            "install insightface in ComfyUI's Python and put buffalo_l in "
            "models/insightface/models/, or use the PLUS FACE (portraits) preset",
        ),
        (
            "7",
            "IPAdapterFaceID",
            "InsightFace: No face detected.",
            "node 7 (IPAdapterFaceID)",
            "choose a reference image with one clear face: "
            "charstudio faces reference NAME --use IMAGE",
        ),
        (
            "6",
            "IPAdapterAdvanced",
            "No face detected in the reference",
            "node 6 (IPAdapterAdvanced)",
            "choose a reference image with one clear face: "
            "charstudio faces reference NAME --use IMAGE",
        ),
        (
            "6",
            "IPAdapterAdvanced",
            "mat1 and mat2 shapes cannot be multiplied (257x1664 and 1280x2048)",
            "node 6 (IPAdapterAdvanced)",
            "the CLIP vision model does not fit the IP-Adapter: use ViT-H for SD1.5 and "
            "*_vit-h SDXL adapters, ViT-bigG only for VIT-G presets",
        ),
        (
            "5",
            "LoadImage",
            "cannot identify image file '/comfy/input/charstudio_ab.png'",
            "node 5 (LoadImage) input 'image' = 'charstudio_ab.png'",
            "the uploaded image is not a readable image: choose another reference "
            "(charstudio faces reference NAME --use IMAGE) or re-import it",
        ),
        (
            "5",
            "LoadImage",
            "Invalid image file: charstudio_ab.png",
            "node 5 (LoadImage) input 'image' = 'charstudio_ab.png'",
            "the uploaded image is gone from ComfyUI's input folder: run the command again "
            "to upload it again",
        ),
        (
            "9",
            "VAEDecode",
            "something nobody expected",
            "node 9 (VAEDecode)",
            "see the traceback in ComfyUI's console and check that node's inputs",
        ),
    ],
)
def test_execution_error_messages(
    node: str, node_type: str, text: str, where: str, fix: str
) -> None:
    data = {
        "prompt_id": "p-1",
        "node_id": node,
        "node_type": node_type,
        "exception_type": "Exception",
        "exception_message": text,
    }
    failure = execution_failure(data, server=SERVER, graph=GRAPH)
    assert str(failure) == (
        f"ComfyUI on {SERVER} failed at {where} while running prompt p-1: Exception: {text}; "
        f"fix: {fix}"
    )


def test_interrupted_on_the_server() -> None:
    data = {"prompt_id": "p-2", "node_id": "10", "node_type": "KSampler"}
    assert str(interruption(data, server=SERVER)) == (
        f"prompt p-2 was interrupted on {SERVER} at node 10 (KSampler) (cancelled here or with "
        "ComfyUI's Cancel button): run the command again to generate it"
    )


# --- pose preprocessors without internet ------------------------------------------------

POSE_GRAPH = {
    "20": {"class_type": "LoadImage", "inputs": {"image": "charstudio_pose.jpg"}},
    "21": {
        "class_type": "OpenposePreprocessor",
        "inputs": {"image": ["20", 0], "detect_hand": "disable", "resolution": 512},
    },
    "22": {
        "class_type": "DWPreprocessor",
        "inputs": {"image": ["20", 0], "bbox_detector": "yolox_l.onnx"},
    },
}
HUB_OFFLINE = (
    "An error happened while trying to locate the file on the Hub and we cannot find the "
    "requested files in the local cache. Please check your connection and try again or make "
    "sure your Internet connection is on."
)
CONNECT_FAILED = (
    "HTTPSConnectionPool(host='huggingface.co', port=443): Max retries exceeded with url: "
    "/lllyasviel/Annotators/resolve/main/body_pose_model.pth (Caused by NewConnectionError("
    "'<urllib3.connection.HTTPSConnection object at 0x7f>: Failed to establish a new "
    "connection: [Errno 101] Network is unreachable'))"
)


def _execution_error(node: str, node_type: str, kind: str, text: str) -> dict[str, object]:
    """An ``execution_error`` event's data with every field ComfyUI 0.3.64 sends."""
    return {
        "prompt_id": "p-9",
        "node_id": node,
        "node_type": node_type,
        "executed": ["20"],
        "exception_message": text,
        "exception_type": kind,
        "traceback": [
            '  File "/comfy/execution.py", line 496, in execute\n',
            '  File "/comfy/custom_nodes/comfyui_controlnet_aux/node_wrappers/openpose.py", '
            "line 30, in estimate_pose\n",
            '  File "/comfy/custom_nodes/comfyui_controlnet_aux/src/custom_controlnet_aux/'
            'util.py", line 324, in custom_hf_download\n    model_path = hf_hub_download(\n',
        ],
        "current_inputs": {"image": ["<tensor>"], "resolution": [512]},
        "current_outputs": [],
        "timestamp": 1764000000000,
    }


@pytest.mark.parametrize(
    ("kind", "text"),
    [
        ("huggingface_hub.errors.LocalEntryNotFoundError", HUB_OFFLINE),
        ("huggingface_hub.utils._errors.LocalEntryNotFoundError", HUB_OFFLINE),
        ("requests.exceptions.ConnectionError", CONNECT_FAILED),
    ],
)
def test_openpose_download_failure_names_files_folder_and_skeleton(kind: str, text: str) -> None:
    data = _execution_error("21", "OpenposePreprocessor", kind, text)

    message = str(execution_failure(data, server=SERVER, graph=POSE_GRAPH))

    assert message.startswith(
        f"ComfyUI on {SERVER} failed at node 21 (OpenposePreprocessor) while running prompt "
        f"p-9: the pose preprocessor could not download its annotator weights"
    )
    assert kind in message
    folder = "ComfyUI/custom_nodes/comfyui_controlnet_aux/ckpts/lllyasviel/Annotators/"
    for name in ("body_pose_model.pth", "hand_pose_model.pth", "facenet.pth"):
        assert (
            f"{name} from lllyasviel/Annotators (huggingface.co/lllyasviel/Annotators) in {folder}"
            in message
        )
    assert message.endswith(
        "give an OpenPose skeleton image instead of a photo: --pose-kind skeleton"
    )


def test_dwpose_download_failure_names_its_repos() -> None:
    data = _execution_error(
        "22", "DWPreprocessor", "huggingface_hub.errors.LocalEntryNotFoundError", HUB_OFFLINE
    )

    message = str(execution_failure(data, server=SERVER, graph=POSE_GRAPH))

    assert "yolox_l.onnx from yzd-v/DWPose" in message
    assert "ckpts/yzd-v/DWPose/" in message
    assert "dw-ll_ucoco_384_bs5.torchscript.pt from hr16/DWPose-TorchScript-BatchSize5" in message
    assert "--pose-kind skeleton" in message


def test_other_failures_of_a_pose_node_keep_the_generic_mapping() -> None:
    data = _execution_error(
        "21", "OpenposePreprocessor", "torch.OutOfMemoryError", "CUDA out of memory"
    )
    data["traceback"] = []

    message = str(execution_failure(data, server=SERVER, graph=POSE_GRAPH))

    assert "annotator" not in message
    assert "use a smaller image size" in message


def test_download_words_on_other_nodes_keep_the_generic_mapping() -> None:
    data = _execution_error("9", "VAEDecode", "requests.exceptions.ConnectionError", CONNECT_FAILED)

    assert "annotator" not in str(execution_failure(data, server=SERVER, graph=POSE_GRAPH))


@pytest.mark.parametrize("server", [SERVER, None])
def test_preprocessor_warning(server: str | None) -> None:
    text = preprocessor_warning(server)

    assert (f"ComfyUI on {server}" if server else "the ComfyUI server") in text
    assert (
        "body_pose_model.pth, hand_pose_model.pth, facenet.pth from lllyasviel/Annotators" in text
    )
    assert "ComfyUI/custom_nodes/comfyui_controlnet_aux/ckpts/lllyasviel/Annotators/" in text
    assert text.endswith("(--pose-kind skeleton)")
