"""Face identity: extraction (a job), the IP-Adapter reference, identity scores (a job)."""

from __future__ import annotations

import shutil
import uuid

from fastapi import APIRouter, Request, status
from starlette.concurrency import run_in_threadpool

from charstudio.api.deps import QueueDep, ServicesDep
from charstudio.api.routes.characters import FILES_BODY
from charstudio.api.schemas import ReferenceChoice
from charstudio.api.uploads import receive_upload
from charstudio.faces import ReferenceReport
from charstudio.jobs import JobInfo

router = APIRouter(prefix="/characters/{name}", tags=["faces"])


@router.post("/faces/extract", status_code=status.HTTP_202_ACCEPTED)
def extract_faces(name: str, services: ServicesDep, queue: QueueDep) -> JobInfo:
    """Queue face identity extraction; follow it at ``/api/v1/jobs/{id}``."""
    stored = services.library.get_name(name)
    return queue.submit("faces_extract", character=stored, params={})


@router.get("/faces/reference")
def get_reference(name: str, services: ServicesDep) -> ReferenceReport:
    """The IP-Adapter reference image and its exported crops."""
    return services.faces.reference(name)


@router.put("/faces/reference")
def choose_reference(name: str, body: ReferenceChoice, services: ServicesDep) -> ReferenceReport:
    """Use this reference image for IP-Adapter (kept across re-extraction)."""
    return services.faces.choose_reference(name, body.image)


@router.post("/scores", status_code=status.HTTP_202_ACCEPTED, openapi_extra=FILES_BODY)
async def score_images(
    name: str, request: Request, services: ServicesDep, queue: QueueDep
) -> JobInfo:
    """Queue identity scores of uploaded images against the character."""
    settings = services.settings
    stored = await run_in_threadpool(services.library.get_name, name)
    kept = settings.home / "uploads" / "scores" / uuid.uuid4().hex
    async with receive_upload(
        request, home=settings.home, max_files=settings.api_max_files
    ) as form:
        kept.mkdir(parents=True)
        paths: list[str] = []
        for path in form.files:
            target = kept / f"{len(paths):04d}-{path.name}"
            shutil.move(path, target)
            paths.append(str(target))
    return queue.submit("faces_score", character=stored, params={"paths": paths})
