"""The InsightFace backend, run through InsightFace's real model zoo on stand-in ONNX models."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from charstudio.errors import BackendError, BackendUnavailable
from charstudio.faces.analysis import analyse_image
from charstudio.faces.base import FaceBackend, similarity
from charstudio.faces.identity import build_identity
from charstudio.faces.insightface_backend import InsightFaceBackend, find_pack
from charstudio.faces.registry import load_backend
from charstudio.faces.scoring import score_images

from .conftest import build_arcface_standin, build_scrfd_standin, marker_scene


def test_comfyui_layout_loads_through_model_zoo(
    insightface_backend: FaceBackend, insightface_root: Path
) -> None:
    assert isinstance(insightface_backend, InsightFaceBackend)
    assert (insightface_backend.name, insightface_backend.dim) == ("insightface", 512)
    assert insightface_backend.model_name == "buffalo_l/w600k_r50"
    assert insightface_backend.threshold == 0.40
    assert insightface_backend.pack_dir == insightface_root / "models" / "buffalo_l"
    assert type(insightface_backend._det).__name__ == "SCRFD"
    assert type(insightface_backend._rec).__name__ == "ArcFaceONNX"


def test_detects_boxes_and_keypoints(insightface_backend: FaceBackend) -> None:
    faces = insightface_backend.detect(marker_scene([(5, 5, "horizontal")]))
    assert len(faces) == 1
    face = faces[0]
    assert (face.box.x0, face.box.y0, face.box.x1, face.box.y1) == (112, 112, 240, 240)
    assert face.confidence > 0.9 and len(face.landmarks) == 5
    assert face.keypoints.left_eye[0] < face.keypoints.nose[0] < face.keypoints.right_eye[0]


def test_boxes_map_back_from_the_detector_size(insightface_backend: FaceBackend) -> None:
    scene = marker_scene([(5, 5, "horizontal")])
    big = scene.repeat(2, axis=0).repeat(2, axis=1)  # SCRFD sees it at 640, boxes come back x2
    face = insightface_backend.detect(big)[0]
    assert (face.box.x0, face.box.y0, face.box.x1, face.box.y1) == (224, 224, 480, 480)


def test_embeddings_tell_textures_apart(insightface_backend: FaceBackend) -> None:
    scene = marker_scene([(4, 4, "horizontal"), (14, 4, "vertical"), (9, 14, "horizontal")])
    faces = sorted(insightface_backend.detect(scene), key=lambda f: (f.box.y0, f.box.x0))
    a, b, a_again = insightface_backend.embed(scene, faces)
    assert a.dim == 512 and abs(float(np.linalg.norm(a.vector)) - 1) < 1e-5
    assert similarity(a, a_again) > 0.99 >= insightface_backend.threshold
    assert similarity(a, b) < insightface_backend.threshold


def test_identity_and_scoring_end_to_end(insightface_backend: FaceBackend) -> None:
    refs = [marker_scene([(c, r, "checker")]) for c, r in ((5, 5), (10, 8), (12, 12))]
    refs.append(marker_scene([(8, 8, "vertical")]))  # someone else
    analyses = [
        analyse_image(insightface_backend, img, source=f"ref{i}") for i, img in enumerate(refs)
    ]
    identity = build_identity(analyses, threshold=insightface_backend.threshold)
    assert [m.inlier for m in identity.members] == [True, True, True, False]
    crowd = marker_scene([(4, 4, "vertical"), (14, 14, "checker")])
    generated = [analyse_image(insightface_backend, crowd, source="crowd", embed="all")]
    assert generated[0].status == "several_faces"
    result = score_images(generated, identity.vector, threshold=insightface_backend.threshold)
    assert result.images[0].passed and result.face_consistency == 1.0


def test_antelopev2_file_names(tmp_path: Path) -> None:
    pack = tmp_path / "antelopev2"
    build_scrfd_standin(pack / "scrfd_10g_bnkps.onnx")
    build_arcface_standin(pack / "glintr100.onnx")
    backend = load_backend("insightface", model_root=tmp_path)
    assert backend.model_name == "antelopev2/glintr100"
    assert find_pack(pack)[0] == pack  # the pack folder itself works too


def test_missing_pack_lists_the_folders_looked_in(tmp_path: Path) -> None:
    with pytest.raises(BackendUnavailable) as info:
        load_backend("insightface", model_root=tmp_path, pack="buffalo_l")
    message = str(info.value)
    for folder in (tmp_path / "models" / "buffalo_l", tmp_path / "buffalo_l", tmp_path):
        assert str(folder) in message
    assert "non-commercial use only" in message


def test_a_misnamed_file_is_refused(tmp_path: Path, insightface_root: Path) -> None:
    pack = tmp_path / "buffalo_l"
    build_arcface_standin(pack / "det_10g.onnx")  # a recognizer where the detector belongs
    shutil.copy(insightface_root / "models" / "buffalo_l" / "w600k_r50.onnx", pack)
    with pytest.raises(
        BackendError, match=re.escape("det_10g.onnx is not an InsightFace detection model")
    ):
        InsightFaceBackend(model_root=tmp_path)
