"""Database engines: the URL (``postgresql://`` means psycopg 3), SQLite's pragmas,
PostgreSQL's connection checks, and the URL as people may see it (no password)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from charstudio.errors import DatabaseError

__all__ = ["display_url", "engine_url", "first_line", "make_engine"]

_SQLITE_BUSY_TIMEOUT_MS = 30_000


def engine_url(url: str) -> URL:
    """The URL SQLAlchemy is given: ``postgresql://`` means psycopg 3, the driver charstudio
    installs (SQLAlchemy's own default is psycopg2).

    Raises:
        DatabaseError: not a database URL.
    """
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise DatabaseError(
            f"{url!r} is not a database URL; use sqlite:///PATH or "
            "postgresql+psycopg://USER:PASSWORD@HOST:PORT/DATABASE (CHARSTUDIO_DATABASE_URL)"
        ) from exc
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def make_engine(url: str) -> Engine:
    """Create an engine; SQLite gets WAL, foreign keys and a busy timeout on every connection,
    PostgreSQL a connect timeout and a liveness check of pooled connections (a restarted
    server or a dropped network connection costs one retry, not an error).

    Raises:
        DatabaseError: an unknown kind of database, or its driver is not installed.
    """
    parsed = engine_url(url)
    options: dict[str, Any] = {}
    if parsed.get_backend_name() == "postgresql":
        options = {"pool_pre_ping": True, "connect_args": {"connect_timeout": 10}}
    try:
        engine = create_engine(parsed, **options)
    except (NoSuchModuleError, ModuleNotFoundError) as exc:
        hint = (
            "pip install 'charstudio[postgresql]'"
            if parsed.get_backend_name() == "postgresql"
            else "use sqlite:///PATH or postgresql+psycopg://..."
        )
        raise DatabaseError(
            f"cannot use the database {display_url(url)}: {exc.__class__.__name__}: "
            f"{first_line(exc)}; {hint}"
        ) from exc
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers (the API, the UI) run while a worker writes.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    # Two processes adding to one library wait for each other instead of failing at once.
    cursor.execute(f"PRAGMA busy_timeout={_SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def display_url(url: str) -> str:
    """The URL without a password."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "(not a database URL)"


def first_line(exc: BaseException) -> str:
    text = str(exc)
    return text.splitlines()[0] if text else exc.__class__.__name__
