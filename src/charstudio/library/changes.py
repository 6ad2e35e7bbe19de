"""Has the library database changed? SQLite's ``PRAGMA data_version``, for caches of reads.

A connection's ``data_version`` changes whenever another connection, in this process or
any other, commits to the database file; a connection that never writes therefore sees
every commit (https://sqlite.org/pragma.html#pragma_data_version). :class:`ChangeCounter`
keeps one such read-only connection and answers in a few microseconds, so a hot read (the
character listing) can reuse its last answer while nothing was committed instead of
running its query again. PostgreSQL has no such counter: :meth:`ChangeCounter.value` is
``None`` there (and for an in-memory SQLite database), which means "unknown: read again".
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from urllib.parse import quote

from sqlalchemy import Engine

__all__ = ["ChangeCounter"]


class ChangeCounter:
    """The database's change counter, for as long as the engine's database is a file."""

    def __init__(self, engine: Engine) -> None:
        database = engine.url.database if engine.dialect.name == "sqlite" else None
        self._path = None if database in (None, "", ":memory:") else Path(str(database))
        self._connection: sqlite3.Connection | None = None
        self._opened = 0  # connections opened so far
        self._lock = threading.Lock()  # one check at a time on the shared connection

    def value(self) -> tuple[int, int] | None:
        """A value that differs from the last one if anything was committed since, or
        ``None`` when this cannot be known (not a SQLite file, or the check failed). It
        holds which connection read it: counters of two connections are not comparable.
        (A database file must not be replaced while charstudio has it open, which SQLite
        itself does not support: restore a backup with the server stopped.)"""
        if self._path is None:
            return None
        with self._lock:
            try:
                if self._connection is None:
                    self._connection = sqlite3.connect(
                        f"file:{quote(str(self._path.absolute()))}?mode=ro",
                        uri=True,
                        check_same_thread=False,  # guarded by the lock
                    )
                    self._opened += 1
                row = self._connection.execute("PRAGMA data_version").fetchone()
            except sqlite3.Error:
                self._close()
                return None  # the read behind the cache reports the problem itself
            return self._opened, int(row[0])

    def close(self) -> None:
        with self._lock:
            self._close()

    def _close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
