"""``/api/v1/jobs``: list, show, cancel, and a Server-Sent Events stream of progress."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from charstudio.http import Limit, Offset, QueueDep, event_stream, open_job_events
from charstudio.jobs import JobInfo, JobPage, JobState

router = APIRouter(prefix="/jobs", tags=["jobs"])


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
    return event_stream(await open_job_events(queue, job_id))  # 404 before streaming
