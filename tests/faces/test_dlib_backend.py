"""The dlib backend with the real weights on real photographs."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from charstudio.errors import BackendUnavailable, InvalidParameter
from charstudio.faces.base import FaceBackend, similarity
from charstudio.faces.dlib_backend import DLIB_SAME_PERSON_COSINE, DlibBackend
from charstudio.faces.types import FaceEmbeddingVector

from .conftest import PEOPLE

Photo = Callable[[str], np.ndarray]


@pytest.fixture(scope="module")
def embeddings(dlib_backend: FaceBackend, photo: Photo) -> dict[str, FaceEmbeddingVector]:
    out = {}
    for files in PEOPLE.values():
        for name in files:
            image = photo(name)
            faces = dlib_backend.detect(image)
            assert len(faces) == 1, name
            out[name] = dlib_backend.embed(image, faces)[0]
    return out


def test_backend_states_its_model_and_threshold(dlib_backend: FaceBackend) -> None:
    assert (dlib_backend.name, dlib_backend.dim) == ("dlib", 128)
    assert dlib_backend.threshold == DLIB_SAME_PERSON_COSINE == 0.91


def test_same_person_pairs_pass(embeddings: dict[str, FaceEmbeddingVector]) -> None:
    for person, files in PEOPLE.items():
        for a, b in itertools.combinations(files, 2):
            sim = similarity(embeddings[a], embeddings[b])
            assert sim >= DLIB_SAME_PERSON_COSINE, (person, a, b, sim)


def test_different_person_pairs_fail(embeddings: dict[str, FaceEmbeddingVector]) -> None:
    owner = {f: person for person, files in PEOPLE.items() for f in files}
    for a, b in itertools.combinations(owner, 2):
        if owner[a] != owner[b]:
            sim = similarity(embeddings[a], embeddings[b])
            assert sim < DLIB_SAME_PERSON_COSINE, (a, b, sim)


def test_embeddings_are_normalised_float32(embeddings: dict[str, FaceEmbeddingVector]) -> None:
    vec = embeddings["obama_2012.jpg"]
    assert vec.vector.dtype == np.float32 and vec.dim == 128
    assert abs(float(np.linalg.norm(vec.vector)) - 1.0) < 1e-5


def test_boxes_map_back_to_the_original_size(dlib_backend: FaceBackend, photo: Photo) -> None:
    image = photo("obama_2012.jpg")
    big = np.asarray(Image.fromarray(image).resize((image.shape[1] * 3, image.shape[0] * 3)))
    small_box = dlib_backend.detect(image)[0].box
    big_box = dlib_backend.detect(big)[0].box
    assert big_box.iou(small_box.scaled(3.0)) > 0.8
    assert big_box.x1 <= big.shape[1] and big_box.y1 <= big.shape[0]


def test_landmarks_and_quality_are_measured(dlib_backend: FaceBackend, photo: Photo) -> None:
    face = dlib_backend.detect(photo("obama_2012.jpg"))[0]
    assert len(face.landmarks) == 5
    kp = face.keypoints
    assert kp.left_eye[0] < kp.nose[0] < kp.right_eye[0]
    assert abs(kp.roll_degrees) < 10
    assert face.sharpness > 100 and 50 < face.brightness < 220


def test_batch_embedding_matches_single(dlib_backend: FaceBackend, photo: Photo) -> None:
    image = photo("biden_2013.jpg")
    face = dlib_backend.detect(image)[0]
    single = dlib_backend.embed(image, [face])[0]
    batch = dlib_backend.embed(image, [face, face])
    assert similarity(single, batch[1]) > 0.9999
    assert dlib_backend.embed(image, []) == []


def test_tiny_image_has_no_faces(dlib_backend: FaceBackend) -> None:
    assert dlib_backend.detect(np.zeros((1, 1, 3), np.uint8)) == []


def test_rejects_non_rgb_arrays(dlib_backend: FaceBackend) -> None:
    with pytest.raises(InvalidParameter, match=r"must be a \(height, width, 3\) RGB array"):
        dlib_backend.detect(np.zeros((10, 10), np.uint8))
    with pytest.raises(InvalidParameter, match="must be uint8, got float32"):
        dlib_backend.detect(np.zeros((10, 10, 3), np.float32))


def test_missing_model_folder_names_folder_and_install(tmp_path: Path) -> None:
    with pytest.raises(BackendUnavailable) as info:
        DlibBackend(model_dir=tmp_path)
    message = str(info.value)
    assert str(tmp_path) in message
    assert "shape_predictor_5_face_landmarks.dat" in message
    assert "pip install dlib-bin==20.0.1.post1 face-recognition-models==0.3.0" in message


def test_bad_settings_are_refused() -> None:
    with pytest.raises(InvalidParameter, match="detector must be 'hog' or 'cnn', got 'haar'"):
        DlibBackend(detector="haar")  # type: ignore[arg-type]
    with pytest.raises(InvalidParameter, match="detect_long_side must be at least 80"):
        DlibBackend(detect_long_side=40)
