"""Paths in the database: relative to the data root where the file is under it."""

from __future__ import annotations

from pathlib import Path

import pytest

from charstudio.library import from_stored, to_stored


@pytest.mark.parametrize(
    ("path", "stored"),
    [
        ("{home}/outputs/yuki/job/0001.png", "outputs/yuki/job/0001.png"),
        ("{home}/outputs/yuki/../yuki/job/0001.png", "outputs/yuki/job/0001.png"),
        (
            "{real}/character_data/lora_models/yuki_v1.safetensors",  # through the link
            "character_data/lora_models/yuki_v1.safetensors",
        ),
        ("outputs/yuki/0001.png", "outputs/yuki/0001.png"),  # relative already
        ("/elsewhere/yuki_v1.safetensors", "/elsewhere/yuki_v1.safetensors"),
        ("{home}-old/outputs/0001.png", "{home}-old/outputs/0001.png"),  # a sibling folder
        ("{home}/../outside.png", "{home}/../outside.png"),
        ("{home}", "{home}"),  # the root itself is no file of it
    ],
)
def test_to_stored_and_back(tmp_path: Path, path: str, stored: str) -> None:
    real = tmp_path / "mount"
    real.mkdir()
    home = tmp_path / "home"
    home.symlink_to(real)
    given = path.format(home=home, real=real)
    expected = stored.format(home=home, real=real)
    assert to_stored(home, given) == expected
    found = from_stored(home, expected)
    assert found.is_absolute()
    if not Path(expected).is_absolute():
        assert found == home / expected
    else:
        assert found == Path(expected)
