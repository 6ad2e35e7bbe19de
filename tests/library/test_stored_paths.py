"""Paths in the database: relative to the data root where the file is under it."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from charstudio.library import from_stored, to_stored
from charstudio.library.models import Character, LoraVersion
from charstudio.library.stored_paths import RELATIVE_KEY, from_stored_json, to_stored_json
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


def test_a_json_document_stores_its_files_relative_and_reads_them_back(tmp_path: Path) -> None:
    home, moved = tmp_path / "worker", tmp_path / "reader"
    image = f"{home}/outputs/yuki/job/0001.png"
    document = {
        "output_dir": f"{home}/outputs/yuki/job",
        "images": [{"path": image, "seed": 7}, {"path": "/elsewhere/0002.png", "seed": 8}],
        "ranking": [[f"{home}/character_data/refs/a.jpg", 0.9]],
        "prompt": "/imagine a red coat",  # text, not a file under the root
        "note": f"saved to {image}",  # text that contains a path stays as it is
        "by_path": {image: 1},  # keys stay as they are
        "root": str(home),  # the root itself is no file of it
        "seed": 7,
        "partial": False,
        "nothing": None,
    }
    stored = to_stored_json(home, document)
    assert stored[RELATIVE_KEY] == [
        ["output_dir"],
        ["images", 0, "path"],
        ["ranking", 0, 0],
    ]
    assert stored["output_dir"] == "outputs/yuki/job"
    assert stored["images"][0]["path"] == "outputs/yuki/job/0001.png"
    assert stored["ranking"] == [["character_data/refs/a.jpg", 0.9]]
    unchanged = ("prompt", "note", "by_path", "root", "seed", "partial", "nothing")
    assert {key: stored[key] for key in unchanged} == {key: document[key] for key in unchanged}
    assert stored["images"][1] == document["images"][1]
    # Read where the root is mounted at another path: the files under that root.
    read = from_stored_json(moved, stored)
    assert RELATIVE_KEY not in read
    assert read["output_dir"] == f"{moved}/outputs/yuki/job"
    assert read["images"][0]["path"] == f"{moved}/outputs/yuki/job/0001.png"
    assert read["ranking"] == [[f"{moved}/character_data/refs/a.jpg", 0.9]]
    assert read["images"][1]["path"] == "/elsewhere/0002.png"
    assert {key: read[key] for key in unchanged} == {key: document[key] for key in unchanged}
    assert from_stored_json(home, stored) == document  # on the machine that wrote it
    assert stored["images"][0]["path"] == "outputs/yuki/job/0001.png"  # not changed by reading


def test_a_document_without_relative_paths_is_read_as_it_is(tmp_path: Path) -> None:
    home = tmp_path / "home"
    old = {"images": [{"path": "/mnt/a/outputs/yuki/0001.png"}], "inliers": 3}
    assert from_stored_json(home, old) == old  # a row written before results were relative
    plain = {"slept": 1.5, "text": "no files"}
    assert to_stored_json(home, plain) == plain  # nothing to list: no list is added
    # A list edited by hand that leads nowhere changes nothing and breaks nothing.
    odd = {
        "path": "outputs/x.png",
        "n": 3,
        RELATIVE_KEY: [["missing"], ["n"], ["path", 0], [], "path", [["path"]], ["path"]],
    }
    assert from_stored_json(home, odd) == {"path": f"{home.absolute()}/outputs/x.png", "n": 3}
    assert from_stored_json(home, {"a": "b", RELATIVE_KEY: "a"}) == {"a": "b"}


def test_text_that_no_file_could_be_named_is_kept(tmp_path: Path) -> None:
    home = tmp_path / "home"
    odd = {"nul": f"{home}/a\x00b.png", "long": f"{home}/" + "a" * 5000}
    assert to_stored_json(home, odd) == odd
