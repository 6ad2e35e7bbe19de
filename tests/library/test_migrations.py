"""The schema: migrations agree with the models, upgrade in place, refuse the future.

The tests taking ``empty_database_url`` run on SQLite and, in the servers' run, on
PostgreSQL: every revision up and down, old rows converted, the models' schema exact."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, func, select, text

from charstudio.errors import DatabaseError, SchemaOutdated, SchemaTooNew
from charstudio.library.database import alembic_config, head_revision, open_database
from charstudio.library.models import Base, Character, Generation, ReferenceImage

FIRST = "0001"


def url(path: Path) -> str:
    return f"sqlite:///{path}"


def test_migrations_create_exactly_the_models_schema(empty_database_url: str) -> None:
    db = open_database(empty_database_url)
    with db.engine.connect() as conn:
        diff = compare_metadata(
            MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata
        )
    assert diff == []
    assert db.revision == head_revision()
    db.engine.dispose()


@pytest.mark.sqlite_only
def test_sqlite_runs_in_wal_mode_with_foreign_keys(tmp_path: Path) -> None:
    db = open_database(url(tmp_path / "x.db"))
    with db.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1


def test_every_revision_upgrades_and_downgrades(empty_database_url: str) -> None:
    """The stairway: each revision up, down and up again on an empty database."""
    config = alembic_config(empty_database_url)
    revisions = list(reversed(list(ScriptDirectory.from_config(config).walk_revisions())))
    assert revisions[0].revision == FIRST
    for rev in revisions:
        command.upgrade(config, rev.revision)
        command.downgrade(config, rev.down_revision or "base")
        command.upgrade(config, rev.revision)


def execute(database_url: str, *statements: str, **params: object) -> None:
    """Raw SQL on the database, as an older charstudio (or a person) would have written."""
    engine = create_engine(database_url)
    try:
        with engine.begin() as conn:
            for statement in statements:
                conn.execute(text(statement), params)
    finally:
        engine.dispose()


def test_a_database_at_the_first_schema_upgrades_in_place_keeping_its_data(
    empty_database_url: str, tmp_path: Path
) -> None:
    command.upgrade(alembic_config(empty_database_url), FIRST)
    execute(
        empty_database_url,
        "INSERT INTO characters (id, name, name_key, trigger_word, description, overrides,"
        " created_at, updated_at) VALUES (1, 'yuki', 'yuki', 'yukicharacter', '',"
        " '{\"cfg\": 6.0}', '2026-01-01 00:00:00', '2026-01-01 00:00:00')",
        "INSERT INTO reference_images (character_id, sha256, original_name, format, suffix,"
        " size_bytes, width, height, added_at) VALUES (1, 'ab', 'a.png', 'PNG', 'png', 10,"
        " 64, 64, '2026-01-01 00:00:00')",
    )
    db = open_database(empty_database_url, migrate="always")
    assert db.revision == head_revision() and db.found == FIRST and db.library_id
    with db.sessions() as session:
        yuki = session.scalars(select(Character)).one()
        assert (yuki.name, yuki.overrides) == ("yuki", {"cfg": 6.0})
        assert session.scalar(select(func.count()).select_from(ReferenceImage)) == 1
    db.engine.dispose()
    if head_revision() != FIRST and empty_database_url.startswith("sqlite"):
        assert (tmp_path / f"empty.db.bak-{FIRST}").is_file()


@pytest.mark.sqlite_only
def test_a_database_from_the_future_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    open_database(url(path)).engine.dispose()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999_from_the_future'")
    before = path.read_bytes()
    with pytest.raises(SchemaTooNew) as info:
        open_database(url(path))
    message = str(info.value)
    assert "schema revision '9999_from_the_future', which this charstudio does not know" in message
    assert "upgrade charstudio" in message
    assert path.read_bytes() == before


def test_a_database_of_something_else_is_refused(empty_database_url: str) -> None:
    execute(empty_database_url, "CREATE TABLE invoices (id INTEGER)")
    with pytest.raises(DatabaseError, match="holds tables that are not a charstudio library"):
        open_database(empty_database_url)


@pytest.mark.sqlite_only
def test_an_unopenable_database_names_the_problem(tmp_path: Path) -> None:
    (tmp_path / "dir.db").mkdir()
    with pytest.raises(DatabaseError, match="cannot open the database"):
        open_database(url(tmp_path / "dir.db"))


def test_generation_seeds_become_integers_up_to_2_64_minus_1(empty_database_url: str) -> None:
    """Revision 0006 turns the old decimal-text seeds into integers, keeping every value."""
    database = empty_database_url
    command.upgrade(alembic_config(database), "0005")
    execute(
        database,
        "INSERT INTO characters (id, name, name_key, trigger_word, description, overrides,"
        " created_at, updated_at) VALUES (1, 'yuki', 'yuki', 'yukicharacter', '', '{}',"
        " '2026-01-01 00:00:00', '2026-01-01 00:00:00')",
    )
    for row_id, seed in enumerate(["0", "42", str(2**63), str(2**64 - 1)], start=1):
        execute(
            database,
            "INSERT INTO generations (id, character_id, backend, method, prompt, seed,"
            " params, path, sha256, accepted, created_at) VALUES (:id, 1, 'comfyui',"
            " 'img2img', 'x', :seed, '{}', 'p.png', '', false, '2026-01-01 00:00:00')",
            id=row_id,
            seed=seed,
        )
    db = open_database(database, migrate="always")
    with db.sessions() as session:
        seeds = session.scalars(select(Generation.seed).order_by(Generation.seed)).all()
    assert seeds == [0, 42, 2**63, 2**64 - 1]
    db.engine.dispose()
    command.downgrade(alembic_config(database), "0005")
    engine = create_engine(database)
    with engine.connect() as conn:
        texts = list(conn.scalars(text("SELECT seed FROM generations ORDER BY id")))
    engine.dispose()
    assert texts == ["0", "42", str(2**63), str(2**64 - 1)]


def test_who_may_migrate(empty_database_url: str) -> None:
    """A worker (``never``) changes no schema; every command (``auto``) upgrades a SQLite
    file but not a PostgreSQL library several machines share; ``db upgrade`` does."""
    with pytest.raises(
        SchemaOutdated, match=r"holds no charstudio library yet: run `charstudio init`"
    ):
        open_database(empty_database_url, migrate="never")
    command.upgrade(alembic_config(empty_database_url), FIRST)
    with pytest.raises(SchemaOutdated) as info:
        open_database(empty_database_url, migrate="never")
    assert f"is at schema revision '{FIRST}' and this charstudio needs '{head_revision()}'" in str(
        info.value
    )
    assert "run `charstudio db upgrade` once" in str(info.value)
    if empty_database_url.startswith("sqlite"):
        db = open_database(empty_database_url)  # one box: upgraded, after a backup copy
    else:
        with pytest.raises(SchemaOutdated, match="run `charstudio db upgrade`"):
            open_database(empty_database_url)
        db = open_database(empty_database_url, migrate="always")
    assert db.revision == head_revision()
    db.engine.dispose()


def _paths(database_url: str) -> dict[str, list[str]]:
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            return {
                table: list(conn.scalars(text(f"SELECT path FROM {table} ORDER BY id")))
                for table in ("generations", "training_sets", "lora_versions")
            }
    finally:
        engine.dispose()


def test_paths_under_the_data_root_become_relative_and_back(
    empty_database_url: str, tmp_path: Path
) -> None:
    """Revision 0011 makes every path under the data root it is opened with relative (POSIX
    form), written under the root or under its real folder (the root a link to a mount);
    paths outside the root stay absolute. The downgrade makes them absolute again, and the
    library goes up again the same way."""
    database = empty_database_url
    real = tmp_path / "mount"
    real.mkdir()
    home = tmp_path / "library"  # CHARSTUDIO_HOME, a link to the mount
    home.symlink_to(real)
    command.upgrade(alembic_config(database), "0010")
    execute(
        database,
        "INSERT INTO characters (id, name, name_key, trigger_word, description, overrides,"
        " created_at, updated_at) VALUES (1, 'yuki', 'yuki', 'yukicharacter', '', '{}',"
        " '2026-01-01 00:00:00', '2026-01-01 00:00:00')",
    )
    generations = [
        f"{home}/outputs/yuki/job-1/0001.png",
        f"{real}/outputs/yuki/job-1/rejected/0002.png",
        "/elsewhere/outputs/yuki/0003.png",
        f"{home}-other/outputs/yuki/0004.png",  # a sibling folder whose name starts alike
    ]
    for row_id, path in enumerate(generations, start=1):
        execute(
            database,
            "INSERT INTO generations (id, character_id, backend, method, prompt, seed,"
            " params, path, sha256, accepted, created_at) VALUES (:id, 1, 'comfyui',"
            " 'img2img', 'x', 0, '{}', :path, '', false, '2026-01-01 00:00:00')",
            id=row_id,
            path=path,
        )
    for row_id, path in enumerate(
        [f"{home}/character_data/training_sets/yuki/v1", "character_data/training_sets/yuki/v2"],
        start=1,
    ):
        execute(
            database,
            "INSERT INTO training_sets (id, character_id, version, content_hash, num_images,"
            " resolution, settings, path, created_at) VALUES (:id, 1, :id, 'h', 1, 512, '{}',"
            " :path, '2026-01-01 00:00:00')",
            id=row_id,
            path=path,
        )
    for row_id, path in enumerate(
        [f"{home}/character_data/lora_models/yuki_v1.safetensors", "/loras/yuki.safetensors"],
        start=1,
    ):
        execute(
            database,
            "INSERT INTO lora_versions (id, character_id, version, path, sha256, base_model,"
            " status, promoted, metrics, created_at) VALUES (:id, 1, :id, :path, '', '',"
            " 'ready', false, '{}', '2026-01-01 00:00:00')",
            id=row_id,
            path=path,
        )
    relative = {
        "generations": [
            "outputs/yuki/job-1/0001.png",
            "outputs/yuki/job-1/rejected/0002.png",
            "/elsewhere/outputs/yuki/0003.png",
            f"{home}-other/outputs/yuki/0004.png",
        ],
        "training_sets": [
            "character_data/training_sets/yuki/v1",
            "character_data/training_sets/yuki/v2",
        ],
        "lora_versions": [
            "character_data/lora_models/yuki_v1.safetensors",
            "/loras/yuki.safetensors",
        ],
    }
    db = open_database(database, migrate="always", data_root=home)
    assert db.found == "0010"
    db.engine.dispose()
    assert _paths(database) == relative

    config = alembic_config(database)
    config.attributes["data_root"] = home
    command.downgrade(config, "0010")
    absolute = _paths(database)
    assert absolute["generations"] == [
        f"{home}/outputs/yuki/job-1/0001.png",
        f"{home}/outputs/yuki/job-1/rejected/0002.png",
        "/elsewhere/outputs/yuki/0003.png",
        f"{home}-other/outputs/yuki/0004.png",
    ]
    assert absolute["training_sets"] == [
        f"{home}/character_data/training_sets/yuki/v1",
        f"{home}/character_data/training_sets/yuki/v2",
    ]
    assert absolute["lora_versions"] == [
        f"{home}/character_data/lora_models/yuki_v1.safetensors",
        "/loras/yuki.safetensors",
    ]
    command.upgrade(config, "0011")
    assert _paths(database) == relative


def test_without_a_data_root_revision_0011_changes_no_path(empty_database_url: str) -> None:
    """Alembic run by hand (no data root given) leaves every path as it was, both ways."""
    config = alembic_config(empty_database_url)
    command.upgrade(config, "0010")
    execute(
        empty_database_url,
        "INSERT INTO characters (id, name, name_key, trigger_word, description, overrides,"
        " created_at, updated_at) VALUES (1, 'yuki', 'yuki', 'yukicharacter', '', '{}',"
        " '2026-01-01 00:00:00', '2026-01-01 00:00:00')",
        "INSERT INTO generations (id, character_id, backend, method, prompt, seed, params,"
        " path, sha256, accepted, created_at) VALUES (1, 1, 'comfyui', 'img2img', 'x', 0,"
        " '{}', '/data/outputs/yuki/0001.png', '', false, '2026-01-01 00:00:00'),"
        " (2, 1, 'comfyui', 'img2img', 'x', 0, '{}', 'outputs/yuki/0002.png', '', false,"
        " '2026-01-01 00:00:00')",
    )
    command.upgrade(config, "0011")
    assert _paths(empty_database_url)["generations"] == [
        "/data/outputs/yuki/0001.png",
        "outputs/yuki/0002.png",
    ]
    command.downgrade(config, "0010")
    assert _paths(empty_database_url)["generations"] == [
        "/data/outputs/yuki/0001.png",
        "outputs/yuki/0002.png",
    ]
