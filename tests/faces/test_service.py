"""The face service on a real library: records, identity files, reference choice, scores."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from sqlalchemy import select, update

from charstudio.errors import InvalidParameter, NotFound
from charstudio.faces.types import IncompatibleEmbeddings, NoUsableFace
from charstudio.library.models import FaceEmbedding, ReferenceImage
from charstudio.services import Services
from tests.conftest import snapshot
from tests.faces.conftest import DATA

OBAMA = [DATA / f for f in ("obama_2009.jpg", "obama_2010.jpg", "obama_2012.jpg")]
IMPOSTOR = DATA / "biden_2010.jpg"
NO_FACE = DATA / "coffee.jpg"


@pytest.fixture
def obama(services: Services) -> Services:
    services.library.create("obama", [*OBAMA, IMPOSTOR, NO_FACE])
    return services


def test_extract_builds_the_identity_and_flags_what_is_left_out(obama: Services) -> None:
    report = obama.faces.extract("obama")
    statuses = {img.original_name: img.status for img in report.images}
    assert statuses == {
        "obama_2009.jpg": "ok",
        "obama_2010.jpg": "ok",
        "obama_2012.jpg": "ok",
        "biden_2010.jpg": "outlier",
        "coffee.jpg": "no_face",
    }
    assert (report.inliers, report.outliers, len(report.images)) == (3, 1, 5)
    assert (report.backend, report.dim) == ("dlib", 128) and 0.85 < report.threshold < 0.95
    biden = next(i for i in report.images if i.original_name == "biden_2010.jpg")
    assert biden.similarity is not None and biden.similarity < report.threshold
    assert "below the same-person threshold" in (biden.reason or "")
    # The profile now has a face identity: IP-Adapter without a LoRA.
    profile = obama.library.profile("obama")
    assert profile.has_embedding and profile.method == "ipadapter_only"
    assert profile.embedding_path == str(obama.store.embeddings_dir / "obama_face.pt")


def test_identity_files_say_what_they_hold(obama: Services) -> None:
    report = obama.faces.extract("obama")
    folder = obama.store.embeddings_dir
    vector = torch.load(folder / "obama_face.pt", weights_only=True)
    assert vector.shape == (128,) and vector.dtype == torch.float32
    assert np.allclose(np.load(folder / "obama_face.npy"), vector.numpy())
    assert abs(float(vector.norm()) - 1.0) < 1e-5
    meta = json.loads((folder / "obama_face.json").read_text())
    assert (meta["backend"], meta["dim"], meta["threshold"]) == ("dlib", 128, report.threshold)
    inlier_hashes = {i.sha256 for i in report.images if i.inlier}
    assert set(meta["inliers"]) == inlier_hashes
    assert {entry["status"] for entry in meta["left_out"]} == {"ok", "no_face"}
    assert not any(p.name.startswith(".tmp-") for p in folder.iterdir())


def test_records_per_image_and_identity(obama: Services) -> None:
    obama.faces.extract("obama")
    obama.faces.extract("obama")  # re-running replaces, never duplicates
    with obama.db.sessions() as session:
        rows = session.scalars(select(FaceEmbedding)).all()
        refs = session.scalars(select(ReferenceImage).order_by(ReferenceImage.id)).all()
    assert sorted(r.kind for r in rows) == ["identity"] + ["image"] * 4
    assert [r.face_status for r in refs] == ["ok", "ok", "ok", "outlier", "no_face"]
    assert refs[0].face_details is not None and len(refs[0].face_details["box"]) == 4


def test_reference_is_chosen_exported_and_can_be_overridden(obama: Services) -> None:
    report = obama.faces.extract("obama")
    auto = report.reference
    assert auto is not None and auto.chosen_by == "auto"
    assert auto.original_name in {p.name for p in OBAMA}
    assert [name for name, _ in auto.ranking] == sorted(
        [name for name, _ in auto.ranking], key=lambda n: -dict(auto.ranking)[n]
    )
    crop = Path(auto.face_crop or "")
    assert crop.is_file() and Path(auto.full_image or "").is_file()
    other = next(p.name for p in OBAMA if p.name != auto.original_name)
    chosen = obama.faces.choose_reference("obama", other)
    assert (chosen.original_name, chosen.chosen_by) == (other, "user")
    # A user's choice survives a re-extract while it stays an inlier.
    again = obama.faces.extract("obama")
    assert again.reference is not None and again.reference.original_name == other
    assert obama.faces.reference("obama").chosen_by == "user"
    assert obama.library.profile("obama").reference_image == chosen.path


def test_an_outlier_or_unknown_image_cannot_be_the_reference(obama: Services) -> None:
    obama.faces.extract("obama")
    with pytest.raises(InvalidParameter, match=r"biden_2010\.jpg cannot be the reference"):
        obama.faces.choose_reference("obama", "biden_2010.jpg")
    with pytest.raises(NotFound, match=r"no reference of 'obama' matches 'nope\.png'"):
        obama.faces.choose_reference("obama", "nope.png")


def test_score_tells_the_character_from_others(obama: Services, tmp_path: Path) -> None:
    obama.faces.extract("obama")
    report = obama.faces.score("obama", [DATA], sheet=tmp_path / "sheet.png")
    verdict = {Path(i.source).name: i.passed for i in report.images}
    assert verdict == {
        "biden_2010.jpg": False,
        "biden_2013.jpg": False,
        "coffee.jpg": False,
        "collins.jpg": False,
        "hopper.jpg": False,
        "obama_2009.jpg": True,
        "obama_2010.jpg": True,
        "obama_2012.jpg": True,
    }
    assert (report.passed, report.total, report.face_consistency) == (3, 8, 3 / 8)
    assert report.similarity["count"] == 7  # coffee has no face
    assert (tmp_path / "sheet.png").is_file()


def test_scores_across_models_are_refused(obama: Services) -> None:
    # Scoring uses the identity's own backend (per character); an identity made by another
    # model of that backend (another dlib model, another CCIP folder) is refused.
    obama.faces.extract("obama")
    with obama.db.sessions.begin() as session:
        session.execute(
            update(FaceEmbedding)
            .where(FaceEmbedding.kind == "identity")
            .values(model="another_model")
        )
    with pytest.raises(IncompatibleEmbeddings) as info:
        obama.faces.score("obama", OBAMA[:1])
    message = str(info.value)
    assert "made by dlib/another_model (128-D)" in message
    assert "the dlib backend now loads dlib/dlib_face_recognition_resnet_model_v1" in message


def test_no_identity_yet_and_no_usable_face(services: Services) -> None:
    services.library.create("coffee", [NO_FACE])
    with pytest.raises(NotFound, match="has no face identity yet; run `charstudio faces extract"):
        services.faces.score("coffee", [NO_FACE])
    with pytest.raises(NoUsableFace):
        services.faces.extract("coffee")
    assert not services.library.profile("coffee").has_embedding


def test_a_failed_record_keeps_the_previous_identity_files(
    obama: Services, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    obama.faces.extract("obama")
    before = snapshot(home)
    from charstudio.faces import service

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("database went away")

    monkeypatch.setattr(service, "record_extraction", broken)
    with pytest.raises(RuntimeError, match="database went away"):
        obama.faces.extract("obama")
    assert snapshot(home) == before
