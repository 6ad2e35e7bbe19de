"""``/studio/characters/<name>``: references with face boxes, the IP-Adapter reference,
the training set with editable captions, LoRA versions, generation defaults."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from charstudio.dataset import DEFAULTS as DATASET_DEFAULTS
from charstudio.http import (
    CharacterUpdate,
    DatasetRequest,
    QueueDep,
    ServicesDep,
    receive_upload,
)
from charstudio.jobs import submit_dataset_prepare, submit_faces_extract, submit_train
from charstudio.library.qc_policy import QC_OVERRIDE_KEYS
from charstudio.services import Services
from charstudio.web.auth import require_session
from charstudio.web.errors import StudioRoute, field_errors
from charstudio.web.render import render
from charstudio.web.views import (
    backend_field,
    backend_picker,
    dataset_view,
    lora_views,
    reference_views,
)

router = APIRouter(
    prefix="/studio/characters/{name}",
    route_class=StudioRoute,
    dependencies=[Depends(require_session)],
)

# The defaults form: generation parameters, then the QC policy (qc_min_identity, ...).
_DEFAULT_FIELDS = (
    "lora_strength",
    "ipadapter_strength",
    "character_weight",
    "cfg",
    "steps",
    "denoise",
    *QC_OVERRIDE_KEYS,
)


def _page(
    request: Request,
    services: Services,
    name: str,
    *,
    status: int = 200,
    **extra: Any,
) -> Response:
    detail = services.library.show(name)
    return render(
        request,
        "character.html",
        status=status,
        nav="library",
        character=detail,
        profile=detail.profile,
        references=reference_views(services, detail.references),
        backends=backend_picker(services, detail.profile),
        dataset=dataset_view(services, detail.name),
        loras=lora_views(services, detail.name),
        job_id=request.query_params.get("job"),
        notice=request.query_params.get("notice"),
        **{"errors": {}, "values": {}, **extra},
    )


def _back(
    name: str, *, job: str | None = None, notice: str | None = None, at: str = ""
) -> Response:
    query = f"?job={quote(job)}" if job else (f"?notice={quote(notice)}" if notice else "")
    return RedirectResponse(f"/studio/characters/{quote(name)}{query}{at}", status_code=303)


@router.get("")
def character_page(request: Request, name: str, services: ServicesDep) -> Response:
    return _page(request, services, name)


@router.post("/references")
async def add_references(request: Request, name: str, services: ServicesDep) -> Response:
    stored = await run_in_threadpool(services.library.get_name, name)
    settings = services.settings
    async with receive_upload(
        request, home=settings.home, max_files=settings.api_max_files
    ) as form:
        result = await run_in_threadpool(services.library.import_images, stored, form.files)
    notice = f"Added {len(result.added)} image(s), {len(result.duplicates)} duplicate(s) skipped."
    return _back(stored, notice=notice, at="#references")


@router.post("/faces")
def extract(
    request: Request,
    name: str,
    services: ServicesDep,
    queue: QueueDep,
    backend: Annotated[str, Form()] = "",
) -> Response:
    """Queue face identity extraction with the chosen backend (blank: the character's own);
    an unknown backend, or one whose models are not set up, is a field error."""
    chosen, error = backend_field(services, name, backend.strip())
    if error:
        return _page(
            request,
            services,
            name,
            status=422,
            errors={"backend": error},
            values={"backend": backend},
        )
    job = submit_faces_extract(services, queue, name, backend=chosen)
    return _back(job.character or name, job=job.id, at="#references")


@router.post("/reference")
def choose(name: str, image: Annotated[str, Form()], services: ServicesDep) -> Response:
    report = services.faces.choose_reference(name, image)
    return _back(
        report.character, notice=f"{report.original_name} is now the IP-Adapter reference."
    )


@router.post("/dataset")
def prepare(
    name: str,
    services: ServicesDep,
    queue: QueueDep,
    resolution: Annotated[int, Form()] = DATASET_DEFAULTS.resolution,
    max_upscale: Annotated[float, Form()] = DATASET_DEFAULTS.max_upscale,
) -> Response:
    """Queue a prepare with the last set's settings, at this resolution and upscale limit."""
    last = services.datasets.last_config(name)
    kept = last.model_dump(include=set(DatasetRequest.model_fields)) if last else {}
    body = DatasetRequest(**{**kept, "resolution": resolution, "max_upscale": max_upscale})
    job = submit_dataset_prepare(services, queue, name, body.config())
    return _back(job.character or name, job=job.id, at="#dataset")


@router.post("/captions/{image}")
def edit_caption(
    name: str, image: str, text: Annotated[str, Form()], services: ServicesDep
) -> Response:
    services.datasets.edit_caption(name, image, text.strip() or None)
    notice = f"Caption of {image} saved; it is used from the next time the set is prepared."
    return _back(name, notice=notice, at="#dataset")


@router.post("/defaults")
async def save_defaults(request: Request, name: str, services: ServicesDep) -> Response:
    """Blank fields go back to the method's (or the QC policy's) defaults; the others
    override them."""
    async with request.form(max_files=0, max_fields=len(_DEFAULT_FIELDS) + 4) as form:
        method = str(form.get("method") or "").strip()
        values = {k: str(form.get(k) or "") for k in _DEFAULT_FIELDS}
    given = {k: v.strip() for k, v in values.items() if v.strip()}
    reset = [k for k in _DEFAULT_FIELDS if k not in given] + ([] if method else ["method"])
    try:
        body = CharacterUpdate.model_validate({**given, "method": method or None, "reset": reset})
    except ValidationError as exc:
        errors = field_errors(exc)
        return await run_in_threadpool(
            _page, request, services, name, status=422, errors=errors, values=values
        )
    profile = await run_in_threadpool(
        services.library.update,
        name,
        overrides=body.overrides(),
        reset=body.reset,
        trigger_word=body.trigger_word,
        description=body.description,
    )
    return _back(profile.name, notice="Generation defaults saved.", at="#defaults")


@router.post("/train")
def start_training(name: str, services: ServicesDep, queue: QueueDep) -> Response:
    job = submit_train(services, queue, name, [])
    return _back(job.character or name, job=job.id, at="#loras")


@router.post("/loras/{version}/promote")
def promote(name: str, version: str, services: ServicesDep) -> Response:
    info = services.training.promote(name, version)
    return _back(name, notice=f"LoRA v{info.version} is now the one generation uses.", at="#loras")
