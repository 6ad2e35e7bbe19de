"""Database failures reach every surface as DatabaseError, whichever service met them."""

from __future__ import annotations

import ast
import sqlite3
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

import charstudio
from charstudio.errors import DatabaseError
from charstudio.jobs import JobQueue, JobStore
from charstudio.server import create_app
from charstudio.services import Services
from tests.backends.fake_comfyui import free_port
from tests.conftest import CliRunner
from tests.faces.conftest import DATA

SRC = Path(charstudio.__file__).parent


def lock_the_database(services: Services) -> sqlite3.Connection:
    """Another process's exclusive lock on the SQLite file; sessions stop waiting at once."""
    url = services.db.engine.url
    assert url.database
    holder = sqlite3.connect(url.database, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    return holder


@pytest.mark.sqlite_only  # about the SQLite file
def test_a_locked_database_is_a_database_error_in_services_that_did_not_wrap(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The job store and the dataset service used to let SQLAlchemy's OperationalError
    # through, which the CLI and the API showed as "internal error".
    services.init()
    services.library.create("yuki", [DATA / "obama_2009.jpg"])
    monkeypatch.setattr("charstudio.library.engines._SQLITE_BUSY_TIMEOUT_MS", 0)
    services.db.engine.dispose()  # new connections take the 0 ms busy timeout
    holder = lock_the_database(services)
    try:
        with pytest.raises(DatabaseError, match=r"^database error: .*database is locked"):
            JobStore(services.db, services.store.home).create(
                "faces_extract", character="yuki", params={}
            )
        with pytest.raises(DatabaseError, match=r"database is locked"):
            services.datasets.edit_caption("yuki", "obama_2009.jpg", "yukicharacter, man")
    finally:
        holder.rollback()
        holder.close()


@pytest.mark.sqlite_only  # about the SQLite file
def test_the_api_answers_503_for_a_locked_database(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    services.init()
    token = "t" * 32
    services.settings = services.settings.model_copy(update={"api_token": token})
    app = create_app(services, queue=JobQueue(services))
    monkeypatch.setattr("charstudio.library.engines._SQLITE_BUSY_TIMEOUT_MS", 0)
    services.db.engine.dispose()
    services.library.create("yuki", [DATA / "obama_2009.jpg"])
    job = JobStore(services.db, services.store.home).create(
        "faces_extract", character="yuki", params={}
    )
    with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as client:
        holder = lock_the_database(services)
        try:
            answer = client.post(f"/api/v1/jobs/{job.id}/cancel")
        finally:
            holder.rollback()
            holder.close()
    assert answer.status_code == 503, answer.text
    assert "database error" in answer.text and "internal error" not in answer.text


def test_one_module_writes_the_jobs_table() -> None:
    # The job store and backends/records.py each built and changed Job rows.
    writers = set()
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
            args = [a.id for a in node.args if isinstance(a, ast.Name)]
            if name == "Job" or (name in {"update", "insert", "delete", "get"} and "Job" in args):
                writers.add(str(path.relative_to(SRC)))
    assert writers == {"library/jobs_table.py"}


def test_a_database_that_does_not_answer_is_named_with_its_host_and_the_reason(
    cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()  # nothing listens there
    url = f"postgresql+psycopg://charstudio:secret@127.0.0.1:{port}/library"
    monkeypatch.setenv("CHARSTUDIO_DATABASE_URL", url)
    result = cli("character", "list")
    assert result.code == 1
    assert result.err.startswith("error: cannot connect to the database library at ")
    assert f"127.0.0.1:{port}" in result.err and "Connection refused" in result.err
    assert "secret" not in result.err and "Traceback" not in result.err
    assert len(result.err.strip().splitlines()) == 1
    # postgresql:// (no driver named) means psycopg 3, the driver charstudio installs.
    monkeypatch.setenv("CHARSTUDIO_DATABASE_URL", f"postgresql://u@127.0.0.1:{port}/library")
    assert "Connection refused" in cli("character", "list").err
    monkeypatch.setenv("CHARSTUDIO_DATABASE_URL", "mysql+nodriver://u@127.0.0.1/library")
    odd = cli("character", "list")
    assert odd.code == 1 and odd.err.startswith("error: cannot use the database mysql+nodriver")
