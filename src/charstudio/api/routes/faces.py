"""Face identity: extraction (a job), the IP-Adapter reference, identity scores (a job)."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

from fastapi import APIRouter, Request, status
from starlette.concurrency import run_in_threadpool

from charstudio.api.routes.characters import FILES_BODY
from charstudio.faces import BackendName, ReferenceReport
from charstudio.http import QueueDep, ReferenceChoice, ServicesDep, receive_upload
from charstudio.jobs import JobInfo, submit_faces_extract, submit_faces_score

router = APIRouter(prefix="/characters/{name}", tags=["faces"])


@router.post("/faces/extract", status_code=status.HTTP_202_ACCEPTED)
async def extract_faces(
    name: str, services: ServicesDep, queue: QueueDep, backend: BackendName | None = None
) -> JobInfo:
    """Queue face identity extraction; follow it at ``/api/v1/jobs/{id}``. ``backend``
    (``dlib``, ``insightface``, ``ccip`` for a drawn character) is the character's from
    now on; without it, the one its identity was made with, else the default."""
    # One thread hop for the writes; a sync route would take a second for its answer.
    return await run_in_threadpool(submit_faces_extract, services, queue, name, backend=backend)


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
    try:
        async with receive_upload(
            request, home=settings.home, max_files=settings.api_max_files
        ) as form:
            kept.mkdir(parents=True)
            paths: list[Path] = []
            for path in form.files:
                target = kept / f"{len(paths):04d}-{path.name}"
                shutil.move(path, target)  # a rename: both are under the data root
                paths.append(target)
        return await run_in_threadpool(submit_faces_score, services, queue, stored, paths)
    except BaseException:  # the images of a job that was not queued are not kept
        shutil.rmtree(kept, ignore_errors=True)
        raise
