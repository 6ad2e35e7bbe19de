from __future__ import annotations

from pathlib import Path

import pytest

from charstudio.config import load_settings
from charstudio.errors import InvalidParameter


def test_defaults(tmp_path: Path) -> None:
    settings = load_settings()
    assert settings.home == Path("charstudio-data")
    assert settings.db_url == f"sqlite:///{tmp_path / 'charstudio-data' / 'charstudio.db'}"


def test_environment_then_toml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "charstudio.toml").write_text('home = "from-toml"\nmin_image_side = 32\n')
    settings = load_settings()
    assert (settings.home, settings.min_image_side) == (Path("from-toml"), 32)
    monkeypatch.setenv("CHARSTUDIO_HOME", "from-env")
    monkeypatch.setenv("CHARSTUDIO_DATABASE_URL", "postgresql://u:p@db/cs")
    settings = load_settings()
    assert settings.home == Path("from-env") and settings.min_image_side == 32
    assert settings.db_url == "postgresql://u:p@db/cs"
    assert load_settings(home=Path("kw")).home == Path("kw")


def test_config_file_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "elsewhere.toml"
    config.write_text("max_image_pixels = 1000\n")
    monkeypatch.setenv("CHARSTUDIO_CONFIG", str(config))
    assert load_settings().max_image_pixels == 1000


def test_bad_values_name_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHARSTUDIO_MAX_IMAGE_PIXELS", "-5")
    with pytest.raises(InvalidParameter, match="max_image_pixels: Input should be greater than 0"):
        load_settings()


def test_unknown_toml_key_is_refused(tmp_path: Path) -> None:
    (tmp_path / "charstudio.toml").write_text("hmoe = 'typo'\n")
    with pytest.raises(InvalidParameter, match="hmoe: unknown key; check the spelling"):
        load_settings()


def test_comfyui_urls_are_a_comma_separated_list(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().comfyui_urls == ["http://127.0.0.1:8188"]
    monkeypatch.setenv("CHARSTUDIO_COMFYUI_URLS", "http://gpu1:8188/, https://gpu2:8443")
    assert load_settings().comfyui_urls == ["http://gpu1:8188", "https://gpu2:8443"]
    monkeypatch.setenv("CHARSTUDIO_COMFYUI_URLS", "gpu1:8188")
    with pytest.raises(InvalidParameter) as caught:
        load_settings()
    assert str(caught.value) == (
        "invalid setting (fix the CHARSTUDIO_* variable or charstudio.toml): comfyui_urls: "
        "'gpu1:8188' is not an http:// or https:// URL"
    )


def test_each_face_backend_has_its_own_folder_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHARSTUDIO_INSIGHTFACE_ROOT", "~/comfyui/models/insightface")
    monkeypatch.setenv("CHARSTUDIO_DLIB_MODEL_DIR", str(tmp_path / "dlib"))
    settings = load_settings()  # dlib is the default: InsightFace's folder still counts
    assert settings.insightface_folder == Path.home() / "comfyui" / "models" / "insightface"
    assert settings.dlib_folder == tmp_path / "dlib"
    monkeypatch.setenv("CHARSTUDIO_CCIP_DETECTOR", "~/models/character_detect.onnx")
    assert load_settings().ccip_detector == Path.home() / "models" / "character_detect.onnx"
    assert load_settings(face_backend="ccip").insightface_folder == settings.insightface_folder


def test_face_model_root_still_serves_the_default_backend(tmp_path: Path) -> None:
    """The older shared setting keeps working for the default backend, and only for it;
    the backend's own setting wins."""
    old = tmp_path / "pack-root"
    insightface = load_settings(face_backend="insightface", face_model_root=old)
    assert (insightface.insightface_folder, insightface.dlib_folder) == (old, None)
    dlib = load_settings(face_model_root=old)
    assert (dlib.dlib_folder, dlib.insightface_folder) == (old, None)
    own = load_settings(
        face_backend="insightface", face_model_root=old, insightface_root=tmp_path / "own"
    )
    assert own.insightface_folder == tmp_path / "own"


def test_face_model_root_with_a_ccip_default_is_refused(tmp_path: Path) -> None:
    (tmp_path / "charstudio.toml").write_text('face_backend = "ccip"\nface_model_root = "x"\n')
    with pytest.raises(InvalidParameter) as caught:
        load_settings()
    assert str(caught.value) == (
        "invalid setting (fix the CHARSTUDIO_* variable or charstudio.toml): face_model_root "
        "is the dlib or insightface default backend's folder; with face_backend ccip set "
        "ccip_model_dir (and dlib_model_dir or insightface_root for characters that use those)"
    )
