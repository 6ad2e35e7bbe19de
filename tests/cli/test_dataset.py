"""``charstudio dataset ...`` end to end."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import CliRunner
from tests.dataset.test_tagger import write_standin
from tests.faces.conftest import DATA

PHOTOS = [str(DATA / f"obama_{y}.jpg") for y in (2009, 2010, 2012)]


def test_prepare_and_caption(cli: CliRunner) -> None:
    assert cli("character", "add", "obama", "--images", *PHOTOS, str(DATA / "coffee.jpg")).code == 0
    result = cli(
        "dataset",
        "prepare",
        "obama",
        "--resolution",
        "512",
        "--max-upscale",
        "2",
        "--kohya",
        "--tag",
        "suit",
    )
    assert result.code == 0, result.err
    assert "obama: training set v1 (new), 3 image(s) kept, 1 left out" in result.out
    assert "below the usual 10-20" in result.err
    result = cli(
        "dataset", "caption", "obama", "obama_001.png", "obamacharacter, man, speech", "--json"
    )
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert data["version"] == 2
    assert data["kept"][0]["caption"] == "obamacharacter, man, speech"
    assert Path(data["kohya_path"]).name == "kohya"  # the rebuild keeps the layout asked for
    concept = Path(data["kohya_path"]) / "10_obamacharacter person"
    assert (concept / "obama_001.txt").read_text() == "obamacharacter, man, speech\n"


def test_bad_input_exit_codes(cli: CliRunner) -> None:
    result = cli("dataset", "prepare", "nobody")
    assert result.code == 1 and "no character named 'nobody'" in result.err
    cli("character", "add", "obama", "--images", *PHOTOS[:2])
    result = cli("dataset", "prepare", "obama", "--resolution", "700")
    assert result.code == 2
    assert "resolution 700 is not a multiple of 64" in result.err
    result = cli("dataset", "prepare", "obama", "--resolution", "512", "--max-upscale", "2")
    assert result.code == 2 and "only 2 of 2 references" in result.err
    assert len(result.err.strip().splitlines()) == 1
    result = cli("dataset", "caption", "obama", "obama_2009.jpg", "obamacharacter")
    assert result.code == 2 and "only the trigger word" in result.err
    result = cli("dataset", "caption", "obama", "obama_2009.jpg")
    assert result.code == 2 and "give the caption text, or --reset" in result.err


def test_tagger_option_and_setting(cli: CliRunner, tmp_path: Path) -> None:
    tagger = write_standin(tmp_path / "tagger")
    cli("character", "add", "obama", "--images", *PHOTOS)
    args = ("dataset", "prepare", "obama", "--resolution", "512", "--max-upscale", "2", "--json")
    result = cli(*args, "--tagger", str(tagger))
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert data["config"]["tagger"] == str(tagger)
    assert all("^_^" in k["caption"].split(", ") for k in data["kept"])
    result = cli(*args, "--tagger", str(tmp_path / "missing"))
    assert result.code == 2 and "missing not found" in result.err


def test_cli_defaults_are_the_dataset_configs() -> None:
    # The defaults used to be written out in the CLI, the studio page and DatasetConfig.
    import inspect

    from charstudio.cli.dataset import prepare
    from charstudio.dataset import DEFAULTS
    from charstudio.web.pages.character import prepare as studio_prepare

    for function in (prepare, studio_prepare):
        for name, parameter in inspect.signature(function).parameters.items():
            if name in type(DEFAULTS).model_fields and name != "tagger":
                assert parameter.default == getattr(DEFAULTS, name), (function, name)
