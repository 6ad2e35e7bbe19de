"""Each identity backend finds its models through its own folder setting, whichever backend
is the default: InsightFace chosen for one character in a dlib library reads
``insightface_root``, and the older ``face_model_root`` still serves the default backend."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from charstudio.config import Settings, load_settings
from charstudio.errors import BackendUnavailable
from charstudio.faces.dlib_backend import default_dlib_model_dir
from charstudio.services import Services, build_services
from tests.faces.conftest import marker_scene


def stand_in_faces(folder: Path) -> list[Path]:
    """Three pictures of one stand-in face (the stand-in InsightFace pack sees them)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, (col, row) in enumerate([(5, 5), (9, 7), (12, 12)]):
        path = folder / f"face_{i}.png"
        Image.fromarray(marker_scene([(col, row, "horizontal")])).save(path)
        paths.append(path)
    return paths


class TestInsightFaceChosenForOneCharacter:
    @pytest.fixture
    def settings(self, home: Path, insightface_root: Path) -> Settings:
        # dlib stays the default; InsightFace has its own folder setting.
        return load_settings(home=home, insightface_root=insightface_root, face_workers=1)

    def test_its_pack_is_read_from_insightface_root(
        self, services: Services, insightface_root: Path, tmp_path: Path
    ) -> None:
        services.library.create("kenji", stand_in_faces(tmp_path / "refs"))
        spec = services.faces.extract_spec("kenji", "insightface")
        assert (spec.name, spec.model_root) == ("insightface", insightface_root)
        report = services.faces.extract("kenji", backend="insightface")
        assert (report.backend, report.inliers) == ("insightface", 3)
        # Her identity remembers the backend, with the same folder, for scores and QC.
        assert services.faces.character_spec("kenji").model_root == insightface_root
        assert services.faces.spec.name == "dlib"  # the default is unchanged


def test_without_insightface_root_the_refusal_names_the_setting(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))  # no pack in ~/.insightface
    services = build_services(load_settings(home=home))
    try:
        services.library.create("kenji", stand_in_faces(tmp_path / "refs"))
        with pytest.raises(BackendUnavailable) as info:
            services.faces.extract_spec("kenji", "insightface")
    finally:
        services.close()
    assert f"{tmp_path}/.insightface/models/buffalo_l" in str(info.value)
    assert "set CHARSTUDIO_INSIGHTFACE_ROOT to the folder that holds your pack" in str(info.value)


class TestTheOlderFaceModelRoot:
    """``face_model_root`` keeps working as the default backend's folder."""

    @pytest.fixture
    def settings(self, home: Path, insightface_root: Path) -> Settings:
        return load_settings(
            home=home, face_backend="insightface", face_model_root=insightface_root
        )

    def test_it_is_the_insightface_default_s_pack_root(
        self, services: Services, insightface_root: Path, tmp_path: Path
    ) -> None:
        services.library.create("kenji", stand_in_faces(tmp_path / "refs"))
        spec = services.faces.extract_spec("kenji")
        assert (spec.name, spec.model_root) == ("insightface", insightface_root)
        # dlib, chosen for another character, keeps its own default (the installed weights).
        dlib = services.faces.extract_spec("kenji", "dlib")
        assert (dlib.name, dlib.model_root) == ("dlib", None)


def test_dlib_model_dir_is_dlib_s_folder_whatever_the_default(
    home: Path, insightface_root: Path
) -> None:
    weights = default_dlib_model_dir()
    assert weights is not None  # face-recognition-models is a dependency
    settings = load_settings(
        home=home,
        face_backend="insightface",
        insightface_root=insightface_root,
        dlib_model_dir=weights,
        face_detector="cnn",
    )
    services = build_services(settings)
    try:
        dlib = services.faces.spec_for("dlib")
        assert (dlib.model_root, dlib.detector) == (weights, "cnn")
        assert services.faces.spec.model_root == insightface_root
    finally:
        services.close()
