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
