"""Job records in the library database: the queue's source of truth.

huey carries only "run job <id>" messages; what a job is, its state and its progress live
here, so they survive restarts and every process (API, workers on several machines) sees
the same thing. Each state change is one conditional UPDATE, so two processes can never
both win:

* :meth:`JobStore.claim` moves ``queued -> running`` only if the job is still queued: a
  message delivered twice (huey retries, a recovered job enqueued again) runs once.
* :meth:`JobStore.cancel` moves ``queued -> cancelled`` directly, or flags a running job;
  the worker sees the flag at the job's next progress step.
* :meth:`JobStore.stale` finds running jobs whose worker stopped beating (killed, out of
  memory, machine gone); :meth:`JobStore.requeue_or_fail` puts each back in the queue once
  more, or fails it with the reason — never "running" forever.

A finished job's result names its files relative to the data root, as the library's rows
do (:func:`~charstudio.library.stored_paths.to_stored_json`): the worker that ran it may
mount the shared root at another path than the API, the CLI or the studio reading it, so
:meth:`JobStore.succeed` stores them relative and every read (:meth:`JobStore.get`,
:meth:`JobStore.page`) gives them as files under this process's own ``home``.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from charstudio.jobs.types import JobFinished, JobInfo, JobNotFound, JobPage, JobState
from charstudio.library.database import Database
from charstudio.library.jobs_table import delete_job, insert_job, update_job
from charstudio.library.models import Character, Job
from charstudio.library.names import name_key
from charstudio.library.stored_paths import from_stored_json, to_stored_json

__all__ = ["JobStore"]


def _now() -> datetime:
    return datetime.now(UTC)


def _possible_id(job_id: str) -> bool:
    """Whether ``job_id`` could be in the ``id`` column at all: PostgreSQL refuses a NUL in
    any text, so an id from a request is checked here instead of failing the query."""
    return len(job_id) <= _ID_LENGTH and "\x00" not in job_id


_ID_LENGTH = 36


class JobStore:
    """Create, claim, update and finish job records; ``home``: this machine's data root,
    which stored results are relative to."""

    def __init__(self, db: Database, home: Path) -> None:
        self.db = db
        self.home = home

    # -- create and read --------------------------------------------------------------
    def create(
        self, kind: str, *, character: str | None, params: dict[str, Any], message: str = ""
    ) -> JobInfo:
        """A new queued job. ``character`` must be the stored name (already resolved)."""
        with self.db.sessions.begin() as session:
            character_id = None
            if character is not None:
                character_id = session.scalar(  # by the unique, indexed key
                    select(Character.id).where(Character.name_key == name_key(character))
                )
            job = insert_job(
                session,
                job_id=uuid.uuid4().hex,
                kind=kind,
                character_id=character_id,
                state="queued",
                params=params,
                message=message,
            )
            return self._info(job, character)

    def get(self, job_id: str) -> JobInfo:
        """Raises :class:`JobNotFound`."""
        with self.db.sessions() as session:
            row = None
            if _possible_id(job_id):
                row = session.execute(
                    select(Job, Character.name)
                    .outerjoin(Character, Job.character_id == Character.id)
                    .where(Job.id == job_id)
                ).first()
            if row is None:
                raise JobNotFound(
                    f"no job with id {job_id!r}; list jobs with GET /api/v1/jobs "
                    "or `charstudio jobs list`"
                )
            return self._info(row[0], row[1])

    def page(
        self,
        *,
        state: JobState | None = None,
        character: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> JobPage:
        """Jobs, newest first, optionally of one state or character."""
        query = select(Job, Character.name).outerjoin(Character, Job.character_id == Character.id)
        if state is not None:
            query = query.where(Job.state == state)
        if character is not None:
            query = query.where(Character.name == character)
        with self.db.sessions() as session:
            total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
            rows = session.execute(
                query.order_by(Job.created_at.desc(), Job.id).limit(limit).offset(offset)
            ).all()
            items = [self._info(job, name) for job, name in rows]
        return JobPage(items=items, total=total, limit=limit, offset=offset)

    def queued_kinds(self, *, older_than_s: float = 0.0) -> list[tuple[str, str]]:
        """Queued jobs as ``(id, kind)``, oldest first; with ``older_than_s``, only those
        queued before then."""
        cutoff = _now() - timedelta(seconds=older_than_s)
        with self.db.sessions() as session:
            query = select(Job.id, Job.kind).where(Job.state == "queued", Job.created_at <= cutoff)
            return [(row[0], row[1]) for row in session.execute(query.order_by(Job.created_at))]

    def delete_queued(self, job_id: str) -> None:
        """Remove a job whose message could not be sent (submitting failed as a whole)."""
        with self.db.sessions.begin() as session:
            delete_job(session, job_id, Job.state == "queued")

    # -- state changes: each one conditional UPDATE ----------------------------------------
    def claim(self, job_id: str, worker: str) -> bool:
        """``queued -> running`` for this worker; False if it was not queued any more."""
        now = _now()
        return self._update(
            job_id,
            Job.state == "queued",
            state="running",
            worker=worker,
            attempts=Job.attempts + 1,
            started_at=now,
            heartbeat_at=now,
            message="started",
        )

    def progress(self, job_id: str, step: int, total: int, message: str) -> bool:
        """Record progress and a heartbeat; returns whether a cancel was requested."""
        self._update(
            job_id,
            Job.state == "running",
            progress_step=step,
            progress_total=total,
            message=message[:2000],
            heartbeat_at=_now(),
        )
        with self.db.sessions() as session:
            return bool(session.scalar(select(Job.cancel_requested).where(Job.id == job_id)))

    def heartbeat(self, job_id: str) -> None:
        self._update(job_id, Job.state == "running", heartbeat_at=_now())

    def succeed(self, job_id: str, result: dict[str, Any]) -> None:
        """Close a job that ran to its end: ``partial`` when its result says ``partial``
        (made less than asked), else ``succeeded``. Its files are stored relative to the
        data root (the module docstring)."""
        stored = to_stored_json(self.home, result)
        if result.get("partial") is True:
            self._finish(job_id, "partial", result=stored, message="partial")
        else:
            self._finish(job_id, "succeeded", result=stored, message="done")

    def fail(self, job_id: str, error: str) -> None:
        self._finish(job_id, "failed", error=error, message="failed")

    def mark_cancelled(self, job_id: str) -> None:
        self._finish(job_id, "cancelled", message="cancelled")

    def cancel(self, job_id: str) -> JobInfo:
        """Cancel a queued job now, or ask a running one to stop at its next step.

        Raises:
            JobNotFound: no such job.
            JobFinished: it already finished.
        """
        self.get(job_id)  # JobNotFound first
        if self._update(
            job_id,
            Job.state == "queued",
            state="cancelled",
            finished_at=_now(),
            message="cancelled before it started",
        ) or self._update(job_id, Job.state == "running", cancel_requested=True):
            return self.get(job_id)
        state = self.get(job_id).state
        raise JobFinished(f"job {job_id} already {state}; nothing to cancel")

    def stale(self, *, older_than_s: float) -> list[JobInfo]:
        """Running jobs whose last heartbeat is older than ``older_than_s`` seconds."""
        cutoff = _now() - timedelta(seconds=older_than_s)
        with self.db.sessions() as session:
            ids = list(
                session.scalars(
                    select(Job.id).where(Job.state == "running", Job.heartbeat_at < cutoff)
                )
            )
        return [self.get(i) for i in ids]

    def running_on(self, worker_prefix: str) -> list[JobInfo]:
        """Running jobs claimed by workers whose id starts with ``worker_prefix``."""
        with self.db.sessions() as session:
            ids = list(
                session.scalars(
                    select(Job.id).where(
                        Job.state == "running", Job.worker.startswith(worker_prefix)
                    )
                )
            )
        return [self.get(i) for i in ids]

    def requeue_or_fail(self, job: JobInfo, *, max_attempts: int, why: str) -> bool:
        """Put a job whose worker stopped back in the queue (True), or fail it with the
        reason once it has had ``max_attempts`` tries (False)."""
        running = Job.state == "running"
        if job.attempts < max_attempts and not job.cancel_requested:
            return self._update(
                job.id,
                running,
                Job.worker == job.worker,
                state="queued",
                worker=None,
                message=f"re-queued: {why}",
            )
        state = "cancelled" if job.cancel_requested else "failed"
        self._update(
            job.id,
            running,
            Job.worker == job.worker,
            state=state,
            finished_at=_now(),
            message=state,
            error=""
            if state == "cancelled"
            else (f"{why} (attempt {job.attempts} of {max_attempts}); submit it again"),
        )
        return False

    # -- helpers ------------------------------------------------------------------------
    def _finish(self, job_id: str, state: JobState, **values: Any) -> None:
        self._update(job_id, Job.state == "running", state=state, finished_at=_now(), **values)

    def _update(self, job_id: str, *conditions: Any, **values: Any) -> bool:
        """One conditional UPDATE; True if it changed the job (the conditions held)."""
        with self.db.sessions.begin() as session:
            return update_job(session, job_id, *conditions, **values)

    def _info(self, job: Job, character: str | None) -> JobInfo:
        return JobInfo(
            id=job.id,
            kind=job.kind,
            character=character,
            state=job.state,  # pydantic checks it is a JobState
            progress_step=job.progress_step or 0,
            progress_total=job.progress_total or 0,
            message=job.message or "",
            params=job.params or {},
            result=from_stored_json(self.home, job.result or {}),
            error=job.error or "",
            attempts=job.attempts or 0,
            worker=job.worker,
            cancel_requested=bool(job.cancel_requested),
            created_at=job.created_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
        )
