"""The job queue: records in the library, "run job <id>" messages on huey.

:class:`JobQueue` is built once per process (API, worker, CLI) from the services. Submitting
writes a queued :class:`~charstudio.library.models.Job` row and enqueues its id on its
kind's huey queue (:mod:`charstudio.jobs.messages`) — SQLite storage next to the database
by default (one box), Redis when ``queue_url`` says so (workers on several machines). If
the message cannot be sent (Redis down), the row is removed again and the caller gets
:class:`~charstudio.errors.QueueUnavailable`: nothing half-written. A worker (``charstudio
worker``, :mod:`charstudio.jobs.worker`) takes messages of the kinds it serves; each
message goes through :meth:`JobQueue.run`:

1. Claim the job (``queued -> running`` in one UPDATE; a second delivery finds it claimed
   and does nothing, so a job never runs twice).
2. Start a heartbeat thread (a long step without progress calls still shows life).
3. Run the handler for the job's kind with a progress callback that records progress and
   raises :class:`JobCancelled` once a cancel was requested.
4. Record the result, the error text, or the cancellation.

:meth:`JobQueue.recover` (run by every worker at start and then periodically) finds jobs
whose worker died — a dead process on this host, or no heartbeat for ``job_stale_s`` — and
re-queues each once more or fails it with the reason. It also re-sends the message of a job
that is queued in the library but not on huey (the queue store was reset, Redis flushed, or
the process died between writing the row and sending the message): a row is written before
its message, so that gap is the only way to lose one, and a job never runs twice because
running it starts with the claim.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from charstudio.errors import CharstudioError, InvalidParameter, QueueUnavailable
from charstudio.jobs.kinds import KINDS, JobKind
from charstudio.jobs.messages import Mailboxes
from charstudio.jobs.store import JobStore
from charstudio.jobs.types import JobCancelled, JobContext, JobInfo
from charstudio.services import Services

__all__ = ["JobQueue", "worker_id"]

log = logging.getLogger(__name__)


def worker_id() -> str:
    """``host:pid:thread`` — enough to tell whether the worker still lives."""
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


class JobQueue:
    """Submit, run, cancel and recover jobs."""

    def __init__(
        self, services: Services, *, kinds: Mapping[str, JobKind[Any, Any]] | None = None
    ) -> None:
        self.services = services
        self.settings = services.settings
        self.store = JobStore(services.db, services.store.home)
        self.kinds = dict(kinds or KINDS)
        self.mailboxes = Mailboxes(services.settings, self.kinds, self._run_message)
        self._last_recovery = float("-inf")

    # -- submitting ---------------------------------------------------------------------
    def submit(
        self,
        kind: JobKind[Any, Any],
        *,
        character: str | None,
        params: BaseModel,
        message: str = "",
    ) -> JobInfo:
        """Record a queued job and enqueue it (callers: :mod:`charstudio.jobs.submit`).

        Raises:
            InvalidParameter: ``kind`` is not one this queue runs, or ``params`` is not
                its params model.
        """
        if self.kinds.get(kind.name) is not kind:
            raise InvalidParameter(
                f"unknown job kind {kind.name!r}; choose one of {', '.join(sorted(self.kinds))}"
            )
        if not isinstance(params, kind.params):
            raise InvalidParameter(
                f"{kind.name} jobs take {kind.params.__name__}, not {type(params).__name__}"
            )
        info = self.store.create(
            kind.name,
            character=character,
            params=params.model_dump(mode="json"),
            message=message,
        )
        try:
            self.mailboxes.send(kind.name, info.id)
        except QueueUnavailable:
            self.store.delete_queued(info.id)  # nothing half-written: no row without a message
            raise
        return info

    def cancel(self, job_id: str) -> JobInfo:
        return self.store.cancel(job_id)

    # -- running ------------------------------------------------------------------------
    def _run_message(self, job_id: str) -> None:
        self.run(job_id)

    def run(self, job_id: str, *, worker: str | None = None) -> JobInfo:
        """Run one job to its end in this thread (see the module docstring)."""
        # 1. Claim.
        if not self.store.claim(job_id, worker or worker_id()):
            return self.store.get(job_id)  # already claimed, finished or cancelled
        job = self.store.get(job_id)
        # 2. Heartbeat.
        stop = threading.Event()
        beats = threading.Thread(
            target=self._beat, args=(job_id, stop), name=f"heartbeat-{job_id}", daemon=True
        )
        beats.start()
        # 3-4. Run and record.
        try:
            kind = self.kinds.get(job.kind)
            if kind is None:
                raise InvalidParameter(
                    f"job {job_id} is of kind {job.kind!r}, which this worker does not run"
                )
            result = kind.run(self.services, self._context(job))
        except JobCancelled:
            self.store.mark_cancelled(job_id)
        except CharstudioError as exc:
            self.store.fail(job_id, str(exc))
        except Exception as exc:  # a bug: keep the worker alive and say where to look
            log.exception("job %s (%s) crashed", job_id, job.kind)
            self.store.fail(
                job_id, f"unexpected {type(exc).__name__}: {exc} (the worker log has details)"
            )
        else:
            self.store.succeed(job_id, result)
        finally:
            stop.set()
            beats.join()
        return self.store.get(job_id)

    def _context(self, job: JobInfo) -> JobContext:
        def progress(step: int, total: int, message: str) -> None:
            if self.store.progress(job.id, step, total, message):
                raise JobCancelled(f"job {job.id} cancelled at step {step} of {total}")

        return JobContext(
            job_id=job.id,
            character=job.character,
            params=job.params,
            progress=progress,
            attempt=job.attempts,
        )

    def _beat(self, job_id: str, stop: threading.Event) -> None:
        while not stop.wait(self.settings.job_heartbeat_s):
            self.store.heartbeat(job_id)

    # -- recovering ---------------------------------------------------------------------
    def recover(self) -> list[str]:
        """Re-queue (once) or fail the jobs whose worker died; returns the re-queued ids."""
        host = socket.gethostname()
        orphans = {
            j.id: (j, f"its worker process ({_pid(j.worker)}) stopped while running it")
            for j in self.store.running_on(f"{host}:")
            if not _alive(_pid(j.worker))
        }
        stale_s = self.settings.job_stale_s
        for job in self.store.stale(older_than_s=stale_s):
            orphans.setdefault(
                job.id,
                (job, f"its worker {job.worker} sent no heartbeat for {stale_s:g} s"),
            )
        requeued = []
        for job, why in orphans.values():
            if self.store.requeue_or_fail(
                job, max_attempts=self.settings.job_max_attempts, why=why
            ):
                self._send(job.id, job.kind)
                requeued.append(job.id)
        return requeued + self.resend_lost()

    def resend_lost(self) -> list[str]:
        """Send again the message of each job queued for over ``job_heartbeat_s`` that huey
        does not hold; returns their ids."""
        # A kind this charstudio does not know (a newer one queued it) is left for a worker
        # that knows it: its queue is not read here, so its message would look lost.
        waiting = [
            (job_id, kind)
            for job_id, kind in self.store.queued_kinds(older_than_s=self.settings.job_heartbeat_s)
            if kind in self.mailboxes.hueys
        ]
        if not waiting:
            return []
        held = {job_id for _, job_id in self.mailboxes.pending()}
        lost = [(job_id, kind) for job_id, kind in waiting if job_id not in held]
        for job_id, kind in lost:
            log.warning("job %s was queued but its message was lost; sending it again", job_id)
            self._send(job_id, kind)
        return [job_id for job_id, _ in lost]

    def _send(self, job_id: str, kind: str) -> None:
        """Send a recovered job's message (a kind this charstudio does not know waits, as
        queued, for a worker that knows it)."""
        if kind in self.mailboxes.hueys:
            self.mailboxes.send(kind, job_id)
        else:
            log.warning("job %s is of kind %r, unknown here: left for another worker", job_id, kind)

    def recover_if_due(self) -> None:
        """:meth:`recover`, at most once per heartbeat interval: for readers (the API) that
        want a dead worker's job shown as re-queued or failed even when no worker runs."""
        now = time.monotonic()
        if now - self._last_recovery >= self.settings.job_heartbeat_s:
            self._last_recovery = now
            self.recover()

    def recover_periodically(self, stop: threading.Event) -> threading.Thread:
        """Run :meth:`recover` now and every ``job_stale_s / 2`` seconds until ``stop``."""

        def loop() -> None:
            while True:
                try:
                    self.recover()
                except CharstudioError:
                    log.exception("job recovery failed; will try again")
                if stop.wait(max(self.settings.job_stale_s / 2, 0.5)):
                    return

        thread = threading.Thread(target=loop, name="job-recovery", daemon=True)
        thread.start()
        return thread


def _pid(worker: str | None) -> int:
    try:
        return int((worker or "").split(":")[1])
    except (IndexError, ValueError):
        return -1


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True
