"""The ``jobs`` table's one writer.

Two callers record jobs: the durable queue (:class:`charstudio.jobs.JobStore`: queued jobs,
claims, progress, cancel, recovery) and a generation run outside the queue
(``backends/records.py``: a ``charstudio generate`` call records itself as a running job, then
finishes it). Both write through these functions, so what a job row may hold and how a
state change is made (one conditional UPDATE that says whether it won) is decided here once.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, update
from sqlalchemy.orm import Session

from charstudio.library.models import Job

__all__ = ["delete_job", "insert_job", "update_job"]


def insert_job(
    session: Session,
    *,
    job_id: str,
    kind: str,
    character_id: int | None,
    state: str,
    params: dict[str, Any],
    **values: Any,
) -> Job:
    """Add a job row (flushed, so its defaults are filled in) and return it."""
    job = Job(
        id=job_id,
        kind=kind,
        character_id=character_id,
        state=state,
        params=params,
        result=values.pop("result", {}),
        **values,
    )
    session.add(job)
    session.flush()
    return job


def update_job(session: Session, job_id: str, *conditions: Any, **values: Any) -> bool:
    """One conditional UPDATE of a job; True if it changed the row (the conditions held).
    Two processes racing for the same change can never both win."""
    result = session.execute(update(Job).where(Job.id == job_id, *conditions).values(**values))
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]  # CursorResult


def delete_job(session: Session, job_id: str, *conditions: Any) -> bool:
    """Delete a job if the conditions hold (a queued job whose message was never sent)."""
    result = session.execute(delete(Job).where(Job.id == job_id, *conditions))
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]  # CursorResult
