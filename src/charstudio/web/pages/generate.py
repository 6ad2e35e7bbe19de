"""``/studio/characters/<name>/generate``: the generation form, live progress, results with
identity scores, "more like this" and "accept"."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.responses import JSONResponse, RedirectResponse, Response

from charstudio.backends import GenerateRequest
from charstudio.backends.accepted import accept_generated
from charstudio.errors import InvalidParameter
from charstudio.http import QueueDep, ServicesDep, parse_form, safe_name
from charstudio.jobs import JobInfo, JobQueue, submit_faces_score, submit_generate
from charstudio.library.profile import RECOMMENDED_RANGES
from charstudio.services import Services
from charstudio.web.auth import require_session
from charstudio.web.errors import StudioRoute, field_errors
from charstudio.web.render import render
from charstudio.web.results import SHOW, Show, generation_results, stored_files
from charstudio.web.views import latest_score_job
from charstudio.workflows import MODEL_FAMILIES

router = APIRouter(route_class=StudioRoute, dependencies=[Depends(require_session)])

# The form's fields: GenerateRequest's, less the pose file (an upload, stored first).
_FIELDS = tuple(name for name in GenerateRequest.model_fields if name != "pose")


def _page(
    request: Request, services: Services, queue: JobQueue, name: str, **extra: Any
) -> Response:
    profile = services.library.profile(name)
    job_id = request.query_params.get("job")
    job = queue.store.get(job_id) if job_id else None
    results = generation_results(services, queue, job, show=_show(request)) if job else None
    values: dict[str, Any] = {"count": 4, "backend": "comfyui", "variation": ""}
    if job is not None:  # the form shows what made the results
        values.update({k: v for k, v in job.params.items() if v is not None and k != "pose"})
    for key in ("lora_strength", "ipadapter_strength", "character_weight"):
        values.setdefault(key, getattr(profile.params, key))
    generation = services.generation
    return render(
        request,
        "generate.html",
        status=extra.pop("status", 200),
        nav="library",
        profile=profile,
        ranges=RECOMMENDED_RANGES,
        backends=sorted(generation.backends),
        family=MODEL_FAMILIES[generation.defaults.family],
        samplers=generation.catalog.combo("KSampler", "sampler_name"),
        schedulers=generation.catalog.combo("KSampler", "scheduler"),
        job=job,
        results=results,
        notice=request.query_params.get("notice"),
        **{"errors": {}, "values": values, **extra},
    )


@router.get("/studio/characters/{name}/generate")
def generate_page(request: Request, name: str, services: ServicesDep, queue: QueueDep) -> Response:
    return _page(request, services, queue, name)


@router.post("/studio/characters/{name}/generate")
async def generate(request: Request, name: str, services: ServicesDep, queue: QueueDep) -> Response:
    """Check the form (field errors re-show it, 422), then queue the job and follow it."""
    form = await parse_form(request, home=services.settings.home, max_files=1)
    try:
        values = {k: str(form.get(k) or "").strip() for k in _FIELDS}
        given: dict[str, Any] = {k: v for k, v in values.items() if v}
        pose = form.get("pose")
        folder = None
        if isinstance(pose, UploadFile) and pose.filename:
            # Streamed into the data root's tmp/ already: kept for the job by a rename.
            await pose.close()
            folder = services.settings.home / "uploads" / "poses" / uuid.uuid4().hex
            folder.mkdir(parents=True)
            target = folder / safe_name(pose.filename, 0)
            shutil.move(pose.file.name, target)
            given["pose"] = str(target)
        try:
            body = GenerateRequest.model_validate(given)
        except ValidationError as exc:
            if folder is not None:
                shutil.rmtree(folder, ignore_errors=True)
            errors = field_errors(exc)
            return await run_in_threadpool(
                _page, request, services, queue, name, status=422, errors=errors, values=values
            )
    finally:
        await form.close()
    # The service reads the database and checks images: off the event loop.
    try:
        job = await run_in_threadpool(submit_generate, services, queue, name, body)
    except BaseException:
        if folder is not None:  # the pose of a job that was not queued is not kept
            shutil.rmtree(folder, ignore_errors=True)
        raise
    return RedirectResponse(_here(job), status_code=303)


def _here(job: JobInfo, notice: str | None = None) -> str:
    tail = f"&notice={quote(notice)}" if notice else ""
    return f"/studio/characters/{quote(job.character or '')}/generate?job={job.id}{tail}"


def _generation(queue: JobQueue, job_id: str) -> JobInfo:
    job = queue.store.get(job_id)
    if job.kind != "generate" or job.character is None:
        raise InvalidParameter(f"job {job_id} is a {job.kind} job, not a generation")
    return job


def _show(request: Request) -> Show:
    """The results filter (``?show=kept|rejected|all``; kept by default)."""
    value = request.query_params.get("show", "kept")
    for allowed in SHOW:
        if value == allowed:
            return allowed
    raise InvalidParameter(f"show must be one of {', '.join(SHOW)}, not {value[:40]!r}")


@router.get("/studio/jobs/{job_id}/results")
def results(request: Request, job_id: str, services: ServicesDep, queue: QueueDep) -> Response:
    """The results grid alone (the page swaps it in when a job or its scoring ends)."""
    found = generation_results(services, queue, _generation(queue, job_id), show=_show(request))
    return render(request, "results.html", results=found)


@router.post("/studio/jobs/{job_id}/score")
def score(job_id: str, services: ServicesDep, queue: QueueDep) -> Response:
    """Queue identity scores of a finished generation's images (once; later calls return it)."""
    job = _generation(queue, job_id)
    found = latest_score_job(queue, job.character or "", for_job=job.id)
    if found is None:
        made = job.result.get("images", []) if job.has_result else []
        if not made:
            raise InvalidParameter(f"job {job_id} is {job.state} and has no images to score")
        files = stored_files(services, made)  # where they are on this machine
        paths = [files.get(i["generation_id"], Path(i["path"])) for i in made]
        found = submit_faces_score(services, queue, job.character or "", paths, for_job=job.id)
    return JSONResponse({"job": found.id, "state": found.state})


@router.post("/studio/jobs/{job_id}/more")
def more_like_this(job_id: str, services: ServicesDep, queue: QueueDep) -> Response:
    """The same parameters with new random seeds."""
    job = _generation(queue, job_id)
    again = GenerateRequest.parse(**{**job.params, "seed": None})
    return RedirectResponse(
        _here(submit_generate(services, queue, job.character or "", again)), 303
    )


@router.post("/studio/jobs/{job_id}/accept/{generation_id}")
def accept(job_id: str, generation_id: int, services: ServicesDep, queue: QueueDep) -> Response:
    """Save the workflow of the job's image ``generation_id`` to ``workflows/generated/``
    (a rejected image too: people may disagree with QC)."""
    job = _generation(queue, job_id)
    found = generation_results(services, queue, job, show="all")
    image = next((i for i in found.images if i.generation_id == generation_id), None)
    if image is None:
        raise InvalidParameter(f"job {job_id} has no image {generation_id}")
    path = accept_generated(
        services.store,
        services.db,
        generation_id=image.generation_id,
        identity_similarity=image.similarity,
    )
    saved = Path(path).relative_to(services.settings.home)
    return RedirectResponse(_here(job, notice=f"Accepted: workflow saved to {saved}"), 303)
