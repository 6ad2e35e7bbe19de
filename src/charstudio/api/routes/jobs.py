"""``/api/v1/jobs``: list, show, cancel, and a Server-Sent Events stream of progress."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from charstudio.api.deps import Limit, Offset, QueueDep
from charstudio.jobs import JobInfo, JobPage, JobState

router = APIRouter(prefix="/jobs", tags=["jobs"])

_POLL_S = 0.25


@router.get("")
def list_jobs(
    queue: QueueDep,
    limit: Limit = 50,
    offset: Offset = 0,
    state: JobState | None = None,
    character: Annotated[str | None, Query(max_length=64)] = None,
) -> JobPage:
    """Jobs, newest first."""
    queue.recover_if_due()
    return queue.store.page(state=state, character=character, limit=limit, offset=offset)


@router.get("/{job_id}")
def show_job(job_id: str, queue: QueueDep) -> JobInfo:
    """State, progress, result and error of one job."""
    queue.recover_if_due()
    return queue.store.get(job_id)


@router.post("/{job_id}/cancel")
def cancel_job(job_id: str, queue: QueueDep) -> JobInfo:
    """Cancel a queued job, or stop a running one at its next step (409 if finished)."""
    return queue.cancel(job_id)


@router.get("/{job_id}/events", response_class=StreamingResponse)
async def job_events(job_id: str, queue: QueueDep) -> StreamingResponse:
    """``text/event-stream``: a ``progress`` event whenever the job changes, then ``end``."""
    first = await run_in_threadpool(queue.store.get, job_id)  # 404 before streaming

    async def events() -> AsyncIterator[str]:
        last = None
        info = first
        while True:
            payload = info.model_dump_json()
            if payload != last:
                yield f"event: progress\ndata: {payload}\n\n"
                last = payload
            if info.finished:
                yield f"event: end\ndata: {json.dumps({'state': info.state})}\n\n"
                return
            await asyncio.sleep(_POLL_S)
            info = await run_in_threadpool(queue.store.get, job_id)

    return StreamingResponse(
        events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
    )
