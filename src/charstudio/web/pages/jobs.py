"""``/studio/jobs``: queued, running and finished jobs; cancel; each job's live stream."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from starlette.responses import RedirectResponse, Response, StreamingResponse

from charstudio.api.deps import QueueDep
from charstudio.api.routes.jobs import job_events
from charstudio.web.auth import require_session
from charstudio.web.errors import StudioRoute
from charstudio.web.render import render

router = APIRouter(route_class=StudioRoute, dependencies=[Depends(require_session)])

KIND_WORDS = {
    "faces_extract": "Face identity",
    "dataset_prepare": "Training set",
    "faces_score": "Identity scores",
    "generate": "Generation",
    "train": "LoRA training",
}


@router.get("/studio/jobs")
def jobs_page(request: Request, queue: QueueDep, rows: bool = False) -> Response:
    """The page, or with ``rows=1`` only its table body (the page refreshes it)."""
    page = queue.store.page(state=None, character=None, limit=100, offset=0)
    template = "jobs_rows.html" if rows else "jobs.html"
    return render(request, template, nav="jobs", jobs=page.items, kinds=KIND_WORDS)


@router.post("/studio/jobs/{job_id}/cancel")
def cancel_job(request: Request, job_id: str, queue: QueueDep) -> Response:
    queue.cancel(job_id)
    back = request.headers.get("referer", "")
    target = back if back.startswith(str(request.base_url)) else "/studio/jobs"
    return RedirectResponse(target, status_code=303)


@router.get("/studio/jobs/{job_id}/events")
async def events(job_id: str, queue: QueueDep) -> StreamingResponse:
    """The API's job stream, behind the session cookie (``EventSource`` sends no header)."""
    return await job_events(job_id, queue)
