"""Generation: ``POST /api/v1/characters/{name}/generate`` (JSON) and the original design's
``POST /character/{character_id}/generate_consistent`` (form fields), both answered with a
job id at once; the images arrive with the job's result.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Form, Path, status
from starlette.concurrency import run_in_threadpool

from charstudio.api.schemas import LegacyGenerateResponse
from charstudio.backends import GenerateRequest
from charstudio.backends.accepted import accept_generated
from charstudio.http import QueueDep, ServicesDep
from charstudio.jobs import JobInfo, submit_generate
from charstudio.library.profile import NEGATIVE_PROMPT_MAX
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
async def generate(
    name: str, body: GenerateRequest, services: ServicesDep, queue: QueueDep
) -> JobInfo:
    """Queue a generation by the best method the character's assets allow.

    Unset controls keep the character's profile; everything is checked before the job is
    queued (400 names the problem). A ``pose`` must be a file under the data root; a
    relative one is relative to it, as the paths the API returns are.
    """
    if body.pose is not None and not body.pose.is_absolute():
        body = body.model_copy(update={"pose": services.store.home / body.pose})
    # One thread hop for the planning and the writes (a sync route takes a second one).
    return await run_in_threadpool(submit_generate, services, queue, name, body)


@router.post("/character/{character_id}/generate_consistent")
def generate_consistent(
    character_id: str,
    services: ServicesDep,
    queue: QueueDep,
    prompt: Annotated[str, Form(min_length=1, max_length=2000)],
    variation_type: Annotated[Literal["outfit", "background", "pose"], Form()] = "outfit",
    lora_strength: Annotated[float | None, Form(ge=0.0, le=2.0)] = None,
    ipadapter_strength: Annotated[float | None, Form(ge=0.0, le=2.0)] = None,
    character_weight: Annotated[float | None, Form(description="0-1, identity vs outfit")] = None,
    seed: Annotated[int, Form(ge=-1, le=SEED_MAX, description="-1 draws a random seed")] = -1,
    width: Annotated[int | None, Form()] = None,
    height: Annotated[int | None, Form()] = None,
    negative_prompt: Annotated[str | None, Form(max_length=NEGATIVE_PROMPT_MAX)] = None,
    steps: Annotated[int | None, Form()] = None,
    cfg: Annotated[float | None, Form()] = None,
    sampler: Annotated[str | None, Form()] = None,
    scheduler: Annotated[str | None, Form()] = None,
) -> LegacyGenerateResponse:
    """The original design's endpoint, same contract; ``prompt_id`` is charstudio's job id.

    Absent fields keep the character's profile values. A character without a LoRA still
    generates, by the best method its assets allow; a strength (or character weight) the
    method does not use is ignored here (the original contract always sends both), and
    ``method`` says which was used. The other fields are ``GenerateRequest``'s, checked the
    same way.
    """
    profile = services.library.profile(character_id)
    request = GenerateRequest.parse(
        prompt=prompt,
        variation=variation_type,
        lora_strength=lora_strength if profile.params.lora_strength is not None else None,
        ipadapter_strength=(
            ipadapter_strength if profile.params.ipadapter_strength is not None else None
        ),
        character_weight=(
            character_weight if profile.params.character_weight is not None else None
        ),
        seed=None if seed == -1 else seed,
        width=width,
        height=height,
        negative_prompt=negative_prompt,
        steps=steps,
        cfg=cfg,
        sampler=sampler,
        scheduler=scheduler,
    )
    job = submit_generate(services, queue, profile.name, request)
    return LegacyGenerateResponse(
        success=True,
        prompt_id=job.id,
        method=profile.method,
        consistency_expected=EXPECTED[profile.method],
    )


@router.post("/api/v1/generations/{generation_id}/accept", tags=["generation"])
def accept(
    generation_id: Annotated[int, Path(ge=1, le=2**63 - 1)], services: ServicesDep
) -> dict[str, str]:
    """Accept a generated image: its workflow is saved to ``workflows/generated/``."""
    path = accept_generated(services.store, services.db, generation_id=generation_id)
    return {"workflow": str(path)}
