"""Paths in the database: relative to the data root where the file is under it."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from charstudio.library import from_stored, to_stored
from charstudio.library.models import Character, LoraVersion
from charstudio.services import Services
from tests.faces.conftest import DATA


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


def test_a_lora_row_outside_the_data_root_is_read_as_it_is(
    services: Services, tmp_path: Path
) -> None:
    """No charstudio writer stores a file outside the data root, but a row that names one
    (kept absolute by revision 0011, or written by hand) still works where the file is."""
    services.library.create("obama", [DATA / "obama_2009.jpg"])
    outside = tmp_path / "elsewhere" / "obama_v1.safetensors"
    outside.parent.mkdir()
    outside.write_bytes(b"weights")
    with services.db.sessions.begin() as session:
        character = session.scalars(select(Character)).one()
        session.add(
            LoraVersion(character_id=character.id, version=1, path=str(outside), promoted=True)
        )
    assert services.library.profile("obama").lora_path == str(outside)
    [version] = services.training.list_versions("obama")
    assert (version.path, version.file_exists) == (str(outside), True)
