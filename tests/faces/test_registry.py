"""Choosing backends by name, and what happens when one is not installed."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from charstudio.errors import BackendUnavailable, InvalidParameter, ModelFileMissing
from charstudio.faces.registry import BackendSpec, backend_from_spec, check_models, load_backend


def test_dlib_is_cached_per_process() -> None:
    assert load_backend("dlib") is load_backend("dlib")


def test_unknown_backend_name() -> None:
    with pytest.raises(
        InvalidParameter, match="unknown face backend 'arcface'; choose one of dlib, insightface"
    ):
        backend_from_spec(BackendSpec(name="arcface"))  # type: ignore[arg-type]


def test_dlib_not_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "dlib", None)
    with pytest.raises(BackendUnavailable) as info:
        backend_from_spec(BackendSpec(name="dlib", detect_long_side=999))
    assert str(info.value) == (
        "the dlib face backend needs dlib; install it with: "
        "pip install dlib-bin==20.0.1.post1 face-recognition-models==0.3.0"
    )


def test_insightface_not_installed(
    monkeypatch: pytest.MonkeyPatch, insightface_root: object
) -> None:
    monkeypatch.setitem(sys.modules, "insightface.model_zoo.model_zoo", None)
    with pytest.raises(BackendUnavailable) as info:
        backend_from_spec(
            BackendSpec(name="insightface", model_root=insightface_root, det_size=320)
        )  # type: ignore[arg-type]
    assert str(info.value) == (
        "the insightface face backend is not installed; install it with: "
        "pip install insightface==2.1 onnxruntime==1.32.0"
    )


def test_check_models_finds_each_backends_files_without_loading(
    tmp_path: Path, insightface_root: Path, ccip_folder: Path
) -> None:
    """The check an extract makes before it is queued (CLI, API, studio alike)."""
    check_models(BackendSpec(name="dlib"))  # the installed face-recognition-models
    check_models(BackendSpec(name="insightface", model_root=insightface_root))
    check_models(BackendSpec(name="ccip", model_root=ccip_folder))
    with pytest.raises(BackendUnavailable) as missing:
        check_models(BackendSpec(name="dlib", model_root=tmp_path))
    assert f"not found in {tmp_path}; install them" in str(missing.value)
    assert str(missing.value).endswith(
        "set CHARSTUDIO_DLIB_MODEL_DIR to the folder that holds them"
    )
    with pytest.raises(BackendUnavailable) as no_pack:
        check_models(BackendSpec(name="insightface", model_root=tmp_path))
    assert str(no_pack.value).startswith("no InsightFace model pack found")
    assert "or set CHARSTUDIO_INSIGHTFACE_ROOT to the folder that holds your pack" in str(
        no_pack.value
    )
    with pytest.raises(ModelFileMissing) as info:
        check_models(BackendSpec(name="ccip"))
    assert str(info.value) == (
        "the ccip backend needs its model folder: set CHARSTUDIO_CCIP_MODEL_DIR to the folder "
        "holding model_feat.onnx, model_metrics.onnx, metrics.json (charstudio downloads nothing)"
    )
    with pytest.raises(ModelFileMissing, match=r"lacks model_feat\.onnx"):
        check_models(BackendSpec(name="ccip", model_root=tmp_path))
    with pytest.raises(InvalidParameter, match="unknown face backend 'arcface'"):
        check_models(BackendSpec(name="arcface"))  # type: ignore[arg-type]


def test_check_models_refuses_a_missing_or_unreadable_character_detector(
    tmp_path: Path, ccip_folder: Path, ccip_detector: Path
) -> None:
    """The optional detector is part of the one check: refused before anything is queued,
    not first when a worker loads the model."""
    check_models(BackendSpec(name="ccip", model_root=ccip_folder, character_detector=ccip_detector))
    fix = (
        "set CHARSTUDIO_CCIP_DETECTOR to a YOLO .onnx file, or unset it to treat each image "
        "as one character"
    )
    missing = tmp_path / "character_detect.onnx"
    with pytest.raises(ModelFileMissing) as info:
        check_models(BackendSpec(name="ccip", model_root=ccip_folder, character_detector=missing))
    assert str(info.value) == f"the character detector {missing} does not exist; {fix}"
    folder = tmp_path / "detector_folder"
    folder.mkdir()
    with pytest.raises(ModelFileMissing) as info:
        check_models(BackendSpec(name="ccip", model_root=ccip_folder, character_detector=folder))
    assert str(info.value) == (
        f"the character detector {folder} cannot be read (Is a directory); {fix}"
    )
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    with pytest.raises(ModelFileMissing) as info:
        check_models(BackendSpec(name="ccip", model_root=ccip_folder, character_detector=empty))
    assert str(info.value) == f"the character detector {empty} is empty; {fix}"
