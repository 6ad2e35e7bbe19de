"""One image through every check, with the real dlib models on real photographs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from charstudio.errors import IncompatibleEmbeddings, InvalidParameter
from charstudio.faces.registry import load_backend
from charstudio.faces.types import FaceEmbeddingVector
from charstudio.library.qc_policy import QCPolicy
from charstudio.qc.checker import QualityChecker
from charstudio.qc.identity import CharacterIdentity
from charstudio.qc.types import QCRequest
from tests.faces.conftest import DATA
from tests.qc.conftest import blank, blurred, exposed, photo, side_by_side, small_face

ASK = QCRequest(character="obama", prompt="a red dress", variation="outfit", subject="a red dress")


def statuses(result) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {c.check: c.status for c in result.checks}


def test_the_character_passes_every_check(checker: QualityChecker) -> None:
    result = checker.check(DATA / "obama_2010.jpg", ASK)
    assert result.passed and result.reasons == ()
    assert statuses(result) == {
        "identity": "pass",
        "black": "pass",
        "blank": "pass",
        "exposure": "pass",
        "blur": "pass",
        "adherence_clip": "not_checked",
    }
    entry = result.get("identity")
    assert entry is not None and entry.scorer == "dlib"
    assert entry.model == "dlib_face_recognition_resnet_model_v1"
    assert entry.threshold == load_backend("dlib").threshold
    assert entry.score is not None and entry.score >= entry.threshold
    assert result.faces_found == 1 and result.face_box is not None


def test_adherence_without_a_model_is_not_checked_never_passed(checker: QualityChecker) -> None:
    result = checker.check(photo("obama_2012.jpg"), ASK)
    entry = result.get("adherence_clip")
    assert entry is not None and entry.status == "not_checked" and not entry.passed
    assert "not checked" in entry.reason and result.adherence is None
    assert not result.adherence_checked


@pytest.mark.parametrize("stranger", ["biden_2010.jpg", "biden_2013.jpg", "hopper.jpg"])
def test_a_stranger_fails_identity(checker: QualityChecker, stranger: str) -> None:
    result = checker.check(DATA / stranger, ASK)
    entry = result.get("identity")
    assert entry is not None and entry.status == "fail"
    assert entry.score is not None and entry.score < entry.threshold
    assert "not the character" in entry.reason and not result.passed


def test_no_face(checker: QualityChecker) -> None:
    result = checker.check(DATA / "coffee.jpg", ASK)
    assert result.reasons[0].startswith("identity: no face")
    assert statuses(result)["blur"] == "not_checked"


def test_blank_and_all_black_frames(checker: QualityChecker) -> None:
    grey = checker.check(blank(), ASK)
    assert statuses(grey)["blank"] == "fail" and statuses(grey)["black"] == "pass"
    black = checker.check(blank((0, 0, 0)), ASK)
    assert statuses(black)["black"] == "fail" and statuses(black)["blank"] == "fail"
    entry = black.get("black")
    assert entry is not None and "NaN" in entry.reason
    white = checker.check(blank((255, 255, 255)), ASK)
    assert {k: statuses(white)[k] for k in ("blank", "exposure")} == {
        "blank": "fail",
        "exposure": "fail",
    }


def test_several_people_unless_the_prompt_asks_for_them(checker: QualityChecker) -> None:
    pair = side_by_side("obama_2009.jpg", "biden_2010.jpg")
    alone = checker.check(pair, ASK)
    entry = alone.get("identity")
    assert entry is not None and entry.status == "fail"
    assert entry.reason.startswith("several people")
    asked = QCRequest(character="obama", prompt="two people shaking hands")
    together = checker.check(pair, asked)
    entry = together.get("identity")
    assert entry is not None and entry.status == "pass", entry.reason
    assert "best of 2 faces" in entry.reason
    strangers = checker.check(side_by_side("biden_2013.jpg", "hopper.jpg"), asked)
    assert statuses(strangers)["identity"] == "fail"


def test_face_too_small(checker: QualityChecker) -> None:
    result = checker.check(small_face("obama_2010.jpg"), ASK)
    assert result.reasons[0].startswith("identity: face too small")


def test_blur_and_exposure(checker: QualityChecker) -> None:
    soft = checker.check(blurred("obama_2012.jpg"), ASK)
    assert statuses(soft)["blur"] == "fail"
    dark = checker.check(exposed("obama_2010.jpg", 0.25), ASK)
    entry = dark.get("exposure")
    assert entry is not None and entry.status == "fail" and "too dark" in entry.reason
    bright = checker.check(exposed("obama_2009.jpg", 3.0), ASK)
    entry = bright.get("exposure")
    assert entry is not None and entry.status == "fail" and "blown out" in entry.reason


def test_policy_minimum_identity_replaces_the_backend_threshold(
    identity: CharacterIdentity,
) -> None:
    strict = QualityChecker(
        backend=load_backend("dlib"), identity=identity, policy=QCPolicy(min_identity=0.999)
    )
    entry = strict.check(DATA / "obama_2010.jpg", ASK).get("identity")
    assert entry is not None and entry.threshold == 0.999 and entry.status == "fail"


def test_soundness_can_be_left_out_for_measuring(identity: CharacterIdentity) -> None:
    bare = QualityChecker(backend=load_backend("dlib"), identity=identity, soundness=False)
    assert [c.check for c in bare.check(DATA / "obama_2010.jpg", ASK).checks] == [
        "identity",
        "adherence_clip",
    ]


def test_an_identity_from_another_backend_is_refused_naming_both(
    identity: CharacterIdentity,
) -> None:
    other = CharacterIdentity(
        character="obama",
        vector=FaceEmbeddingVector.from_raw(
            backend="insightface", model="w600k_r50", values=np.ones(512)
        ),
        threshold=0.4,
        source=identity.source,
    )
    with pytest.raises(IncompatibleEmbeddings) as info:
        QualityChecker(backend=load_backend("dlib"), identity=other)
    message = str(info.value)
    assert "insightface/w600k_r50" in message and "dlib/dlib_face_recognition" in message


def test_unreadable_file_fails_decode(checker: QualityChecker, tmp_path: Path) -> None:
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not a png")
    result = checker.check(bad, ASK)
    assert not result.passed and not result.readable
    assert result.reasons[0].startswith("decode: unreadable")


def test_arrays_are_validated_at_the_door(checker: QualityChecker) -> None:
    with pytest.raises(InvalidParameter, match="RGB array"):
        checker.check(np.zeros((8, 8), np.uint8), ASK)
