"""Run-time failures as messages naming node, input and fix (IPAdapter_plus's own texts)."""

from __future__ import annotations

import pytest

from charstudio.backends.comfyui_errors import execution_failure, interruption

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
