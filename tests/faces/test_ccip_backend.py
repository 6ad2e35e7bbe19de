"""The CCIP backend, run through ONNX Runtime on stand-in models with CCIP's interface."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from charstudio.errors import BackendError, InvalidParameter, ModelFileMissing
from charstudio.faces.analysis import analyse_image
from charstudio.faces.base import (
    FaceBackend,
    LearnedMetricBackend,
    comparator,
    cosine_scores,
    similarity,
)
from charstudio.faces.ccip_backend import (
    CCIP_FILES,
    CLIP_MEAN,
    CLIP_STD,
    NO_DETECTOR_NOTE,
    CcipBackend,
    preprocess,
)
from charstudio.faces.identity import build_identity
from charstudio.faces.reference import rank_references
from charstudio.faces.registry import load_backend
from charstudio.faces.scoring import score_images
from charstudio.faces.types import FaceEmbeddingVector, IncompatibleEmbeddings
from charstudio.library.images import load_rgb

from .ccip_standins import (
    METRIC_SCALE,
    THRESHOLD,
    build_ccip_folder,
    build_detector,
    build_feature_model,
    build_metrics_model,
    drawing,
    two_character_scene,
)
from .conftest import DATA


def embed_whole(backend: FaceBackend, image: np.ndarray) -> FaceEmbeddingVector:
    return backend.embed(image, backend.detect(image))[0]


def test_loads_the_folder_as_users_keep_it(ccip_backend: FaceBackend, ccip_folder: Path) -> None:
    assert isinstance(ccip_backend, CcipBackend)
    assert isinstance(ccip_backend, LearnedMetricBackend)
    assert (ccip_backend.name, ccip_backend.model_name, ccip_backend.dim) == (
        "ccip",
        "ccip-standin",
        768,
    )
    assert ccip_backend.difference_threshold == THRESHOLD
    assert ccip_backend.threshold == pytest.approx(1 - THRESHOLD)
    assert ccip_backend.model_dir == ccip_folder
    assert ccip_backend.detector is None and ccip_backend.note == NO_DETECTOR_NOTE


def test_preprocessing_is_ccips_resize_and_clip_normalisation() -> None:
    image = np.zeros((100, 60, 3), np.uint8)
    image[:, :30] = (255, 0, 128)  # left half
    image[:, 30:] = (0, 64, 255)  # right half
    data = preprocess(image)
    assert data.shape == (3, 384, 384) and data.dtype == np.float32
    mean, std = np.asarray(CLIP_MEAN), np.asarray(CLIP_STD)
    left = (np.array([255, 0, 128]) / 255 - mean) / std
    right = (np.array([0, 64, 255]) / 255 - mean) / std
    np.testing.assert_allclose(data[:, 200, 0], left, rtol=1e-5)
    np.testing.assert_allclose(data[:, 10, 383], right, rtol=1e-5)
    # The stretch is bilinear: the seam is blended, not a hard step.
    seam = data[0, 0, 190:194]
    assert left[0] > seam.max() and seam.min() > right[0]


def test_scores_are_one_minus_the_metrics_models_difference(ccip_backend: FaceBackend) -> None:
    a = embed_whole(ccip_backend, drawing("akane", variant=0))
    b = embed_whole(ccip_backend, drawing("akane", variant=2))
    c = embed_whole(ccip_backend, drawing("midori", variant=0))
    assert isinstance(ccip_backend, CcipBackend)
    scores = ccip_backend.compare([a, b, c], [a, b, c])
    cosines = np.stack([v.vector for v in (a, b, c)]).astype(np.float64)
    cosines = cosines @ cosines.T
    expected = 1 - np.clip(METRIC_SCALE * (1 - cosines), 0, 1)
    np.testing.assert_allclose(scores, expected, atol=1e-5)
    # Same character: difference at most the folder's threshold; another one: far above.
    differences = ccip_backend.differences([a, b, c])
    assert differences[0, 1] <= THRESHOLD < differences[0, 2]
    assert similarity(a, b, compare=comparator(ccip_backend)) >= ccip_backend.threshold
    assert similarity(a, c, compare=comparator(ccip_backend)) < ccip_backend.threshold


def test_cosine_is_refused_on_ccip_vectors(ccip_backend: FaceBackend) -> None:
    a = embed_whole(ccip_backend, drawing("akane"))
    with pytest.raises(IncompatibleEmbeddings, match="compared by the ccip backend's own metrics"):
        cosine_scores([a], [a])
    with pytest.raises(IncompatibleEmbeddings):
        similarity(a, a)  # the default comparator is cosine


def test_ccip_identity_against_dlib_embeddings_is_refused(ccip_backend: FaceBackend) -> None:
    identity = embed_whole(ccip_backend, drawing("akane"))
    dlib = FaceEmbeddingVector.from_raw(
        backend="dlib", model="dlib_face_recognition_resnet_model_v1", values=np.ones(128)
    )
    for compare in (comparator(ccip_backend), cosine_scores):
        with pytest.raises(IncompatibleEmbeddings) as info:
            compare([dlib], [identity])
        message = str(info.value)
        assert "dlib/dlib_face_recognition_resnet_model_v1 (128-D)" in message
        assert "ccip/ccip-standin (768-D)" in message


def test_identity_flags_other_characters_and_photographs(ccip_backend: FaceBackend) -> None:
    refs = [drawing("akane", variant=v) for v in (0, 1, 2)]
    refs += [drawing("midori", variant=1), load_rgb(DATA / "coffee.jpg")]
    analyses = [
        analyse_image(ccip_backend, image, source=f"ref{i}") for i, image in enumerate(refs)
    ]
    assert [a.status for a in analyses] == ["ok"] * 5
    assert analyses[0].message == "one character, 512 px"
    identity = build_identity(
        analyses, threshold=ccip_backend.threshold, compare=comparator(ccip_backend)
    )
    assert [m.inlier for m in identity.members] == [True, True, True, False, False]
    assert identity.vector.backend == "ccip" and identity.threshold == ccip_backend.threshold
    assert all(m.reason and m.reason.startswith("outlier") for m in identity.outliers)
    generated = [drawing("akane", variant=5), drawing("midori", variant=4)]
    scored = score_images(
        [
            analyse_image(ccip_backend, g, source=f"gen{i}", embed="all")
            for i, g in enumerate(generated)
        ],
        identity.vector,
        threshold=ccip_backend.threshold,
        compare=comparator(ccip_backend),
    )
    assert [image.passed for image in scored.images] == [True, False]
    assert scored.face_consistency == 0.5
    # A character has no eye keypoints: its reference score leaves frontality out.
    ranked = rank_references(analyses, identity, compare=comparator(ccip_backend))
    scores = [c.score for c in ranked]
    assert scores == sorted(scores, reverse=True)
    assert len(ranked) == 3 and all("frontal" not in c.parts for c in ranked)
    assert all(0.0 < c.score <= 1.0 for c in ranked)


def test_detector_cuts_out_each_character_and_chooses_the_dominant(
    ccip_folder: Path, ccip_detector: Path, ccip_backend: FaceBackend
) -> None:
    backend = load_backend("ccip", model_root=ccip_folder, character_detector=ccip_detector)
    assert isinstance(backend, CcipBackend) and backend.note is None
    assert backend.detector is not None and backend.detector.labels == ["person"]
    scene = two_character_scene("akane", "midori")
    analysis = analyse_image(backend, scene, source="scene", embed="all")
    assert analysis.status == "ok" and analysis.chosen == 0
    assert analysis.message == "one character, 400 px (largest of 2)"
    boxes = [(f.face.box.x0, f.face.box.x1, f.face.kind) for f in analysis.faces]
    assert boxes == [(0.0, 400.0, "character"), (480.0, 640.0, "character")]
    akane = embed_whole(ccip_backend, drawing("akane"))
    midori = embed_whole(ccip_backend, drawing("midori"))
    scores = backend.compare([f.embedding for f in analysis.faces if f.embedding], [akane, midori])
    assert scores[0, 0] >= backend.threshold > scores[0, 1]  # the big one is akane
    assert scores[1, 1] >= backend.threshold > scores[1, 0]  # the small one is midori
    crowded = analyse_image(backend, scene, source="scene", dominance=3.0)
    assert crowded.status == "several_faces"
    assert crowded.message.startswith("2 characters and the largest is only 2.5x")
    assert crowded.message.endswith("crop the image to one character")
    empty = analyse_image(backend, np.full((640, 640, 3), 255, np.uint8), source="blank")
    assert (empty.status, empty.message) == ("no_face", "no character found")


# --- bad input ------------------------------------------------------------------------


@pytest.mark.parametrize("missing", CCIP_FILES)
def test_a_folder_missing_a_file_is_refused_naming_it(
    ccip_folder: Path, tmp_path: Path, missing: str
) -> None:
    folder = shutil.copytree(ccip_folder, tmp_path / "ccip-incomplete")
    (folder / missing).unlink()
    with pytest.raises(ModelFileMissing) as info:
        CcipBackend(model_dir=folder)
    assert f"{folder} lacks {missing}" in str(info.value)


def test_a_missing_folder_or_setting_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelFileMissing, match="does not exist; set CHARSTUDIO_CCIP_MODEL_DIR"):
        CcipBackend(model_dir=tmp_path / "nowhere")
    with pytest.raises(ModelFileMissing, match="set CHARSTUDIO_CCIP_MODEL_DIR to the folder"):
        load_backend("ccip")


def test_metrics_json_without_threshold_is_refused(ccip_folder: Path, tmp_path: Path) -> None:
    folder = shutil.copytree(ccip_folder, tmp_path / "ccip-nothreshold")
    (folder / "metrics.json").write_text(json.dumps({"f1_score": 0.917}))
    with pytest.raises(InvalidParameter) as info:
        CcipBackend(model_dir=folder)
    assert str(info.value).startswith(f"{folder / 'metrics.json'} has no 'threshold'")
    (folder / "metrics.json").write_text(json.dumps({"threshold": 1.5}))
    with pytest.raises(InvalidParameter, match=r"'threshold' must be a number in \(0, 1\)"):
        CcipBackend(model_dir=folder)
    (folder / "metrics.json").write_text("{not json")
    with pytest.raises(InvalidParameter, match=r"metrics\.json is not readable JSON"):
        CcipBackend(model_dir=folder)


def test_a_feature_model_of_another_input_shape_is_refused(tmp_path: Path) -> None:
    folder = build_ccip_folder(tmp_path / "ccip-224")
    build_feature_model(folder / "model_feat.onnx", size=224)
    with pytest.raises(InvalidParameter) as info:
        CcipBackend(model_dir=folder)
    assert str(info.value) == (
        f"{folder / 'model_feat.onnx'} takes input of shape ['N', 3, 224, 224]; a CCIP "
        "feature model takes (N, 3, 384, 384)"
    )


def test_a_metrics_model_of_another_width_is_refused(tmp_path: Path) -> None:
    folder = build_ccip_folder(tmp_path / "ccip-512")
    build_metrics_model(folder / "model_metrics.onnx", dim=512)
    with pytest.raises(InvalidParameter) as info:
        CcipBackend(model_dir=folder)
    assert "takes input of shape ['N', 512]" in str(info.value)
    assert "768-D features it must take (N, 768) and return (N, N)" in str(info.value)


def test_a_model_with_other_tensor_names_is_refused(tmp_path: Path) -> None:
    folder = build_ccip_folder(tmp_path / "ccip-swapped")
    build_metrics_model(folder / "model_feat.onnx")  # the metrics model in the feature's place
    with pytest.raises(InvalidParameter, match="takes input of shape \\['N', 768\\]"):
        CcipBackend(model_dir=folder)
    shutil.copy(DATA.parent / "faces" / "coffee.jpg", folder / "model_metrics.onnx")
    build_feature_model(folder / "model_feat.onnx")
    with pytest.raises(BackendError, match=r"cannot load the ONNX model .*model_metrics\.onnx"):
        CcipBackend(model_dir=folder)


def test_a_detector_without_labels_is_refused(ccip_folder: Path, tmp_path: Path) -> None:
    detector = tmp_path / "unlabelled.onnx"
    build_detector(detector, labels=False)
    with pytest.raises(InvalidParameter) as info:
        CcipBackend(model_dir=ccip_folder, detector=detector)
    assert str(info.value).startswith(
        f"the character detector {detector} has no labels (no 'names' in its ONNX metadata)"
    )
    with pytest.raises(ModelFileMissing, match=r"missing\.onnx does not exist"):
        CcipBackend(model_dir=ccip_folder, detector=tmp_path / "missing.onnx")
