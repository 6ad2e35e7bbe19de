"""A worker: takes the messages of the job kinds it serves and runs them, N at a time.

``charstudio worker`` runs one :class:`Worker` on any machine that reaches the library's
database, its queue and its data root. ``--kinds generate,faces_score`` (a ComfyUI box) or
``--kinds train`` (a training GPU) limits it to those kinds; their messages wait in their
own queues (:mod:`charstudio.jobs.messages`) for a worker that takes them.
``--concurrency N`` runs N jobs at once, each in a thread of its own.

Every worker records itself in the ``workers`` table (:class:`WorkerRegistry`: host, pid,
kinds, a heartbeat every ``job_heartbeat_s``), so a job whose kind no running worker takes
can say so (``charstudio jobs show``) instead of waiting without a word. Every worker also
runs the recovery sweep (:meth:`~charstudio.jobs.queue.JobQueue.recover`) at start and
every ``job_stale_s / 2``: a job whose worker died is re-queued or failed, whichever worker
notices first (each change is one conditional UPDATE, so two noticing at once is harmless).

Stopping: the first SIGINT or SIGTERM stops taking messages and lets the running jobs
finish; a second one stops at once (the running jobs are recovered: at once by a worker on
the same machine, which sees the process gone, after ``job_stale_s`` elsewhere).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from types import FrameType
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import delete, select, update

from charstudio.errors import CharstudioError, InvalidParameter, QueueUnavailable
from charstudio.jobs.queue import JobQueue
from charstudio.jobs.types import JobInfo
from charstudio.library.database import Database
from charstudio.library.models import WorkerRecord

__all__ = ["Worker", "WorkerInfo", "WorkerRegistry", "parse_kinds", "waiting_note"]

log = logging.getLogger(__name__)
_Handler = Callable[[int, FrameType | None], Any] | int | signal.Handlers | None


def _now() -> datetime:
    return datetime.now(UTC)


class WorkerInfo(BaseModel):
    """A worker as the ``workers`` table shows it."""

    model_config = ConfigDict(frozen=True)

    id: str
    host: str
    pid: int
    kinds: list[str]
    concurrency: int
    started_at: datetime
    heartbeat_at: datetime


class WorkerRegistry:
    """The ``workers`` table: who runs, which kinds each takes, the last sign of life."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def register(self, worker: str, *, kinds: Sequence[str], concurrency: int) -> None:
        host, _, pid = worker.rpartition(":")
        now = _now()
        with self.db.sessions.begin() as session:
            session.execute(delete(WorkerRecord).where(WorkerRecord.id == worker))
            # Rows of workers gone for a day are forgotten.
            session.execute(
                delete(WorkerRecord).where(WorkerRecord.heartbeat_at < now - timedelta(days=1))
            )
            session.add(
                WorkerRecord(
                    id=worker,
                    host=host,
                    pid=int(pid),
                    kinds=list(kinds),
                    concurrency=concurrency,
                    started_at=now,
                    heartbeat_at=now,
                )
            )

    def beat(self, worker: str) -> None:
        with self.db.sessions.begin() as session:
            session.execute(
                update(WorkerRecord).where(WorkerRecord.id == worker).values(heartbeat_at=_now())
            )

    def remove(self, worker: str) -> None:
        with self.db.sessions.begin() as session:
            session.execute(delete(WorkerRecord).where(WorkerRecord.id == worker))

    def live(self, *, within_s: float) -> list[WorkerInfo]:
        """Workers that showed life in the last ``within_s`` seconds."""
        cutoff = _now() - timedelta(seconds=within_s)
        with self.db.sessions() as session:
            rows = session.scalars(
                select(WorkerRecord)
                .where(WorkerRecord.heartbeat_at >= cutoff)
                .order_by(WorkerRecord.id)
            ).all()
            return [WorkerInfo.model_validate(row, from_attributes=True) for row in rows]


def waiting_note(registry: WorkerRegistry, job: JobInfo, *, within_s: float) -> str | None:
    """Why a queued job may wait for ever: no running worker takes its kind (``None`` when
    one does, or the job is not queued)."""
    if job.state != "queued":
        return None
    workers = registry.live(within_s=within_s)
    if any(job.kind in w.kinds for w in workers):
        return None
    if not workers:
        return (
            f"no worker is running: start one with `charstudio worker` (or `charstudio "
            f"worker --kinds {job.kind}`) where the library's settings are"
        )
    running = "; ".join(f"{w.id} takes {', '.join(w.kinds)}" for w in workers)
    return (
        f"no running worker takes {job.kind} jobs ({running}): start one with "
        f"`charstudio worker --kinds {job.kind}`"
    )


def parse_kinds(text: str | None, known: Sequence[str]) -> list[str]:
    """``"generate,faces_score"`` -> the kinds, checked; ``None`` or empty: every kind.

    Raises:
        InvalidParameter: a kind charstudio does not have, with the ones it has.
    """
    if not text:
        return list(known)
    kinds = list(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    unknown = [k for k in kinds if k not in known]
    if unknown or not kinds:
        raise InvalidParameter(
            f"unknown job kind {', '.join(map(repr, unknown)) or repr(text)} in --kinds; "
            f"choose from {', '.join(known)}"
        )
    return kinds


class Worker:
    """Takes messages of ``kinds`` and runs them, ``concurrency`` at a time.

    Args:
        queue: The process's job queue (its services, kinds and mailboxes).
        kinds: The kinds to take (default: every kind the queue knows).
        concurrency: Jobs run at once.
    """

    def __init__(
        self, queue: JobQueue, *, kinds: Sequence[str] | None = None, concurrency: int = 1
    ) -> None:
        if concurrency < 1:
            raise InvalidParameter(f"--concurrency must be at least 1, not {concurrency}")
        self.queue = queue
        self.kinds = list(kinds) if kinds is not None else list(queue.kinds)
        parse_kinds(",".join(self.kinds), list(queue.kinds))
        self.concurrency = concurrency
        self.id = f"{socket.gethostname()}:{os.getpid()}"
        self.registry = WorkerRegistry(queue.services.db)
        self.stop = threading.Event()  # take no more messages
        self._busy = 0
        self._lock = threading.Lock()

    @property
    def busy(self) -> int:
        """Jobs running now."""
        return self._busy

    def run(self, *, handle_signals: bool = True) -> None:
        """Run until :attr:`stop` is set (or a signal arrives), then let the running jobs
        finish. A second signal stops at once (:class:`KeyboardInterrupt`)."""
        settings = self.queue.settings
        self.registry.register(self.id, kinds=self.kinds, concurrency=self.concurrency)
        recovery = self.queue.recover_periodically(self.stop)
        threads = [
            threading.Thread(target=self._take_and_run, name=f"job-runner-{n}", daemon=True)
            for n in range(self.concurrency)
        ]
        beats = threading.Thread(target=self._beat, name="worker-heartbeat", daemon=True)
        previous = self._install_signals() if handle_signals else {}
        try:
            for thread in [*threads, beats]:
                thread.start()
            while not self.stop.wait(0.5):
                pass
            if self.busy:
                log.warning(
                    "stopping: finishing %d running job(s); interrupt again to stop now "
                    "(they are re-queued)",
                    self.busy,
                )
            for thread in threads:
                thread.join()
        finally:
            self.stop.set()
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            recovery.join(timeout=settings.job_heartbeat_s)
            try:
                self.registry.remove(self.id)
            except CharstudioError:
                log.warning("could not remove worker %s from the workers table", self.id)

    def _install_signals(self) -> dict[int, _Handler]:
        if threading.current_thread() is not threading.main_thread():
            return {}

        def stop(signum: int, frame: FrameType | None) -> None:
            if self.stop.is_set():
                raise KeyboardInterrupt
            self.stop.set()

        previous: dict[int, _Handler] = {}
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, stop)
        return previous

    def _take_and_run(self) -> None:
        mailboxes = self.queue.mailboxes
        idle = 0.05
        while not self.stop.is_set():
            try:
                message = mailboxes.take(self.kinds, wait_s=1.0)
            except QueueUnavailable as exc:
                log.warning("%s; trying again", exc)
                self.stop.wait(5.0)
                continue
            if message is None:
                if not mailboxes.on_redis:  # Redis waited in BRPOP already
                    self.stop.wait(idle)
                    idle = min(idle * 2, 1.0)
                continue
            idle = 0.05
            with self._lock:
                self._busy += 1
            try:
                mailboxes.execute(message)
            except Exception:  # a bug in a handler's wrapper: keep the worker alive
                log.exception("job %s (%s) crashed its runner", message.job_id, message.kind)
            finally:
                with self._lock:
                    self._busy -= 1

    def _beat(self) -> None:
        while not self.stop.wait(self.queue.settings.job_heartbeat_s):
            try:
                self.registry.beat(self.id)
            except CharstudioError as exc:
                log.warning("worker heartbeat failed: %s", exc)
