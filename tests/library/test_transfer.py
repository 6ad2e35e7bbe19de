"""`charstudio db migrate-to URL`: a SQLite library copied into another database, whole.

The source is always the SQLite file of a one-box library; the target is a new SQLite file
on the SQLite run and a new PostgreSQL database on the servers' run (SQLite -> PostgreSQL,
the move the README describes)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select, text

from charstudio.config import load_settings
from charstudio.jobs import JobQueue, submit_faces_extract
from charstudio.library.database import open_database
from charstudio.library.marker import read_marker
from charstudio.library.models import Character, Generation, Job, ReferenceImage
from charstudio.services import build_services
from tests.conftest import CliRunner, snapshot
from tests.faces.conftest import DATA

PHOTOS = [DATA / f"obama_{y}.jpg" for y in (2009, 2010, 2012)]


@pytest.fixture
def one_box(monkeypatch: pytest.MonkeyPatch, home: Path) -> Path:
    """A SQLite library in ``home`` with a character, a queued job and a generation row
    whose seed needs all 64 bits."""
    monkeypatch.delenv("CHARSTUDIO_DATABASE_URL", raising=False)
    monkeypatch.delenv("CHARSTUDIO_QUEUE_URL", raising=False)
    services = build_services(load_settings(home=home))
    try:
        services.init()
        services.library.create("obama", PHOTOS)
        submit_faces_extract(services, JobQueue(services), "obama")
        with services.db.sessions.begin() as session:
            character_id = session.scalar(select(Character.id))
            session.add(
                Generation(
                    character_id=character_id,
                    backend="comfyui",
                    method="img2img",
                    prompt="red dress",
                    seed=2**64 - 1,
                    params={"cfg": 7.0, "nested": {"a": [1, 2]}},
                    path="outputs/obama/x.png",
                )
            )
    finally:
        services.close()
    return home


def test_a_sqlite_library_moves_to_an_empty_database(
    one_box: Path, empty_database_url: str, cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = snapshot(one_box)
    moved = cli("db", "migrate-to", empty_database_url, "--json")
    assert moved.code == 0, moved.err
    report = json.loads(moved.out)
    assert report["rows"]["characters"] == 1 and report["rows"]["reference_images"] == 3
    assert report["rows"]["jobs"] == 1 and report["rows"]["generations"] == 1
    assert report["rows"]["library"] == 1
    # The source is left as it was (only the marker now names the new database).
    after = snapshot(one_box)
    assert {k: v for k, v in after.items() if k != "library.json"} == {
        k: v for k, v in before.items() if k != "library.json"
    }
    marker = read_marker(one_box)
    assert marker is not None and marker.library_id == report["library_id"]

    # The library now runs on the target: same id, same rows, and new rows get new ids.
    monkeypatch.setenv("CHARSTUDIO_DATABASE_URL", empty_database_url)
    services = build_services(load_settings(home=one_box))
    try:
        services.start()  # the data root is still this library's
        assert services.db.library_id == report["library_id"]
        with services.db.sessions() as session:
            generation = session.scalars(select(Generation)).one()
            assert generation.seed == 2**64 - 1
            assert generation.path == "outputs/obama/x.png"  # relative to the data root
            assert generation.params == {"cfg": 7.0, "nested": {"a": [1, 2]}}
            assert session.scalars(select(Job.state)).all() == ["queued"]
        added = services.library.create("yuki", [PHOTOS[0]])
        assert len(added.added) == 1
        with services.db.sessions() as session:
            ids = session.scalars(select(ReferenceImage.id).order_by(ReferenceImage.id)).all()
        assert ids == [1, 2, 3, 4]  # the sequence continues past the copied ids
        # A queued job of the old queue is sent again by the recovery sweep.
        queue = JobQueue(services)
        assert queue.store.queued_kinds()[0][1] == "faces_extract"
    finally:
        services.close()


def test_migrate_to_refuses_a_database_that_is_not_empty(
    one_box: Path, empty_database_url: str, cli: CliRunner
) -> None:
    db = open_database(empty_database_url)
    engine = create_engine(empty_database_url)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO characters (name, name_key, trigger_word, description, overrides,"
                " created_at, updated_at) VALUES ('x', 'x', 'xcharacter', '', '{}',"
                " '2026-01-01 00:00:00', '2026-01-01 00:00:00')"
            )
        )
    engine.dispose()
    db.engine.dispose()
    refused = cli("db", "migrate-to", empty_database_url)
    assert refused.code == 2, refused.err
    assert "is not empty (1 characters)" in refused.err and "Traceback" not in refused.err
    same = cli("db", "migrate-to", f"sqlite:///{one_box / 'charstudio.db'}")
    assert same.code == 2 and "is the library's own database" in same.err
