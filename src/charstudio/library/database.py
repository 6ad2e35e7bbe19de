"""Opening the database: engine, SQLite pragmas, migrations and the schema-version check.

:func:`open_database` is the only way in. It creates a new database at the newest schema,
upgrades an older one in place (SQLite files are copied to ``charstudio.db.bak-<rev>``
first), and refuses one made by a newer charstudio rather than guessing at its schema.
Who may migrate is the caller's ``migrate``: ``"auto"`` (every command) upgrades a SQLite
file but not a PostgreSQL library that several machines share, which is upgraded once, on
purpose (``charstudio db upgrade``); ``"never"`` (a worker) migrates nothing.
Services open sessions with :meth:`Database.session` and :meth:`Database.transaction`, which
turn SQLAlchemy's errors into :class:`~charstudio.errors.DatabaseError`.

SQLite and PostgreSQL (``postgresql+psycopg://``, psycopg 3) run the same code and the same
migrations: what differs is handled here (SQLite's pragmas; PostgreSQL's connection checks
and its advisory locks, :meth:`Database.lock`, which several machines see where a lock file
is only seen on one).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, inspect, select, text
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from charstudio.errors import (
    Conflict,
    DatabaseError,
    SchemaOutdated,
    SchemaTooNew,
    storage_error_from,
)
from charstudio.library.engines import display_url, engine_url, first_line, make_engine
from charstudio.library.models import LibraryInfo

__all__ = [
    "Database",
    "Migrate",
    "Sessions",
    "alembic_config",
    "database_error",
    "display_url",
    "head_revision",
    "open_database",
]

Migrate = Literal["auto", "never", "always"]

_MIGRATIONS = Path(__file__).parent / "migrations"


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
    """An engine and its session factory, at the newest schema.

    Attributes:
        library_id: The library's id (``library`` table; ``library.json`` in the data root).
        found: The revision the database was at before this open (``None``: it was empty
            and was created now).
    """

    engine: Engine
    sessions: Sessions
    url: str
    revision: str
    library_id: str = ""
    found: str | None = ""

    @property
    def is_postgresql(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    @contextlib.contextmanager
    def lock(self, key: str, *, timeout_s: float) -> Iterator[None]:
        """Hold a lock named ``key`` across machines: a PostgreSQL advisory lock on a
        connection of its own (released when the block ends, or by the server when the
        process dies). SQLite serves one machine, whose lock files suffice: a no-op.

        Raises:
            Conflict: another process held it for longer than ``timeout_s``.
            DatabaseError: the database cannot be reached.
        """
        if not self.is_postgresql:
            yield
            return
        number = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big", signed=True)
        deadline = time.monotonic() + timeout_s
        try:
            conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        except SQLAlchemyError as exc:
            raise database_error(exc) from exc
        try:
            delay = 0.02
            try_lock = text("SELECT pg_try_advisory_lock(:n)")
            while not conn.scalar(try_lock, {"n": number}):
                if time.monotonic() > deadline:
                    raise Conflict(
                        f"{key} is being changed by another charstudio process (on this or "
                        "another machine); wait for it to finish and try again"
                    )
                time.sleep(delay)
                delay = min(delay * 2, 0.5)
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:n)"), {"n": number})
        except SQLAlchemyError as exc:
            raise database_error(exc) from exc
        finally:
            conn.close()


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


def current_revision(engine: Engine) -> str | None:
    """The revision stamped in the database, or ``None`` for an empty one."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def open_database(
    url: str,
    *,
    file_mode: int | None = None,
    migrate: Migrate = "auto",
    data_root: Path | None = None,
) -> Database:
    """Open (creating or upgrading as ``migrate`` allows) the library database at ``url``.

    A SQLite file is created at ``file_mode`` when given (whatever the umask); SQLite gives
    its ``-wal`` and ``-shm`` files the database file's mode.

    Args:
        data_root: The library's data root (``CHARSTUDIO_HOME``), which migrations that
            rewrite file paths need (revision 0011 makes the paths under it relative);
            given to Alembic as ``config.attributes["data_root"]``.
        migrate: ``"auto"``: create an empty database; upgrade an older SQLite one (after a
            backup copy), but not a PostgreSQL one. ``"always"``: create or upgrade any
            (``charstudio init``, ``charstudio db upgrade``). ``"never"``: neither (a
            worker: it only runs on a library made and upgraded by an operator).

    Raises:
        SchemaTooNew: the database was written by a newer charstudio.
        SchemaOutdated: it is empty or older and ``migrate`` does not allow changing it;
            the message gives the command that does.
        DatabaseError: it cannot be reached, opened or migrated; the message names the
            server (host and port) and says why.
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
                f"{display_url(url)} holds tables that are not a charstudio library; "
                "point CHARSTUDIO_DATABASE_URL at an empty database"
            )
        if found != head:
            _may_migrate(engine, url, found, head, migrate)
            _backup_sqlite(engine, found)
            with engine.begin() as conn:
                config = alembic_config(url)
                config.attributes["connection"] = conn
                config.attributes["data_root"] = data_root
                command.upgrade(config, "head")
        with engine.connect() as conn:
            library_id = conn.scalar(select(LibraryInfo.id)) or ""
    except (SchemaTooNew, DatabaseError):
        engine.dispose()
        raise
    except OperationalError as exc:
        engine.dispose()
        raise _unreachable(url, exc) from exc
    except SQLAlchemyError as exc:
        engine.dispose()
        raise DatabaseError(
            f"cannot open the database {display_url(url)}: {exc.__class__.__name__}: "
            f"{first_line(exc)}; check the path and that the data directory is writable"
        ) from exc
    return Database(
        engine=engine,
        sessions=Sessions(sessionmaker(engine, expire_on_commit=False)),
        url=url,
        revision=head,
        library_id=library_id,
        found=found,
    )


def _may_migrate(engine: Engine, url: str, found: str | None, head: str, migrate: Migrate) -> None:
    """Raise :class:`SchemaOutdated` unless ``migrate`` allows this creation or upgrade."""
    if migrate == "always":
        return
    shared = engine.dialect.name != "sqlite"
    if found is None and migrate == "auto":
        return  # a new, empty database: nothing in it to change
    if found is not None and migrate == "auto" and not shared:
        return
    where = display_url(url)
    if found is None:
        raise SchemaOutdated(
            f"the database {where} holds no charstudio library yet: run `charstudio init` "
            "once (with the same CHARSTUDIO_DATABASE_URL and CHARSTUDIO_HOME) before "
            "starting workers"
        )
    raise SchemaOutdated(
        f"the database {where} is at schema revision {found!r} and this charstudio needs "
        f"{head!r}: stop the workers, run `charstudio db upgrade` once (from one machine), "
        "then start them again"
        + ("" if shared else " (a worker never upgrades the library by itself)")
    )


def _unreachable(url: str, exc: OperationalError) -> DatabaseError:
    """A database that does not answer: where it is and what the driver said, one line."""
    parsed = engine_url(url)
    reason = " ".join(str(exc.orig or exc).split())
    if parsed.get_backend_name() == "sqlite":
        return DatabaseError(
            f"cannot open the database {display_url(url)}: {exc.__class__.__name__}: "
            f"{first_line(exc)}; check the path and that the data directory is writable"
        )
    where = f"{parsed.host or 'localhost'}:{parsed.port or 5432}"
    return DatabaseError(
        f"cannot connect to the database {parsed.database or ''} at {where} "
        f"({display_url(url)}): {reason}; check that the server runs and accepts connections "
        "from this machine, and CHARSTUDIO_DATABASE_URL (user, password, host, port, name)"
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
            f"the database {display_url(url)} has schema revision {found!r}, which this "
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
