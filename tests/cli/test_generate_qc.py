"""``charstudio generate`` gated by QC (issue 13) against a fake ComfyUI that returns real
photographs by seed (tests/backends/photo_outputs.py), judged by the real dlib models; the
character's QC policy set with ``character set --qc-*``."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import CliRunner


def test_a_failing_image_is_regenerated_and_kept_aside(cli: CliRunner, obama: str) -> None:
    # Seed 43 is a two-person photo, 44 the character.
    result = cli("generate", obama, "a red coat", "--seed", "43")
    assert result.code == 0, result.err
    assert "QC: kept 1/1, rejected 1, 2 image(s) generated (1 extra); face consistency 50%" in (
        result.out
    )
    assert "prompt adherence not checked" in result.out
    assert "/rejected/obama_" in result.err and "_43.png: identity:" in result.err


def test_attempts_running_out_exit_3_partial(cli: CliRunner, obama: str) -> None:
    # 40 stranger, 41 blank, 42 black, 43 pair: the default 3 extra attempts all fail.
    result = cli("generate", obama, "a red coat", "--seed", "40")
    assert result.code == 3, result.err
    assert "partial: only 0 of 1 image(s) passed QC" in result.err
    as_json = cli("generate", obama, "a red coat", "--seed", "40", "--json")
    assert as_json.code == 3
    report = json.loads(as_json.out)
    assert report["partial"] is True and len(report["rejected"]) == 4
    jobs = json.loads(cli("jobs", "list", "--json").out)
    assert [job["state"] for job in jobs["items"] if job["id"] == report["job"]] == ["partial"]


def test_no_qc_keeps_every_image(cli: CliRunner, obama: str) -> None:
    result = cli("generate", obama, "a red coat", "--seed", "40", "--no-qc", "--json")
    assert result.code == 0, result.err
    report = json.loads(result.out)
    assert "kept" not in report and [i["seed"] for i in report["images"]] == [40]
    assert Path(report["images"][0]["path"]).parent.name == report["job"]


def test_the_policy_is_set_per_character(cli: CliRunner, obama: str) -> None:
    assert cli("character", "set", obama, "--qc-extra-attempts", "0").code == 0
    shown = cli("character", "show", obama)
    assert "0 per requested image" in shown.out and "qc_extra_attempts" in shown.out
    result = cli("generate", obama, "a red coat", "--seed", "43")
    assert result.code == 3 and "partial: only 0 of 1" in result.err
    bad = cli("character", "set", obama, "--qc-candidates", "9")
    assert bad.code == 2 and "qc_candidates" in bad.err and "8" in bad.err
    assert cli("character", "set", obama, "--qc-candidates", "2").code == 0
    over = cli("generate", obama, "a red coat", "--count", "40")
    assert over.code == 2
    assert "count 40 x 2 candidate(s) per image is 80 images in one round" in over.err
