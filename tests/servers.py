"""The real servers of the second test run: a PostgreSQL database and a clean Redis per test.

``scripts/test.sh`` starts both with ``scripts/services.sh`` and runs the library, jobs and
API tests again with ``--database-url`` and ``--queue-url`` (or ``CHARSTUDIO_TEST_DATABASE_URL``
and ``CHARSTUDIO_TEST_QUEUE_URL``). Each test then gets its own database, copied from a
template migrated once per session (``CREATE DATABASE ... TEMPLATE``: milliseconds, where
running the migrations takes a second), and an empty Redis database; the fixtures in
``tests/conftest.py`` put both in the test's ``CHARSTUDIO_DATABASE_URL`` and
``CHARSTUDIO_QUEUE_URL``, so every ``load_settings()`` of the test, and every process it
starts, uses them.
"""

from __future__ import annotations

import itertools
import os

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url

from charstudio.library.database import open_database

__all__ = ["Servers"]


class Servers:
    """PostgreSQL databases made and dropped per test, and the Redis queue emptied."""

    def __init__(self, database_url: str, queue_url: str) -> None:
        self.database_url = database_url
        self.queue_url = queue_url
        self._admin: Engine = create_engine(database_url, isolation_level="AUTOCOMMIT")
        self._names = itertools.count(1)
        self._prefix = f"cstest_{os.getpid()}"
        self._template: str | None = None

    def url_of(self, name: str) -> str:
        return make_url(self.database_url).set(database=name).render_as_string(False)

    def _execute(self, sql: str) -> None:
        with self._admin.connect() as conn:
            conn.execute(text(sql))

    def template(self) -> str:
        """A database at the newest schema (made once), for new ones to copy."""
        if self._template is None:
            name = f"{self._prefix}_template"
            self._execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            self._execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
            db = open_database(self.url_of(name))
            db.engine.dispose()  # a template must have no connections
            self._template = name
        return self._template

    def new_database(self, *, empty: bool = False) -> str:
        """The URL of a new database: at the newest schema, or ``empty``."""
        name = f"{self._prefix}_{next(self._names)}"
        source = "template0" if empty else self.template()
        self._execute(f'CREATE DATABASE "{name}" TEMPLATE "{source}"')
        return self.url_of(name)

    def drop(self, url: str) -> None:
        """Drop a test's database, ending whatever connections it left open."""
        name = make_url(url).database
        self._execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def flush_queue(self) -> None:
        import redis

        client = redis.Redis.from_url(self.queue_url)
        try:
            client.flushdb()
        finally:
            client.close()

    def close(self) -> None:
        if self._template is not None:
            self._execute(f'DROP DATABASE IF EXISTS "{self._template}" WITH (FORCE)')
        self._admin.dispose()
