from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy import select

from charstudio.errors import (
    CharacterExists,
    DatabaseError,
    InvalidParameter,
    NotFound,
    NothingToImport,
    UnsupportedImage,
    UsageError,
)
from charstudio.library.models import FaceEmbedding, LoraVersion, ReferenceImage, TrainingSet
from charstudio.services import Services
from tests.conftest import decompression_bomb, snapshot, write_image


def test_create_copies_originals_by_hash_and_never_touches_them(
    services: Services, refs: Path
) -> None:
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in refs.iterdir()}
    result = services.library.create("yuki", [refs])
    assert result.created and len(result.added) == 4 and result.duplicates == []
    assert [s.source for s in result.skipped] == [str(refs / "notes.txt")]
    for image in result.added:
        stored = Path(image.stored_path)
        assert (
            stored == services.store.references_dir("yuki") / f"{image.sha256}.{stored.suffix[1:]}"
        )
        assert stored.read_bytes() == Path(image.source).read_bytes()
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in refs.iterdir()} == before


def test_duplicates_in_a_batch_and_across_imports_are_reported(
    services: Services, refs: Path, tmp_path: Path
) -> None:
    (tmp_path / "copy.png").write_bytes((refs / "yuki_0.png").read_bytes())
    first = services.library.create("yuki", [refs, tmp_path / "copy.png"])
    assert len(first.added) == 4
    assert [(d.source, d.duplicate_of) for d in first.duplicates] == [
        (str(tmp_path / "copy.png"), "yuki_0.png")
    ]
    new = write_image(tmp_path / "more" / "new.png", color=(1, 2, 3))
    second = services.library.import_images("YUKI", [refs / "yuki_1.png", new])
    assert not second.created
    assert [a.original_name for a in second.added] == ["new.png"]
    assert [d.duplicate_of for d in second.duplicates] == ["yuki_1.png"]
    assert services.library.show("yuki").profile.reference_images_count == 5


def test_same_image_may_belong_to_two_characters(services: Services, refs: Path) -> None:
    services.library.create("yuki", [refs / "yuki_0.png"])
    result = services.library.create("aiko", [refs / "yuki_0.png"])
    assert len(result.added) == 1
    assert (
        services.store.references_dir("aiko") / Path(result.added[0].stored_path).name
    ).is_file()


def test_list_show_and_profile(services: Services, refs: Path) -> None:
    services.library.create("yuki", [refs], description="ice mage")
    services.library.create("Aiko", [refs / "yuki_3.jpg"], trigger_word="aiko_tw")
    names = [
        (c.name, c.trigger_word, c.reference_images, c.method)
        for c in services.library.list_characters()
    ]
    assert names == [("Aiko", "aiko_tw", 1, "img2img"), ("yuki", "yukicharacter", 4, "img2img")]
    detail = services.library.show("YUKI")
    assert detail.name == "yuki" and detail.description == "ice mage"
    assert [r.original_name for r in detail.references] == [
        "yuki_0.png",
        "yuki_1.png",
        "yuki_2.png",
        "yuki_3.jpg",
    ]
    assert detail.references[3].format == "JPEG" and detail.created_at.tzinfo is not None
    assert detail.profile.method == "img2img" and detail.profile.params.denoise == 0.4
    assert detail.profile.reference_image == detail.references[0].stored_path


def test_method_follows_new_assets_without_code_changes(services: Services, refs: Path) -> None:
    """What later stages write (a LoRA version, a face identity) changes the method."""
    services.library.create("yuki", [refs])
    lora_file = services.store.lora_dir / "yuki_v1.safetensors"
    with services.db.sessions.begin() as session:
        character_id = session.scalar(select(ReferenceImage.character_id))
        session.add(
            TrainingSet(
                character_id=character_id,
                version=1,
                content_hash="h",
                num_images=12,
                resolution=768,
                path="x",
            )
        )
        session.add(
            LoraVersion(
                character_id=character_id,
                version=1,
                path="character_data/lora_models/yuki_v1.safetensors",
            )
        )
    # The LoRA row alone does not count while its file is missing.
    assert services.library.profile("yuki").method == "img2img"
    lora_file.parent.mkdir(parents=True, exist_ok=True)
    lora_file.write_bytes(b"lora")
    profile = services.library.profile("yuki")
    assert (profile.method, profile.lora_version, profile.training_images_count) == (
        "lora_only",
        1,
        12,
    )
    assert profile.lora_path == str(lora_file)
    with services.db.sessions.begin() as session:
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
    profile = services.library.profile("yuki")
    assert profile.method == "lora_ipadapter"
    assert (profile.params.lora_strength, profile.params.ipadapter_strength) == (0.7, 0.6)


def test_update_overrides_reset_and_text_fields(services: Services, refs: Path) -> None:
    services.library.create("yuki", [refs])
    profile = services.library.update(
        "yuki", overrides={"cfg": 6.5, "steps": 20, "lora_strength": None}
    )
    assert (profile.params.cfg, profile.params.steps) == (6.5, 20)
    assert profile.overrides == {"cfg": 6.5, "steps": 20}
    profile = services.library.update("yuki", reset=["cfg"], trigger_word="yk", description="d")
    assert profile.overrides == {"steps": 20} and profile.params.cfg == 7.5
    assert profile.trigger_word == "yk"
    with pytest.raises(InvalidParameter, match="cannot reset 'bogus': not an override"):
        services.library.update("yuki", reset=["bogus"])
    with pytest.raises(InvalidParameter, match="method 'lora_only' is not possible for 'yuki'"):
        services.library.update("yuki", overrides={"method": "lora_only"})
    with pytest.raises(InvalidParameter, match=r"cfg: Input should be less than or equal to 30"):
        services.library.update("yuki", overrides={"cfg": 99})
    assert services.library.profile("yuki").overrides == {"steps": 20}


def test_remove_keeps_files_unless_purged(services: Services, refs: Path) -> None:
    services.library.create("yuki", [refs])
    services.library.create("aiko", [refs / "yuki_0.png"])
    kept = services.library.remove("yuki")
    folder = services.store.references_dir("yuki")
    assert kept.files_kept == [str(folder)] and folder.is_dir()
    with pytest.raises(NotFound, match="no character named 'yuki'"):
        services.library.show("yuki")
    purged = services.library.remove("aiko", purge=True)
    assert purged.files_removed == [str(services.store.references_dir("aiko"))]
    assert not services.store.references_dir("aiko").exists()
    with services.db.sessions() as session:
        assert session.scalars(select(ReferenceImage)).all() == []


def test_existing_name_ignoring_case(services: Services, refs: Path, home: Path) -> None:
    services.library.create("yuki", [refs])
    before = snapshot(home)
    with pytest.raises(CharacterExists, match="a character named 'Yuki' already exists"):
        services.library.create("Yuki", [refs])
    assert snapshot(home) == before


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda d: d / "missing", UsageError, "no such file or folder"),
        (
            lambda d: (d / "empty").mkdir() or d / "empty",
            NothingToImport,
            "folder holds no image files",
        ),
        (
            lambda d: (d / "a.png").write_text("text") and d / "a.png",
            UnsupportedImage,
            "not an image file",
        ),
        (lambda d: decompression_bomb(d / "bomb.png"), UnsupportedImage, "too many pixels"),
    ],
)
def test_bad_input_leaves_the_library_as_it_was(
    services: Services,
    refs: Path,
    home: Path,
    tmp_path: Path,
    make,
    error: type[Exception],
    message: str,  # type: ignore[no-untyped-def]
) -> None:
    services.library.create("yuki", [refs / "yuki_0.png"])
    before = snapshot(home)
    bad = make(tmp_path)
    with pytest.raises(error, match=message):
        services.library.import_images("yuki", [refs / "yuki_1.png", bad])
    with pytest.raises(error, match=message):
        services.library.create("aiko", [refs / "yuki_1.png", bad])
    assert snapshot(home) == before


def test_skip_bad_imports_the_good_ones(services: Services, refs: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage")
    result = services.library.create("yuki", [refs / "yuki_0.png", bad], skip_bad=True)
    assert len(result.added) == 1
    assert result.skipped[0].source == str(bad) and "bad.png" in result.skipped[0].reason


def test_a_failed_commit_removes_the_files_it_copied(
    services: Services, refs: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    services.library.create("yuki", [refs / "yuki_0.png"])
    before = snapshot(home)
    from sqlalchemy.exc import OperationalError
    from sqlalchemy.orm import SessionTransaction

    def failing_commit(self: SessionTransaction, _parent: bool = False) -> None:
        raise OperationalError("COMMIT", {}, Exception("disk I/O error"))

    monkeypatch.setattr(SessionTransaction, "commit", failing_commit)
    with pytest.raises(DatabaseError, match=r"database error: .*disk I/O error"):
        services.library.import_images("yuki", [refs])
    monkeypatch.undo()
    assert snapshot(home) == before
    assert not any(p.name.startswith(".tmp-") for p in home.rglob("*"))


def test_progress_is_reported_per_file(services: Services, refs: Path) -> None:
    seen: list[tuple[int, int, str]] = []
    services.library.create("yuki", [refs], progress=lambda d, t, m: seen.append((d, t, m)))
    assert seen == [
        (1, 4, "yuki_0.png"),
        (2, 4, "yuki_1.png"),
        (3, 4, "yuki_2.png"),
        (4, 4, "yuki_3.jpg"),
    ]


def test_unknown_character(services: Services, refs: Path) -> None:
    with pytest.raises(NotFound, match="create it with `charstudio character add nobody"):
        services.library.import_images("nobody", [refs])
    assert os.environ.get("CHARSTUDIO_HOME") is None


def test_remove_one_reference(services: Services, refs: Path) -> None:
    services.library.create("yuki", [refs])
    detail = services.library.show("yuki")
    gone = detail.references[0]
    removed = services.library.remove_reference("yuki", gone.sha256)
    assert removed.sha256 == gone.sha256
    assert not Path(gone.stored_path).exists()
    left = services.library.show("yuki").references
    assert [r.sha256 for r in left] == [r.sha256 for r in detail.references[1:]]
    with pytest.raises(NotFound, match=f"'yuki' has no reference image '{gone.sha256}'"):
        services.library.remove_reference("yuki", gone.sha256)
