"""``charstudio qc score`` end to end: the real dlib models, the real photographs, frames
made with PIL, an unreadable file, the JSON output and --fail-under."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

from tests.conftest import CliRunner
from tests.faces.conftest import DATA, PEOPLE
from tests.qc.conftest import side_by_side


def _folder(tmp_path: Path) -> Path:
    folder = tmp_path / "outputs"
    (folder / "run1").mkdir(parents=True)
    for name in ("obama_2010.jpg", "biden_2013.jpg"):
        (folder / "run1" / name).write_bytes((DATA / name).read_bytes())
    Image.new("RGB", (512, 512), (0, 0, 0)).save(folder / "black.png")
    Image.new("RGB", (512, 512), (210, 210, 210)).save(folder / "blank.png")
    side_by_side("obama_2009.jpg", "biden_2010.jpg").save(folder / "pair.png")
    (folder / "broken.png").write_bytes(b"\x89PNG truncated")
    return folder


def test_qc_score_a_folder(cli: CliRunner, tmp_path: Path) -> None:
    photos = [str(DATA / f) for f in PEOPLE["obama"]]
    assert cli("character", "add", "obama", "--images", *photos).code == 0
    assert cli("faces", "extract", "obama").code == 0
    folder = _folder(tmp_path)
    sheet = tmp_path / "sheet.png"
    result = cli("qc", "score", "obama", str(folder), "--sheet", str(sheet), "--json")
    assert result.code == 0, result.err
    report = json.loads(result.out)
    rows = {r["path"]: r["result"] for r in report["images"]}
    assert set(rows) == {
        "black.png",
        "blank.png",
        "broken.png",
        "pair.png",
        "run1/biden_2013.jpg",
        "run1/obama_2010.jpg",
    }
    assert (report["total"], report["passed"], report["unreadable"]) == (6, 1, 1)
    assert report["adherence_rate"] is None and "not checked" in report["adherence_note"]
    assert sheet.is_file() and report["contact_sheet"] == str(sheet)

    human = cli("qc", "score", "obama", str(folder), "--sheet", str(sheet))
    assert human.code == 0, human.err
    assert "run1/obama_2010.jpg" in human.out and "1/6 pass (17%)" in human.out
    assert "1 unreadable file(s), counted as failures" in human.out + human.err
    assert "several people" in human.out

    below = cli("qc", "score", "obama", str(folder), "--fail-under", "0.5", "--sheet", str(sheet))
    assert below.code == 1 and "below --fail-under 0.5" in below.err
    enough = cli("qc", "score", "obama", photos[1], "--fail-under", "1.0", "--sheet", str(sheet))
    assert enough.code == 0, enough.err


def test_qc_score_without_identity_says_run_faces_extract(cli: CliRunner) -> None:
    cli("character", "add", "cup", "--images", str(DATA / "coffee.jpg"))
    result = cli("qc", "score", "cup", str(DATA / "coffee.jpg"))
    assert result.code == 1 and "charstudio faces extract cup" in result.err


def test_fail_under_is_explained_in_help(cli: CliRunner) -> None:
    result = cli("qc", "score", "--help")
    assert "--fail-under" in result.out and "Exit 1 when the pass rate" in result.out
