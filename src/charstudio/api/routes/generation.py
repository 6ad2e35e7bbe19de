"""Generation: ``POST /api/v1/characters/{name}/generate`` (JSON) and the original design's
``POST /character/{character_id}/generate_consistent`` (form fields), both answered with a
job id at once; the images arrive with the job's result.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Form, status

from charstudio.api.deps import QueueDep, ServicesDep
from charstudio.api.schemas import GenerateBody, LegacyGenerateResponse
from charstudio.backends.accepted import accept_generated
from charstudio.backends.service_types import GenerateSpec
from charstudio.jobs import JobInfo
from charstudio.library import CharacterConsistencyProfile
from charstudio.workflows import SEED_MAX

router = APIRouter(tags=["generation"])

# What each method is expected to give, in words; the measured figure is the face
# consistency that `faces score` (and QC) reports for the images themselves.
EXPECTED = {
    "lora_ipadapter": "high: LoRA and IP-Adapter face conditioning",
    "lora_only": "medium: LoRA only, no face conditioning",
    "ipadapter_only": "medium: IP-Adapter face conditioning only, no LoRA",
    "img2img": "low: img2img from the reference image (no LoRA, no face identity)",
}


@router.post(
    "/api/v1/characters/{name}/generate", status_code=status.HTTP_202_ACCEPTED, tags=["generation"]
)
def generate(name: str, body: GenerateBody, services: ServicesDep, queue: QueueDep) -> JobInfo:
    """Queue a generation by the best method the character's assets allow."""
    profile = services.library.profile(name)
    return submit_generation(services, queue, profile, body.model_dump())


@router.post("/character/{character_id}/generate_consistent")
def generate_consistent(
    character_id: str,
    services: ServicesDep,
    queue: QueueDep,
    prompt: Annotated[str, Form(min_length=1, max_length=2000)],
    variation_type: Annotated[Literal["outfit", "background", "pose"], Form()] = "outfit",
    lora_strength: Annotated[float, Form(ge=0.0, le=2.0)] = 0.7,
    ipadapter_strength: Annotated[float, Form(ge=0.0, le=2.0)] = 0.6,
    seed: Annotated[int, Form(ge=-1, le=SEED_MAX, description="-1 draws a random seed")] = -1,
) -> LegacyGenerateResponse:
    """The original design's endpoint, same contract; ``prompt_id`` is charstudio's job id.

    A character without a LoRA still generates, by the best method its assets allow; a
    strength the method does not use is ignored here (the original contract always sends
    both), and ``method`` says which was used.
    """
    profile = services.library.profile(character_id)
    body = GenerateBody(
        prompt=prompt,
        variation=variation_type,
        lora_strength=lora_strength if profile.params.lora_strength is not None else None,
        ipadapter_strength=(
            ipadapter_strength if profile.params.ipadapter_strength is not None else None
        ),
        seed=None if seed == -1 else seed,
    )
    job = submit_generation(services, queue, profile, body.model_dump())
    return LegacyGenerateResponse(
        success=True,
        prompt_id=job.id,
        method=profile.method,
        consistency_expected=EXPECTED[profile.method],
    )


@router.post("/api/v1/generations/{generation_id}/accept", tags=["generation"])
def accept(generation_id: int, services: ServicesDep) -> dict[str, str]:
    """Accept a generated image: its workflow is saved to ``workflows/generated/``."""
    path = accept_generated(services.store, services.db, generation_id=generation_id)
    return {"workflow": str(path)}


def submit_generation(
    services: ServicesDep,
    queue: QueueDep,
    profile: CharacterConsistencyProfile,
    spec: dict[str, Any],
) -> JobInfo:
    """Queue a generation job for ``profile`` (shared by the API and the studio)."""
    # Check now (400 with the reason) rather than queue a job that can only fail.
    services.generation.plan(GenerateSpec(name=profile.name, **spec))
    if spec.get("seed") is not None:
        spec["seed"] = str(spec["seed"])  # JSON numbers lose precision past 2^53
    return queue.submit("generate", character=profile.name, params={"spec": spec})
