"""Typed job records, requests and the errors of the job queue."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from charstudio.errors import JobCancelled, JobFinished, JobNotFound

__all__ = [
    "FINISHED",
    "WITH_RESULT",
    "JobCancelled",
    "JobContext",
    "JobFinished",
    "JobInfo",
    "JobNotFound",
    "JobPage",
    "JobState",
]

# "partial": the job ran to its end but made less than asked (a gated generation whose
# extra attempts ran out before every requested image passed QC); its result is complete.
JobState = Literal["queued", "running", "succeeded", "partial", "failed", "cancelled"]
FINISHED: frozenset[str] = frozenset({"succeeded", "partial", "failed", "cancelled"})
WITH_RESULT: frozenset[str] = frozenset({"succeeded", "partial"})


class JobInfo(BaseModel):
    """A job as the API and CLI show it."""

    model_config = ConfigDict(frozen=True)

    id: str
    kind: str
    character: str | None
    state: JobState
    progress_step: int
    progress_total: int
    message: str
    params: dict[str, Any]
    result: dict[str, Any]
    error: str
    attempts: int
    worker: str | None
    cancel_requested: bool
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @property
    def finished(self) -> bool:
        return self.state in FINISHED

    @property
    def has_result(self) -> bool:
        """Ran to its end: ``succeeded``, or ``partial`` (less than asked, see JobState)."""
        return self.state in WITH_RESULT


class JobPage(BaseModel):
    """One page of a job listing, newest first."""

    model_config = ConfigDict(frozen=True)

    items: list[JobInfo]
    total: int
    limit: int
    offset: int


class JobContext(BaseModel):
    """What a job handler gets: its parameters and a progress callback.

    ``progress(step, total, message)`` records progress and the heartbeat, and raises
    :class:`JobCancelled` when someone asked to cancel the job — handlers call it between
    units of work, so cancelling takes effect at the next one.
    """

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    job_id: str
    character: str | None
    params: dict[str, Any]
    progress: Callable[[int, int, str], None]
    # Which try this is: above 1, an earlier one died mid-job (its worker was killed)
    # and may have left part of its work behind.
    attempt: int = 1
