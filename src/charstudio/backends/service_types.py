"""What the generation service takes and returns."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from charstudio.library.profile import GenerationParams, Method
from charstudio.workflows import ModelFamilyName, Variation

__all__ = [
    "GenerateSpec",
    "GeneratedImage",
    "GenerationDefaults",
    "GenerationResult",
    "WorkflowPlan",
]


class GenerationDefaults(BaseModel):
    """Generation settings that come from the configuration, not the user's command.

    Attributes:
        checkpoint: Base model in ``models/checkpoints``; ``None`` until configured.
        family: ``sd15`` or ``sdxl``.
        openpose_controlnet: ControlNet used for ``--variation pose --pose IMAGE``.
        ipadapter_preset: IP-Adapter preset (PLUS FACE, or a FaceID preset for servers
            with InsightFace); the pool checks each server has its files before queueing.
    """

    model_config = ConfigDict(frozen=True)

    checkpoint: str | None
    family: ModelFamilyName = "sd15"
    openpose_controlnet: str = "control_v11p_sd15_openpose_fp16.safetensors"
    ipadapter_preset: str = "PLUS FACE (portraits)"


class GenerateSpec(BaseModel):
    """One ``charstudio generate`` as the user typed it (checked by the service).

    Attributes:
        name: Character name.
        prompt: What to generate.
        variation: ``outfit``, ``background``, ``pose`` or ``None``.
        pose: Pose image for the OpenPose ControlNet (``pose`` variation only).
        lora_strength: Override of the profile's LoRA strength.
        ipadapter_strength: Override of the profile's IP-Adapter strength.
        seed: First seed (the others follow it); ``None`` for random seeds.
        count: How many images.
        backend: ``comfyui`` (``diffusers`` with issue 7).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    prompt: str
    variation: Variation | None = None
    pose: Path | None = None
    lora_strength: float | None = None
    ipadapter_strength: float | None = None
    seed: int | None = None
    count: int = 1
    backend: str = "comfyui"


class GeneratedImage(BaseModel):
    """One stored image."""

    model_config = ConfigDict(frozen=True)

    path: str
    seed: str
    index: int
    sha256: str
    width: int
    height: int
    server: str
    prompt_id: str | None
    generation_id: int


class GenerationResult(BaseModel):
    """What ``generate`` made."""

    model_config = ConfigDict(frozen=True)

    character: str
    job: str
    backend: str
    method: Method
    params: GenerationParams
    seeds_drawn: bool
    output_dir: str
    images: list[GeneratedImage]


class WorkflowPlan(BaseModel):
    """The graph a generate call would send, built and validated, without sending it."""

    model_config = ConfigDict(frozen=True)

    character: str
    method: Method
    method_reason: str
    params: GenerationParams
    seed: str
    seeds_drawn: bool
    validated_against: str
    runs_on: str | None = None
    graph: dict[str, Any]
