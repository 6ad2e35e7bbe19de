"""A job's progress as Server-Sent Events, for the API and the studio.

The stream sends a ``progress`` event (the job as JSON) whenever the job's record changes,
polled every :data:`POLL_S` seconds off the event loop, and an ``end`` event once the job
has finished. The studio bounds it in time (``charstudio.web.pages.jobs``); the API does not.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, AsyncIterator

from starlette.concurrency import run_in_threadpool
from starlette.responses import StreamingResponse

from charstudio.jobs import JobInfo, JobQueue

__all__ = ["POLL_S", "event_stream", "open_job_events"]

POLL_S = 0.25


async def open_job_events(queue: JobQueue, job_id: str) -> AsyncGenerator[str, None]:
    """The events of job ``job_id``, read now so a missing job is a 404, not a broken stream.

    Raises:
        JobNotFound: no such job.
    """
    first = await run_in_threadpool(queue.store.get, job_id)
    return _events(queue, first)


async def _events(queue: JobQueue, first: JobInfo) -> AsyncGenerator[str, None]:
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
        await asyncio.sleep(POLL_S)
        info = await run_in_threadpool(queue.store.get, first.id)


def event_stream(events: AsyncIterator[str]) -> StreamingResponse:
    """``text/event-stream`` of ``events``, never cached."""
    return StreamingResponse(
        events, media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
    )
