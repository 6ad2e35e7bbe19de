"""Value types, the similarity helper and the package's public surface."""

from __future__ import annotations

import re
from types import ModuleType

import numpy as np
import pytest

import charstudio.faces as faces
from charstudio.errors import InvalidParameter, UsageError
from charstudio.faces.base import check_rgb_image, similarity
from charstudio.faces.types import (
    FaceBox,
    FaceEmbeddingVector,
    IncompatibleEmbeddings,
    SimilarityStats,
)


def test_public_names_are_exactly_all() -> None:
    public = {
        name
        for name, value in vars(faces).items()
        if not name.startswith("_") and not isinstance(value, ModuleType)
    }
    assert sorted(faces.__all__) == sorted(public)


def test_face_box_geometry() -> None:
    box = FaceBox(10, 20, 110, 70)
    assert (box.width, box.height, box.side, box.area, box.centre) == (100, 50, 50, 5000, (60, 45))
    assert box.iou(box) == 1.0 and box.iou(FaceBox(200, 200, 300, 300)) == 0.0
    assert box.iou(FaceBox(60, 20, 160, 70)) == pytest.approx(1 / 3)
    assert box.clipped(50, 50) == FaceBox(10, 20, 50, 50)
    assert box.scaled(2) == FaceBox(20, 40, 220, 140)


def test_embedding_vectors_are_checked() -> None:
    vec = FaceEmbeddingVector.from_raw(backend="dlib", model="m", values=[3.0, 4.0])
    assert vec.vector.tolist() == pytest.approx([0.6, 0.8]) and vec.label == "dlib/m (2-D)"
    with pytest.raises(ValueError, match=re.escape("must be L2-normalised, its norm is 5.0000")):
        FaceEmbeddingVector(backend="dlib", model="m", vector=np.array([3.0, 4.0], np.float32))
    with pytest.raises(
        ValueError, match=re.escape("cannot normalise a dlib/m embedding of norm 0.0")
    ):
        FaceEmbeddingVector.from_raw(backend="dlib", model="m", values=[0.0, 0.0])


def test_similarity_refuses_other_backends_naming_both() -> None:
    a = FaceEmbeddingVector.from_raw(backend="dlib", model="resnet", values=np.ones(128))
    b = FaceEmbeddingVector.from_raw(
        backend="insightface", model="buffalo_l/w600k_r50", values=np.ones(512)
    )
    assert similarity(a, a) == pytest.approx(1.0)
    with pytest.raises(IncompatibleEmbeddings) as info:
        similarity(a, b)
    assert isinstance(info.value, UsageError)
    assert "dlib/resnet (128-D)" in str(
        info.value
    ) and "insightface/buffalo_l/w600k_r50 (512-D)" in str(info.value)


def test_stats_of_nothing_and_something() -> None:
    assert SimilarityStats.of([]).count == 0
    stats = SimilarityStats.of([0.5, 1.0])
    assert (stats.minimum, stats.median, stats.maximum) == (0.5, 0.75, 1.0)


def test_rgb_check() -> None:
    with pytest.raises(InvalidParameter, match=r"got shape \(4, 4, 4\)"):
        check_rgb_image(np.zeros((4, 4, 4), np.uint8))
