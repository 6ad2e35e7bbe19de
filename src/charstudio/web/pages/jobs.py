"""``/studio/jobs``: queued, running and finished jobs; cancel; each job's live stream."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

from fastapi import APIRouter, Depends, Request
from starlette.responses import RedirectResponse, Response, StreamingResponse

from charstudio.http import QueueDep, event_stream, open_job_events
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
    "tune": "Strength tuning",
    "report": "Consistency report",
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


# A page's stream ends after this long and the browser reconnects at once (``retry``), so
# `charstudio serve` can stop: uvicorn waits for open responses before it exits, and a page
# following a training job would otherwise hold it for hours.
STREAM_S = 20.0
_RETRY_MS = 1000


@router.get("/studio/jobs/{job_id}/events")
async def events(job_id: str, queue: QueueDep) -> StreamingResponse:
    """The job stream the API sends too, behind the session cookie (``EventSource`` sends no
    header), ended after :data:`STREAM_S` seconds; the first event after a reconnect is the
    job's state then, so nothing is missed."""
    inner = await open_job_events(queue, job_id)

    async def bounded() -> AsyncIterator[str]:
        yield f"retry: {_RETRY_MS}\n\n"
        end = time.monotonic() + STREAM_S
        try:
            while (left := end - time.monotonic()) > 0:
                try:
                    async with asyncio.timeout(left):
                        chunk = await anext(inner)
                except (StopAsyncIteration, TimeoutError):
                    return
                yield chunk
        finally:
            await inner.aclose()

    return event_stream(bounded())
