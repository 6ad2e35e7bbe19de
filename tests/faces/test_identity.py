"""Identity extraction: the normalised mean of inliers, impostors flagged."""

from __future__ import annotations

import numpy as np
import pytest

from charstudio.errors import InvalidParameter
from charstudio.faces.analysis import analyse_path, analyse_paths
from charstudio.faces.base import FaceBackend
from charstudio.faces.identity import build_identity
from charstudio.faces.registry import BackendSpec
from charstudio.faces.types import (
    FaceEmbeddingVector,
    ImageAnalysis,
    IncompatibleEmbeddings,
    NoUsableFace,
)

from .conftest import DATA, NO_FACE, PEOPLE


@pytest.fixture(scope="module")
def obama_set(dlib_backend: FaceBackend) -> list[ImageAnalysis]:
    names = [*PEOPLE["obama"], "biden_2013.jpg", NO_FACE]
    return [analyse_path(dlib_backend, DATA / n) for n in names]


def test_impostor_is_flagged_and_left_out(
    obama_set: list[ImageAnalysis], dlib_backend: FaceBackend
) -> None:
    identity = build_identity(obama_set, threshold=dlib_backend.threshold)
    by_name = {m.source.rsplit("/", 1)[-1]: m for m in identity.members}
    assert [m.source.rsplit("/", 1)[-1] for m in identity.inliers] == PEOPLE["obama"]
    impostor = by_name["biden_2013.jpg"]
    assert not impostor.inlier and impostor.similarity is not None
    assert impostor.reason is not None and impostor.reason.startswith("outlier: similarity 0.8")
    assert "below the same-person threshold 0.91" in impostor.reason
    assert [m.source for m in identity.outliers] == [impostor.source]
    no_face = by_name[NO_FACE]
    assert (no_face.status, no_face.inlier, no_face.reason) == ("no_face", False, "no face found")


def test_identity_is_the_normalised_mean_of_inliers(
    obama_set: list[ImageAnalysis], dlib_backend: FaceBackend
) -> None:
    identity = build_identity(obama_set, threshold=dlib_backend.threshold)
    vectors = [a.embedding.vector for a in obama_set[:3] if a.embedding is not None]
    mean = np.mean(vectors, axis=0)
    np.testing.assert_allclose(identity.vector.vector, mean / np.linalg.norm(mean), atol=1e-6)
    for member in identity.inliers:
        assert member.similarity is not None and member.similarity > 0.97


def test_a_minority_of_strangers_cannot_move_the_centre(dlib_backend: FaceBackend) -> None:
    names = ["biden_2013.jpg", *PEOPLE["obama"], "hopper.jpg"]  # stranger first
    analyses = analyse_paths(BackendSpec(name="dlib"), [DATA / n for n in names], workers=1)
    identity = build_identity(analyses, threshold=dlib_backend.threshold)
    assert [m.inlier for m in identity.members] == [False, True, True, True, False]


def test_no_usable_face(dlib_backend: FaceBackend) -> None:
    analyses = [analyse_path(dlib_backend, DATA / NO_FACE)]
    with pytest.raises(NoUsableFace, match=r"none of the 1 images has one usable face \(no_face\)"):
        build_identity(analyses, threshold=0.91)


def test_mixed_backends_are_refused(obama_set: list[ImageAnalysis]) -> None:
    other = FaceEmbeddingVector.from_raw(
        backend="insightface", model="buffalo_l/w600k_r50", values=np.ones(512)
    )
    chosen = obama_set[0].faces[0]
    fake = ImageAnalysis("x.png", "ok", "one face", 10, 10, (type(chosen)(chosen.face, other),), 0)
    with pytest.raises(IncompatibleEmbeddings, match="dlib/dlib_face_recognition_resnet_model_v1"):
        build_identity([obama_set[0], fake], threshold=0.91)


def test_bad_threshold(obama_set: list[ImageAnalysis]) -> None:
    with pytest.raises(InvalidParameter, match=r"threshold must be within \(-1, 1\), got 1.5"):
        build_identity(obama_set, threshold=1.5)
