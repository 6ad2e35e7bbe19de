"""Fixtures shared by every test package: settings in a temporary data root, images, the CLI."""

from __future__ import annotations

import hashlib
import os
import struct
import sys
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import create_engine, inspect, text

from charstudio.config import Settings, load_settings
from charstudio.services import Services, build_services
from tests.servers import Servers


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("charstudio", "charstudio's back ends")
    group.addoption(
        "--database-url",
        default=os.environ.get("CHARSTUDIO_TEST_DATABASE_URL"),
        help="Run on PostgreSQL: a database URL (scripts/services.sh env) under which each "
        "test gets a database of its own; default SQLite in each test's data root.",
    )
    group.addoption(
        "--queue-url",
        default=os.environ.get("CHARSTUDIO_TEST_QUEUE_URL"),
        help="Run the job queue on Redis (redis://HOST:PORT/DB), emptied before each test.",
    )


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("--database-url", None):
        # Tests build Services for a moment (another setting, a second process's view) and
        # leave their engines to the garbage collector; psycopg says so where sqlite3 is
        # silent. Each test's database is dropped with its connections after it.
        config.addinivalue_line(
            "filterwarnings", "ignore:.*was deleted while still open:ResourceWarning"
        )


@pytest.fixture(scope="session")
def servers(request: pytest.FixtureRequest) -> Iterator[Servers | None]:
    """PostgreSQL + Redis when the run was given them (both or neither), else None."""
    database_url = request.config.getoption("--database-url")
    queue_url = request.config.getoption("--queue-url")
    if not database_url and not queue_url:
        yield None
        return
    if not (database_url and queue_url):
        raise pytest.UsageError("give both --database-url and --queue-url, or neither")
    found = Servers(database_url, queue_url)
    yield found
    found.close()


@pytest.fixture(autouse=True)
def _isolated_env(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    servers: Servers | None,
) -> Iterator[None]:
    """No test reads the developer's environment or a charstudio.toml in the work tree.

    On the servers' run, each test's ``CHARSTUDIO_DATABASE_URL`` is a new PostgreSQL
    database and its ``CHARSTUDIO_QUEUE_URL`` an empty Redis: every ``load_settings()``
    in the test, and every process it starts, uses them. ``@pytest.mark.sqlite_only``
    tests (about the SQLite file itself) skip there; ``@pytest.mark.servers_only`` ones
    skip on the SQLite run.
    """
    for var in [v for v in list(os.environ) if v.startswith("CHARSTUDIO_")]:
        monkeypatch.delenv(var)
    monkeypatch.chdir(tmp_path)
    if servers is None:
        if request.node.get_closest_marker("servers_only"):
            pytest.skip("needs PostgreSQL and Redis (scripts/test.sh runs it with them)")
        yield
        return
    if request.node.get_closest_marker("sqlite_only"):
        pytest.skip("about SQLite itself (runs on the SQLite run)")
    url = servers.new_database()
    servers.flush_queue()
    with pytest.MonkeyPatch.context() as own:  # kept when a test undoes its monkeypatch
        own.setenv("CHARSTUDIO_DATABASE_URL", url)
        own.setenv("CHARSTUDIO_QUEUE_URL", servers.queue_url)
        yield
    servers.drop(url)


@pytest.fixture
def empty_database_url(tmp_path: Path, servers: Servers | None) -> Iterator[str]:
    """An empty database of the run's kind: a new PostgreSQL database, or a SQLite file."""
    if servers is None:
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    url = servers.new_database(empty=True)
    yield url
    servers.drop(url)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def settings(home: Path) -> Settings:
    return load_settings(home=home)


@pytest.fixture
def services(settings: Settings) -> Iterator[Services]:
    built = build_services(settings)
    yield built
    built.close()


def write_image(
    path: Path,
    size: tuple[int, int] = (96, 128),
    color: tuple[int, int, int] = (120, 80, 200),
    fmt: str | None = None,
    mode: str = "RGB",
) -> Path:
    """Write a small image whose pixels depend on ``color`` (distinct colours, distinct hashes)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.new("RGB", size, color)
    for x in range(0, size[0], 7):  # a pattern so JPEG/PNG encoders have something to do
        img.putpixel((x, x % size[1]), (255 - color[0], color[1], 255 - color[2]))
    img.convert(mode).save(path, format=fmt)
    return path


@pytest.fixture
def refs(tmp_path: Path) -> Path:
    """A folder of four distinct reference images (PNG and JPEG) and one text file."""
    folder = tmp_path / "refs"
    for i in range(3):
        write_image(folder / f"yuki_{i}.png", color=(40 * i, 90, 160))
    write_image(folder / "yuki_3.jpg", color=(200, 30, 30))
    (folder / "notes.txt").write_text("not an image")
    return folder


def decompression_bomb(path: Path, width: int = 20_000, height: int = 20_000) -> Path:
    """A tiny PNG whose header claims ``width`` x ``height`` pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )
    return path


def snapshot(home: Path) -> dict[str, object]:
    """Everything a library holds: each table's rows and each file's hash (temp files too).

    The database is the test's (``CHARSTUDIO_DATABASE_URL`` on the servers' run), else the
    SQLite file in ``home``."""
    state: dict[str, object] = {}
    url = os.environ.get("CHARSTUDIO_DATABASE_URL")
    if url is None and (home / "charstudio.db").exists():
        url = f"sqlite:///{home / 'charstudio.db'}"
    if url is not None:
        engine = create_engine(url)
        try:
            with engine.connect() as conn:
                for table in sorted(inspect(conn).get_table_names()):
                    rows = conn.execute(text(f'SELECT * FROM "{table}"')).all()
                    state[f"table:{table}"] = sorted(repr(tuple(row)) for row in rows)
        finally:
            engine.dispose()
    queue = home / "queue.db"  # huey's SQLite queue (WAL): compared by its rows, not bytes
    if queue.exists():
        engine = create_engine(f"sqlite:///{queue}")
        try:
            with engine.connect() as conn:
                for table in sorted(inspect(conn).get_table_names()):
                    rows = conn.execute(text(f'SELECT * FROM "{table}"')).all()
                    state[f"queue:{table}"] = sorted(repr(tuple(row)) for row in rows)
        finally:
            engine.dispose()
    for path in sorted(home.rglob("*")):
        skip = path.name.startswith(("charstudio.db", "queue.db")) or path.suffix == ".lock"
        if path.is_file() and not skip:
            state[str(path.relative_to(home))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return state


@dataclass
class CliResult:
    code: int
    out: str
    err: str


CliRunner = Callable[..., CliResult]


@pytest.fixture
def cli(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], home: Path
) -> CliRunner:
    """Run ``charstudio ARGS`` in-process through the real entry point; returns code and output."""
    from charstudio.cli import main

    monkeypatch.setenv("CHARSTUDIO_HOME", str(home))
    monkeypatch.setenv("COLUMNS", "200")

    def run(*args: str, input: str | None = None) -> CliResult:
        monkeypatch.setattr(sys, "argv", ["charstudio", *args])
        if input is not None:
            import io

            monkeypatch.setattr(sys, "stdin", io.StringIO(input))
        capsys.readouterr()
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        captured = capsys.readouterr()
        return CliResult(code=code, out=captured.out, err=captured.err)

    return run
