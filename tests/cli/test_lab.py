"""``charstudio tune`` and ``charstudio report`` end to end: a fake ComfyUI returning real
photographs by seed and strength (tests/backends/photo_outputs.py), the real dlib models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import CliRunner


@pytest.fixture
def one_prompt(tmp_path: Path) -> Path:
    path = tmp_path / "prompts.txt"
    path.write_text("# one prompt keeps the test short\noutfit: a red coat\n")
    return path


def test_tune_then_report(cli: CliRunner, obama: str, one_prompt: Path) -> None:
    common = ["--prompts", str(one_prompt), "--seeds", "1", "--seed", "1004"]
    plan = cli("tune", obama, "--ipadapter-strengths", "0.1,0.6", *common, "--dry-run", "--json")
    assert plan.code == 0, plan.err
    planned = json.loads(plan.out)
    assert (planned["method"], planned["images"], planned["cells_done"]) == ("ipadapter_only", 2, 0)
    # Seed 1004 keeps the character from strength 0.2 up: 0.1 drifts to a stranger.
    result = cli("tune", obama, "--ipadapter-strengths", "0.1,0.6", *common)
    assert result.code == 0, result.err
    assert "IP-Adapter 0.6" in result.out and "<- chosen" in result.out
    assert "ipadapter_strength set to 0.6" in result.out
    shown = cli("character", "show", obama, "--json")
    assert json.loads(shown.out)["profile"]["params"]["ipadapter_strength"] == 0.6
    told = cli("character", "show", obama).out
    assert "strengths tuned by tune-" in told and "face consistency 100%" in told
    history = cli("report", obama, "--from-history", "--json")
    assert history.code == 0, history.err
    rows = {r["label"]: r["rates"]["face_consistency"] for r in json.loads(history.out)["rows"]}
    assert rows == {
        "ipadapter_only (IP-Adapter 0.6, character weight 0.5)": 1.0,
        "ipadapter_only (IP-Adapter 0.1, character weight 0.5)": 0.0,
    }
    measured = cli("report", obama, *common)
    assert measured.code == 0, measured.err
    assert "img2img" in measured.out and "ipadapter_only" in measured.out
    assert "HTML report:" in measured.out and "reports/obama/report-" in measured.out


def test_bad_input_exits_2_or_1_with_the_fix(cli: CliRunner, obama: str, tmp_path: Path) -> None:
    lora = cli("tune", obama, "--lora-strengths", "0.7", "--dry-run")
    assert lora.code == 2 and "needs a LoRA" in lora.err and "charstudio train obama" in lora.err
    empty = cli("tune", obama, "--ipadapter-strengths", ",", "--dry-run")
    assert empty.code == 2 and "--ipadapter-strengths is empty" in empty.err
    words = cli("tune", obama, "--ipadapter-strengths", "high", "--dry-run")
    assert words.code == 2 and "numbers separated by commas" in words.err
    out_of_range = cli("tune", obama, "--ipadapter-strengths", "0.5,2.5", "--dry-run")
    assert out_of_range.code == 2 and "within 0-2" in out_of_range.err
    blank = tmp_path / "blank.txt"
    blank.write_text("# nothing\n\n")
    prompts = cli("tune", obama, "--prompts", str(blank), "--dry-run")
    assert prompts.code == 2 and f"no prompts in {blank}" in prompts.err
    nothing = cli("report", obama, "--from-history")
    assert nothing.code == 1 and "no QC-scored generations of obama yet" in nothing.err
    big = cli(
        "tune",
        obama,
        "--ipadapter-strengths",
        ",".join(str(v / 10) for v in range(1, 13)),
        "--seeds",
        "16",
    )
    assert big.code == 2 and "over 200; confirm with --yes" in big.err
