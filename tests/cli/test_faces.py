"""``charstudio faces ...`` end to end on real photographs."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import CliRunner
from tests.faces.conftest import DATA


def test_extract_reference_and_score(cli: CliRunner, tmp_path: Path) -> None:
    photos = [str(DATA / f) for f in ("obama_2009.jpg", "obama_2010.jpg", "obama_2012.jpg")]
    assert (
        cli("character", "add", "obama", "--images", *photos, str(DATA / "biden_2010.jpg")).code
        == 0
    )
    result = cli("faces", "extract", "obama")
    assert result.code == 0, result.err
    assert "identity from 3 image(s); 1 outlier(s) and 0 without one usable face" in result.out
    assert "obama_face.pt" in result.out and "IP-Adapter reference" in result.out
    shown = json.loads(cli("character", "show", "obama", "--json").out)["profile"]
    assert shown["method"] == "ipadapter_only" and shown["params"]["ipadapter_strength"] == 0.8

    result = cli("faces", "reference", "obama", "--use", "obama_2010.jpg", "--json")
    assert result.code == 0, result.err
    assert json.loads(result.out)["chosen_by"] == "user"
    result = cli("faces", "reference", "obama", "--use", "biden_2010.jpg")
    assert result.code == 2 and "cannot be the reference" in result.err

    sheet = tmp_path / "sheet.png"
    result = cli("faces", "score", "obama", str(DATA), "--sheet", str(sheet), "--json")
    assert result.code == 0, result.err
    report = json.loads(result.out)
    assert (report["passed"], report["total"]) == (3, 8)
    assert report["contact_sheet"] == str(sheet) and sheet.is_file()
    human = cli("faces", "score", "obama", *photos)  # the alias of `qc score`
    assert "3/3 pass (100%); face consistency 100% at cosine >=" in human.out


def test_errors_exit_with_one_line(cli: CliRunner) -> None:
    result = cli("faces", "extract", "nobody")
    assert result.code == 1 and result.err.startswith("error: no character named 'nobody'")
    cli("character", "add", "cup", "--images", str(DATA / "coffee.jpg"))
    result = cli("faces", "score", "cup", str(DATA / "coffee.jpg"))
    assert result.code == 1 and "has no face identity yet" in result.err
    result = cli("faces", "extract", "cup")
    assert result.code == 2 and len(result.err.strip().splitlines()) == 1
