"""Scoring images against an identity, and the contact sheet."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from charstudio.errors import InvalidParameter
from charstudio.faces.analysis import analyse_paths
from charstudio.faces.base import FaceBackend
from charstudio.faces.contact_sheet import render_contact_sheet
from charstudio.faces.identity import build_identity
from charstudio.faces.registry import BackendSpec
from charstudio.faces.scoring import score_images
from charstudio.faces.types import FaceEmbeddingVector, IncompatibleEmbeddings, ScoreResult

from .conftest import DATA, NO_FACE, PEOPLE


@pytest.fixture(scope="module")
def scored(dlib_backend: FaceBackend) -> ScoreResult:
    spec = BackendSpec(name="dlib")
    references = analyse_paths(spec, [DATA / n for n in PEOPLE["obama"][:2]], workers=1)
    identity = build_identity(references, threshold=dlib_backend.threshold)
    candidates = ["obama_2012.jpg", "biden_2010.jpg", "collins.jpg", NO_FACE]
    analyses = analyse_paths(spec, [DATA / n for n in candidates], workers=1, embed="all")
    return score_images(analyses, identity.vector, threshold=dlib_backend.threshold)


def test_same_person_passes_others_fail(scored: ScoreResult) -> None:
    assert [s.passed for s in scored.images] == [True, False, False, False]
    assert [s.faces_found for s in scored.images] == [1, 1, 1, 0]
    assert scored.images[3].similarity is None and scored.images[3].status == "no_face"
    assert scored.face_consistency == 0.25
    assert (scored.backend, scored.threshold) == ("dlib", 0.91)


def test_similarity_distribution(scored: ScoreResult) -> None:
    stats = scored.stats
    sims = [s.similarity for s in scored.images if s.similarity is not None]
    assert stats.count == 3
    assert math.isclose(stats.mean, float(np.mean(sims)))
    assert stats.minimum <= stats.p10 <= stats.median <= stats.p90 <= stats.maximum


def test_scoring_against_another_backend_names_both(dlib_backend: FaceBackend) -> None:
    analyses = analyse_paths(BackendSpec(name="dlib"), [DATA / "hopper.jpg"], workers=1)
    foreign = FaceEmbeddingVector.from_raw(
        backend="insightface", model="buffalo_l/w600k_r50", values=np.ones(512)
    )
    with pytest.raises(IncompatibleEmbeddings) as info:
        score_images(analyses, foreign, threshold=0.4)
    assert str(info.value).startswith(
        "cannot compare a dlib/dlib_face_recognition_resnet_model_v1 (128-D) embedding with a "
        "insightface/buffalo_l/w600k_r50 (512-D) embedding"
    )


def test_contact_sheet(scored: ScoreResult, tmp_path: Path) -> None:
    out = render_contact_sheet(scored.images, tmp_path / "sheet.png", tile=100, columns=3)
    with Image.open(out) as sheet:
        assert sheet.format == "PNG" and sheet.size == (300, 2 * 140)
        pixels = np.asarray(sheet.convert("RGB"))
    green, red = np.array([22, 130, 60]), np.array([190, 30, 30])
    label_row = pixels[100:140, :100].reshape(-1, 3)  # first tile's label: PASS in green
    assert (np.abs(label_row - green).sum(axis=1) < 60).any()
    assert not (np.abs(label_row - red).sum(axis=1) < 60).any()
    with pytest.raises(InvalidParameter, match="nothing to draw: the score list is empty"):
        render_contact_sheet([], tmp_path / "empty.png")
