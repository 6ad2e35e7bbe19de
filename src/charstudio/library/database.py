"""Opening the database: engine, SQLite pragmas, migrations and the schema-version check.

:func:`open_database` is the only way in. It creates a new database at the newest schema,
upgrades an older one in place (SQLite files are copied to ``charstudio.db.bak-<rev>``
first), and refuses one made by a newer charstudio rather than guessing at its schema.
Services open sessions with :meth:`Database.session` and :meth:`Database.transaction`, which
turn SQLAlchemy's errors into :class:`~charstudio.errors.DatabaseError`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event, inspect
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from charstudio.errors import DatabaseError, SchemaTooNew, storage_error_from

__all__ = [
    "Database",
    "Sessions",
    "alembic_config",
    "database_error",
    "head_revision",
    "open_database",
]

_MIGRATIONS = Path(__file__).parent / "migrations"
_SQLITE_BUSY_TIMEOUT_MS = 30_000


def database_error(exc: SQLAlchemyError) -> DatabaseError:
    """The one message for a database failure (a locked SQLite file, a full disk, a lost
    PostgreSQL connection) in any service."""
    first = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
    return DatabaseError(
        f"database error: {first}; check that the data directory is writable and not full "
        "(a locked database is held by another process: try again)"
    )


class Sessions:
    """The session factory every service uses: ``with db.sessions() as session`` (read) or
    ``with db.sessions.begin() as session`` (one transaction). Any SQLAlchemy error leaving
    the block becomes :class:`~charstudio.errors.DatabaseError` here, at the boundary, so no
    service can let one through as an "internal error"."""

    def __init__(self, factory: sessionmaker[Session]) -> None:
        self.factory = factory

    @contextlib.contextmanager
    def __call__(self) -> Iterator[Session]:
        try:
            with self.factory() as session:
                yield session
        except SQLAlchemyError as exc:
            raise database_error(exc) from exc

    @contextlib.contextmanager
    def reading(self) -> Iterator[Connection]:
        """A plain connection, for reads of rows rather than ORM objects: a fifth of the
        work of opening a session, for the API's hot listings."""
        try:
            with self.engine.connect() as connection:
                yield connection
        except SQLAlchemyError as exc:
            raise database_error(exc) from exc

    @property
    def engine(self) -> Engine:
        bind = self.factory.kw["bind"]
        assert isinstance(bind, Engine)
        return bind

    @contextlib.contextmanager
    def begin(self) -> Iterator[Session]:
        try:
            with self.factory.begin() as session:
                yield session
        except SQLAlchemyError as exc:
            raise database_error(exc) from exc


@dataclass(frozen=True)
class Database:
    """An engine and its session factory, at the newest schema."""

    engine: Engine
    sessions: Sessions
    url: str
    revision: str


def alembic_config(url: str) -> Config:
    """An Alembic config pointing at charstudio's migrations and the given database."""
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def head_revision() -> str:
    """The newest schema revision this version of charstudio knows."""
    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert head is not None, "charstudio ships at least one migration"
    return head


def make_engine(url: str) -> Engine:
    """Create an engine; SQLite gets WAL, foreign keys and a busy timeout on every connection."""
    engine = create_engine(url)
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


def current_revision(engine: Engine) -> str | None:
    """The revision stamped in the database, or ``None`` for an empty one."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def open_database(url: str, *, file_mode: int | None = None) -> Database:
    """Open (creating or upgrading as needed) the library database at ``url``.

    A SQLite file is created at ``file_mode`` when given (whatever the umask); SQLite gives
    its ``-wal`` and ``-shm`` files the database file's mode.

    Raises:
        SchemaTooNew: the database was written by a newer charstudio.
        DatabaseError: it cannot be opened or migrated; the message says why.
    """
    engine = make_engine(url)
    if file_mode is not None:
        _create_sqlite_file(engine, file_mode)
    try:
        found = current_revision(engine)
        head = head_revision()
        if found is not None and found != head:
            _check_known(found, url)
        if found is None and _has_foreign_tables(engine):
            raise DatabaseError(
                f"{_display(url)} holds tables that are not a charstudio library; "
                "point CHARSTUDIO_DATABASE_URL at an empty database"
            )
        if found != head:
            _backup_sqlite(engine, found)
            with engine.begin() as conn:
                config = alembic_config(url)
                config.attributes["connection"] = conn
                command.upgrade(config, "head")
    except (SchemaTooNew, DatabaseError):
        engine.dispose()
        raise
    except SQLAlchemyError as exc:
        engine.dispose()
        raise DatabaseError(
            f"cannot open the database {_display(url)}: {exc.__class__.__name__}: "
            f"{str(exc).splitlines()[0]}; check the path and that the data directory is writable"
        ) from exc
    return Database(
        engine=engine,
        sessions=Sessions(sessionmaker(engine, expire_on_commit=False)),
        url=url,
        revision=head,
    )


def _create_sqlite_file(engine: Engine, mode: int) -> None:
    """Create an absent SQLite file empty at ``mode`` (SQLite takes an empty file as new)."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        return
    path = Path(database)
    if path.exists() or not path.parent.is_dir():
        return  # a missing folder is SQLite's error to report, as before
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:  # another process made it first
        return
    except OSError as exc:
        raise storage_error_from(exc, path) from exc
    try:
        os.fchmod(fd, mode)
    finally:
        os.close(fd)


def _check_known(found: str, url: str) -> None:
    script = ScriptDirectory.from_config(alembic_config(url))
    known = {rev.revision for rev in script.walk_revisions()}
    if found not in known:
        raise SchemaTooNew(
            f"the database {_display(url)} has schema revision {found!r}, which this "
            f"charstudio does not know (newest here: {head_revision()!r}); it was made by a "
            "newer charstudio: upgrade charstudio (pip install -U charstudio)"
        )


def _has_foreign_tables(engine: Engine) -> bool:
    return bool(set(inspect(engine).get_table_names()) - {"alembic_version"})


def _backup_sqlite(engine: Engine, found: str | None) -> None:
    if found is None or engine.dialect.name != "sqlite" or not engine.url.database:
        return
    path = Path(engine.url.database)
    if path.is_file():
        shutil.copy2(path, path.with_name(f"{path.name}.bak-{found}"))


def _display(url: str) -> str:
    """The URL without a password."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
