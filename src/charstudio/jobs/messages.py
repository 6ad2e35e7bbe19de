"""Where "run job <id>" messages travel: one huey queue per job kind.

A queue per kind lets a worker take only the kinds it serves (``charstudio worker --kinds
generate,faces_score`` on a ComfyUI box, ``--kinds train`` on a training GPU) while the
others wait for a worker that takes them. The queues live in huey's storage: SQLite
(``<home>/queue.db``, one box) or Redis (``redis://HOST:PORT/DB``, several machines), named
``charstudio.<kind>``. A worker waits on all of its kinds at once: on Redis with one
``BRPOP`` over their lists (the first message of any of them wakes it), on SQLite by looking
at each in turn.

Only the message travels here; what a job is and its state live in the library database
(:mod:`charstudio.jobs.store`). A message popped by a worker that then dies is not lost for
good: the job is still ``queued`` in the database, and the recovery sweep sends it again.
"""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from huey import Huey, RedisHuey  # type: ignore[import-untyped]
from huey.storage import SqliteStorage  # type: ignore[import-untyped]

from charstudio.config import Settings
from charstudio.errors import BackendUnavailable, InvalidParameter, QueueUnavailable

__all__ = ["TASK_NAME", "Mailboxes", "Message"]

TASK_NAME = "charstudio.run_job"


@dataclass(frozen=True)
class Message:
    """One message taken from a kind's queue: run it with :meth:`Mailboxes.execute`."""

    kind: str
    job_id: str
    task: Any  # huey's Task


class Mailboxes:
    """The huey queues of every job kind, on SQLite or Redis.

    Args:
        settings: ``queue_url`` (default ``sqlite:///<home>/queue.db``) and ``home``.
        kinds: The job kinds there is a queue for.
        handler: What a message runs: ``handler(job_id)``.
    """

    def __init__(
        self, settings: Settings, kinds: Iterable[str], handler: Callable[[str], None]
    ) -> None:
        self.url = self.describe(settings.queue_url)
        self._redis_pool: Any = None
        self.hueys: dict[str, Huey] = {}
        self._tasks: dict[str, Any] = {}  # huey's TaskWrapper: calling it enqueues
        build = self._factory(settings)
        for kind in kinds:
            huey = build(f"charstudio.{kind}")
            self._tasks[kind] = huey.task(name=TASK_NAME)(handler)
            self.hueys[kind] = huey
        self._turn = itertools.count()

    def _factory(self, settings: Settings) -> Callable[[str], Huey]:
        url = settings.queue_url
        if url is None or url.startswith("sqlite:///"):
            path = settings.home / "queue.db" if url is None else url.removeprefix("sqlite:///")
            settings.home.mkdir(parents=True, exist_ok=True)
            return lambda name: Huey(
                name=name, storage_class=_QueueStorage, filename=str(path), results=False
            )
        if url.startswith(("redis://", "rediss://", "unix://")):
            try:
                from redis import ConnectionPool
            except ImportError as exc:
                raise BackendUnavailable(
                    "queue_url names Redis but the redis client is not installed: "
                    "pip install 'charstudio[redis]'"
                ) from exc
            # One pool for every kind's queue; a dead server is noticed within seconds.
            self._redis_pool = ConnectionPool.from_url(
                url, socket_connect_timeout=5, socket_timeout=30, health_check_interval=30
            )
            pool = self._redis_pool
            return lambda name: RedisHuey(
                name=name, connection_pool=pool, results=False, clean_name=False, blocking=False
            )
        raise InvalidParameter(
            f"queue_url {url!r} is neither sqlite:///PATH nor redis://HOST:PORT/DB; fix "
            "CHARSTUDIO_QUEUE_URL"
        )

    @staticmethod
    def describe(queue_url: str | None) -> str:
        """The queue setting as shown to people: no password."""
        return _display(queue_url) if queue_url else "sqlite:///<home>/queue.db"

    @property
    def on_redis(self) -> bool:
        return self._redis_pool is not None

    # -- sending --------------------------------------------------------------------------
    def send(self, kind: str, job_id: str) -> None:
        """Put "run job ``job_id``" on ``kind``'s queue.

        Raises:
            QueueUnavailable: the queue cannot be reached (Redis down, queue file unwritable).
        """
        with self._reaching():
            self._tasks[kind](job_id)

    # -- taking ---------------------------------------------------------------------------
    def take(self, kinds: Sequence[str], *, wait_s: float) -> Message | None:
        """The next message of any of ``kinds``, waiting up to ``wait_s`` on Redis (on
        SQLite the caller waits between calls). Which kind is looked at first rotates, so
        a busy kind cannot starve the others.

        Raises:
            QueueUnavailable: the queue cannot be reached.
        """
        if not kinds:
            return None
        start = next(self._turn) % len(kinds)
        order = [*kinds[start:], *kinds[:start]]
        with self._reaching():
            if self.on_redis:
                return self._take_redis(order, wait_s)
            for kind in order:
                task = self.hueys[kind].dequeue()
                if task is not None:
                    return Message(kind, _job_of(task), task)
        return None

    def _take_redis(self, kinds: Sequence[str], wait_s: float) -> Message | None:
        storages = {self.hueys[k].storage.queue_key: k for k in kinds}
        conn = self.hueys[kinds[0]].storage.conn
        popped = conn.brpop(list(storages), timeout=max(1, round(wait_s)))
        if not popped:
            return None
        key, data = popped
        kind = storages[key.decode() if isinstance(key, bytes) else key]
        task = self.hueys[kind].deserialize_task(data)
        return Message(kind, _job_of(task), task)

    def execute(self, message: Message) -> None:
        """Run a taken message (its handler runs the job)."""
        self.hueys[message.kind].execute(message.task)

    # -- looking ----------------------------------------------------------------------------
    def pending(self) -> list[tuple[str, str]]:
        """Every waiting message as ``(kind, job id)``."""
        with self._reaching():
            return [
                (kind, _job_of(task))
                for kind, huey in self.hueys.items()
                for task in huey.pending()
            ]

    def pending_count(self) -> int:
        with self._reaching():
            return sum(huey.pending_count() for huey in self.hueys.values())

    def flush(self) -> None:
        """Drop every waiting message (tests; what a reset store or a flushed Redis does)."""
        with self._reaching():
            for huey in self.hueys.values():
                huey.flush()

    def check(self) -> None:
        """Raise :class:`QueueUnavailable` unless the queue answers."""
        with self._reaching():
            for huey in itertools.islice(self.hueys.values(), 1):
                huey.pending_count()

    def close(self) -> None:
        if self._redis_pool is not None:
            self._redis_pool.disconnect()

    @contextmanager
    def _reaching(self) -> Iterator[None]:
        try:
            yield
        except QueueUnavailable:
            raise
        except (sqlite3.Error, OSError) as exc:
            raise self._unavailable(exc) from exc
        except Exception as exc:
            if _is_redis_error(exc):
                raise self._unavailable(exc) from exc
            raise

    def _unavailable(self, exc: BaseException) -> QueueUnavailable:
        reason = " ".join(str(exc).split()) or exc.__class__.__name__
        return QueueUnavailable(
            f"the job queue {self.url} cannot be reached ({reason}); check that it runs "
            "and CHARSTUDIO_QUEUE_URL"
        )


def _job_of(task: Any) -> str:
    return str(task.args[0]) if task.args else ""


def _is_redis_error(exc: BaseException) -> bool:
    try:
        from redis.exceptions import RedisError
    except ImportError:
        return False
    return isinstance(exc, RedisError)


def _display(url: str) -> str:
    """The queue URL without a password."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.rsplit('@', 1)[1]}"
    return url


class _QueueStorage(SqliteStorage):  # type: ignore[misc]
    """huey's SQLite storage at ``synchronous=NORMAL``, as the library database is.

    huey leaves SQLite's default (FULL: an fsync per message, 6 ms here, one at a time under
    huey's lock) — the slowest step of submitting a job. The job row is the source of truth
    and is written first; a message lost to a power cut is sent again by
    :meth:`JobQueue.resend_lost`, so the fsync bought nothing.
    """

    def _create_connection(self) -> Any:
        connection = super()._create_connection()
        connection.execute("pragma synchronous=NORMAL")
        return connection
