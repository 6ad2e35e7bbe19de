"""Where generated images go: ``outputs/<name>/<job>/``, with what made them embedded.

Each PNG carries the text chunks ComfyUI's SaveImage writes (``prompt``: the API-format
graph; ``workflow``: the editor graph, when there is one), so it can be dropped back
into ComfyUI, plus ``charstudio``: the full generation parameters as JSON, readable with
:func:`read_parameters`. Files are written under a temporary name and renamed.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image, PngImagePlugin, UnidentifiedImageError

from charstudio.backends.types import BackendImage, GenerationRequest, ServerNames
from charstudio.errors import GenerationFailed
from charstudio.library.store import atomic_write_bytes

__all__ = [
    "PARAMETERS_KEY",
    "StoredImage",
    "generation_parameters",
    "read_parameters",
    "store_image",
]

PARAMETERS_KEY = "charstudio"
_FORMAT = "charstudio.generation/1"


@dataclass(frozen=True, slots=True)
class StoredImage:
    """An image saved under ``outputs/``."""

    path: Path
    sha256: str
    width: int
    height: int
    parameters: dict[str, Any]


def generation_parameters(
    request: GenerationRequest, image: BackendImage, backend: str
) -> dict[str, Any]:
    """Everything that made ``image``: enough to make it again."""
    workflow_request = request.workflow_request(image.index, ServerNames())
    return {
        "format": _FORMAT,
        "character": request.character,
        "job": request.job,
        "index": image.index,
        "seed": image.seed,
        "seed_drawn": request.seeds_drawn,
        "method": request.method,
        "params": request.params.model_dump(),
        "prompt": request.prompt,
        "variation": request.variation,
        "positive_prompt": workflow_request.positive_prompt,
        "negative_prompt": workflow_request.negative_prompt,
        "checkpoint": request.checkpoint,
        "family": request.family,
        "size": list(workflow_request.size),
        "sampler": request.sampler,
        "scheduler": request.scheduler,
        "lora": request.lora_file.name if request.lora_file else None,
        "lora_version_id": request.lora_version_id,
        "lora_version": request.lora_version,
        "reference": str(request.reference_file) if request.reference_file else None,
        "reference_input": request.reference_input,
        "pose": str(request.pose_file) if request.pose_file else None,
        "pose_kind": request.pose_kind if request.pose_file else None,
        "ipadapter_preset": request.ipadapter_preset if workflow_request.uses_ipadapter else None,
        "backend": backend,
        "server": image.server,
        "prompt_id": image.prompt_id,
        **{k: v for k, v in image.extra.items() if isinstance(v, str | int | float | list)},
    }


def store_image(folder: Path, *, image: BackendImage, parameters: dict[str, Any]) -> StoredImage:
    """Write ``image`` into ``folder`` with its graph and parameters embedded.

    Raises:
        GenerationFailed: the backend's bytes are not an image.
    """
    try:
        with Image.open(io.BytesIO(image.png)) as opened:
            opened.load()
            decoded = opened.copy()
            chunks: dict[str, str] = {
                str(k): v for k, v in opened.info.items() if isinstance(v, str)
            }
    except (UnidentifiedImageError, OSError) as exc:
        raise GenerationFailed(
            f"{image.server} returned something that is not an image for seed {image.seed} "
            f"({len(image.png)} bytes): check the server's output folder and logs"
        ) from exc
    chunks["prompt"] = json.dumps(image.graph)
    if image.workflow is not None:
        chunks["workflow"] = json.dumps(image.workflow)
    chunks[PARAMETERS_KEY] = json.dumps(parameters)
    info = PngImagePlugin.PngInfo()
    for key, value in chunks.items():
        info.add_text(key, value)
    buffer = io.BytesIO()
    decoded.save(buffer, format="PNG", pnginfo=info)
    data = buffer.getvalue()
    name = f"{parameters['character']}_{parameters['job']}_{image.index + 1:02d}_{image.seed}.png"
    path = folder / name
    atomic_write_bytes(path, data)
    return StoredImage(
        path=path,
        sha256=hashlib.sha256(data).hexdigest(),
        width=decoded.width,
        height=decoded.height,
        parameters=parameters,
    )


def read_parameters(path: Path) -> dict[str, Any]:
    """The ``charstudio`` and ``prompt`` chunks of a stored image, decoded.

    Returns:
        ``{"parameters": {...}, "prompt": {...graph...}, "workflow": {...} | None}``.
    """
    with Image.open(path) as image:
        text = dict(image.info)
    return {
        "parameters": json.loads(text[PARAMETERS_KEY]),
        "prompt": json.loads(text["prompt"]),
        "workflow": json.loads(text["workflow"]) if "workflow" in text else None,
    }
