"""The character listing (``Library.page``, behind ``GET /api/v1/characters``): one query
for any number of characters, no reference row loaded to be counted, and the same answer
as each character's full profile."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import event, select, update

from charstudio.library.models import FaceEmbedding, LoraVersion, ReferenceImage
from charstudio.services import Services


@contextmanager
def statements(services: Services) -> Iterator[list[str]]:
    """The SQL statements run on the library database inside the block."""
    seen: list[str] = []

    def record(_conn: object, _cursor: object, sql: str, *_args: object) -> None:
        seen.append(sql)

    event.listen(services.db.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(services.db.engine, "before_cursor_execute", record)


def _give_assets(services: Services, name: str, *, lora: bool, identity: bool) -> None:
    with services.db.sessions.begin() as session:
        character_id = session.scalar(
            select(ReferenceImage.character_id)
            .join(ReferenceImage.character)
            .where(ReferenceImage.character.has(name=name))
        )
        if lora:
            path = services.store.lora_dir / f"{name}_v1.safetensors"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"lora")
            session.add(LoraVersion(character_id=character_id, version=1, path=str(path)))
        if identity:
            session.add(
                FaceEmbedding(
                    character_id=character_id,
                    kind="identity",
                    backend="dlib",
                    model="m",
                    dim=2,
                    vector=b"\0" * 8,
                )
            )


def test_listing_is_one_query_whatever_the_count(services: Services, refs: Path) -> None:
    for i in range(12):
        services.library.create(f"c{i:02d}", [refs])  # four references each
    with statements(services) as seen:
        page = services.library.page()
    assert len(page.items) == page.total == 12
    assert len(seen) == 1, seen
    # References are counted and chosen by the database, not loaded row by row.
    assert "reference_images.original_name" not in seen[0]
    # With a ready LoRA, one more query reads the LoRA versions (for all characters at once).
    _give_assets(services, "c03", lora=True, identity=False)
    _give_assets(services, "c07", lora=True, identity=True)
    with statements(services) as seen:
        page = services.library.page()
    assert len(seen) == 2, seen


def test_summaries_agree_with_each_profile(services: Services, refs: Path) -> None:
    services.library.create("plain", [refs])
    services.library.create("lora", [refs / "yuki_1.png", refs / "yuki_2.png"])
    services.library.create("both", [refs])
    services.library.create("pinned", [refs / "yuki_3.jpg"])
    _give_assets(services, "lora", lora=True, identity=False)
    _give_assets(services, "both", lora=True, identity=True)
    _give_assets(services, "pinned", lora=True, identity=False)
    services.library.update("pinned", overrides={"method": "img2img"})
    # The face engine's choice of reference beats the first one added.
    with services.db.sessions.begin() as session:
        session.execute(
            update(ReferenceImage)
            .where(
                ReferenceImage.original_name == "yuki_2.png",
                ReferenceImage.character.has(name="both"),
            )
            .values(ipadapter_reference="auto")
        )
    summaries = {s.name: s for s in services.library.list_characters()}
    assert [s.method for s in summaries.values()] == [
        "lora_ipadapter",  # both
        "lora_only",  # lora
        "img2img",  # pinned
        "img2img",  # plain
    ]
    for name, summary in summaries.items():
        profile = services.library.profile(name)
        assert (summary.method, summary.has_lora, summary.has_embedding) == (
            profile.method,
            profile.has_lora,
            profile.has_embedding,
        )
        assert summary.reference_images == profile.reference_images_count
    chosen = next(
        r.stored_path for r in services.library.show("both").references
        if r.original_name == "yuki_2.png"
    )  # fmt: skip
    assert services.library.profile("both").reference_image == chosen
    assert services.library.profile("plain").reference_image == (
        services.library.show("plain").references[0].stored_path
    )


def test_a_page_and_the_total(services: Services, refs: Path) -> None:
    for name in ["d", "B", "a", "c"]:
        services.library.create(name, [refs / "yuki_0.png"])
    page = services.library.page(limit=2, offset=1)
    assert ([s.name for s in page.items], page.total) == (["B", "c"], 4)
    past_the_end = services.library.page(limit=2, offset=10)
    assert (past_the_end.items, past_the_end.total) == ([], 4)
    assert [s.name for s in services.library.list_characters()] == ["a", "B", "c", "d"]


@pytest.mark.sqlite_only  # PostgreSQL has no change counter: it runs the query every time
def test_an_unchanged_library_is_listed_without_a_query(services: Services, refs: Path) -> None:
    services.library.create("alpha", [refs / "yuki_0.png"])
    services.library.create("beta", [refs / "yuki_1.png"])
    _give_assets(services, "beta", lora=True, identity=False)
    first = services.library.page()
    with statements(services) as seen:
        again = services.library.page()
    assert seen == [] and again == first
    assert again.items is not first.items  # each caller gets its own list

    # A commit by another process (sqlite3 on the file, not through this engine) is seen.
    database = services.db.engine.url.database
    script = (
        "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); "
        "c.execute(\"UPDATE characters SET trigger_word = 'changed_tw' WHERE name = 'alpha'\"); "
        "c.commit()"
    )
    subprocess.run([sys.executable, "-c", script, str(database)], check=True, timeout=120)
    with statements(services) as seen:
        changed = services.library.page()
    assert len(seen) == 2, seen  # the page, and beta's LoRA versions
    assert changed.items[0].trigger_word == "changed_tw"

    # A LoRA file deleted behind the library's back drops that LoRA with no commit at all.
    assert changed.items[1].has_lora and changed.items[1].method == "lora_only"
    for file in services.store.lora_dir.glob("beta_v1.safetensors"):
        file.unlink()
    with statements(services) as seen:
        without = services.library.page()
    assert seen == []
    assert (without.items[1].has_lora, without.items[1].method) == (False, "img2img")
    assert services.library.profile("beta").method == "img2img"  # the profile agrees


@pytest.mark.sqlite_only  # PostgreSQL keeps nothing
def test_threads_share_the_kept_pages(services: Services, refs: Path) -> None:
    """The API's and studio's threads list pages at once, more than are kept."""
    for i in range(20):
        services.library.create(f"c{i:02d}", [refs / "yuki_0.png"])
    expected = {offset: [f"c{offset:02d}"] for offset in range(20)}
    problems: list[BaseException] = []

    def list_pages() -> None:
        try:
            for _ in range(10):
                for offset in range(20):  # 20 pages: more than the 16 kept, so some drop
                    names = [s.name for s in services.library.page(limit=1, offset=offset).items]
                    assert names == expected[offset]
        except BaseException as exc:  # reported below, with the thread's error
            problems.append(exc)

    threads = [threading.Thread(target=list_pages) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not any(thread.is_alive() for thread in threads)
    assert problems == []
