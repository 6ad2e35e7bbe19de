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

from charstudio.api.deps import QueueDep, ServicesDep
from charstudio.api.routes.generation import submit_generation
from charstudio.api.schemas import GenerateBody
from charstudio.api.uploads import safe_name
from charstudio.backends.accepted import accept_generated
from charstudio.errors import CharstudioError, InvalidParameter
from charstudio.jobs import JobInfo, JobQueue
from charstudio.library.profile import RECOMMENDED_RANGES
from charstudio.services import Services
from charstudio.web.auth import require_session
from charstudio.web.errors import StudioRoute, field_errors
from charstudio.web.render import render
from charstudio.web.views import generation_results, latest_score_job

router = APIRouter(route_class=StudioRoute, dependencies=[Depends(require_session)])

_FIELDS = ("prompt", "variation", "lora_strength", "ipadapter_strength", "seed", "count", "backend")


def _page(
    request: Request, services: Services, queue: JobQueue, name: str, **extra: Any
) -> Response:
    profile = services.library.profile(name)
    job_id = request.query_params.get("job")
    job = queue.store.get(job_id) if job_id else None
    results = generation_results(services, queue, job) if job else None
    values: dict[str, Any] = {"count": 4, "backend": "comfyui", "variation": ""}
    if job is not None:  # the form shows what made the results
        values.update({k: v for k, v in job.params.get("spec", {}).items() if v is not None})
    for key in ("lora_strength", "ipadapter_strength"):
        values.setdefault(key, getattr(profile.params, key))
    return render(
        request,
        "generate.html",
        status=extra.pop("status", 200),
        nav="library",
        profile=profile,
        ranges=RECOMMENDED_RANGES,
        backends=sorted(services.generation.backends),
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
    async with request.form(max_files=1, max_fields=20) as form:
        values = {k: str(form.get(k) or "").strip() for k in _FIELDS}
        given = {k: v for k, v in values.items() if v}
        try:
            body = GenerateBody.model_validate({**given, "variation": given.get("variation")})
        except ValidationError as exc:
            errors = field_errors(exc)
            return await run_in_threadpool(
                _page, request, services, queue, name, status=422, errors=errors, values=values
            )
        spec = body.model_dump()
        pose = form.get("pose")
        folder = None
        if isinstance(pose, UploadFile) and pose.filename:
            folder = services.settings.home / "uploads" / "poses" / uuid.uuid4().hex
            folder.mkdir(parents=True)
            target = folder / safe_name(pose.filename, 0)
            target.write_bytes(await pose.read())
            spec["pose"] = str(target)
    # The service reads the database and checks images: off the event loop.
    try:
        job = await run_in_threadpool(_submit, services, queue, name, spec)
    except CharstudioError:
        if folder is not None:  # a refused pose image is not kept
            shutil.rmtree(folder, ignore_errors=True)
        raise
    return RedirectResponse(_here(job), status_code=303)


def _submit(services: Services, queue: JobQueue, name: str, spec: dict[str, Any]) -> JobInfo:
    # Checked before queueing (the error page says why), as the API does.
    return submit_generation(services, queue, services.library.profile(name), spec)


def _here(job: JobInfo, notice: str | None = None) -> str:
    tail = f"&notice={quote(notice)}" if notice else ""
    return f"/studio/characters/{quote(job.character or '')}/generate?job={job.id}{tail}"


def _generation(queue: JobQueue, job_id: str) -> JobInfo:
    job = queue.store.get(job_id)
    if job.kind != "generate" or job.character is None:
        raise InvalidParameter(f"job {job_id} is a {job.kind} job, not a generation")
    return job


@router.get("/studio/jobs/{job_id}/results")
def results(request: Request, job_id: str, services: ServicesDep, queue: QueueDep) -> Response:
    """The results grid alone (the page swaps it in when a job or its scoring ends)."""
    found = generation_results(services, queue, _generation(queue, job_id))
    return render(request, "results.html", results=found)


@router.post("/studio/jobs/{job_id}/score")
def score(job_id: str, queue: QueueDep) -> Response:
    """Queue identity scores of a finished generation's images (once; later calls return it)."""
    job = _generation(queue, job_id)
    found = latest_score_job(queue, job.character or "", for_job=job.id)
    if found is None:
        paths = [image["path"] for image in job.result.get("images", [])]
        if job.state != "succeeded" or not paths:
            raise InvalidParameter(f"job {job_id} is {job.state} and has no images to score")
        found = queue.submit(
            "faces_score", character=job.character, params={"paths": paths, "for_job": job.id}
        )
    return JSONResponse({"job": found.id, "state": found.state})


@router.post("/studio/jobs/{job_id}/more")
def more_like_this(job_id: str, services: ServicesDep, queue: QueueDep) -> Response:
    """The same parameters with new random seeds."""
    job = _generation(queue, job_id)
    spec = {**job.params.get("spec", {}), "seed": None}
    return RedirectResponse(_here(_submit(services, queue, job.character or "", spec)), 303)


@router.post("/studio/jobs/{job_id}/accept/{index}")
def accept(job_id: str, index: int, services: ServicesDep, queue: QueueDep) -> Response:
    """Save the workflow of image ``index`` to ``workflows/generated/``."""
    job = _generation(queue, job_id)
    found = generation_results(services, queue, job)
    image = next((i for i in found.images if i.index == index), None)
    if image is None:
        raise InvalidParameter(f"job {job_id} has no image {index}")
    path = accept_generated(
        services.store,
        services.db,
        generation_id=image.generation_id,
        identity_similarity=image.similarity,
    )
    saved = Path(path).relative_to(services.settings.home)
    return RedirectResponse(_here(job, notice=f"Accepted: workflow saved to {saved}"), 303)
