from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from charstudio.cli.demo import charstudio_command
from charstudio.demo import sample_images
from tests.conftest import CliRunner

ROOT = Path(__file__).resolve().parents[1]


def test_samples_are_bundled_images() -> None:
    names = [p.name for p in sample_images()]
    assert names == ["obama_2009.jpg", "obama_2010.jpg", "obama_2012.jpg"]


def test_demo_runs_end_to_end_and_again(cli: CliRunner, tmp_path: Path) -> None:
    first = cli("demo", "--home", str(tmp_path / "demo"), "--json")
    assert first.code == 0, first.err
    report = json.loads(first.out)
    assert [s["title"] for s in report["steps"]] == [
        "library",
        "references",
        "identity",
        "training set",
        "scores",
        "profile",
        "workflow",
    ]
    assert len(report["added"]["added"]) == 3
    assert len(report["reimported"]["duplicates"]) == 1
    assert report["identity"]["inliers"] == 3
    assert [k["file_name"] for k in report["training_set"]["kept"]] == [
        "demo_subject_001.png",
        "demo_subject_002.png",
        "demo_subject_003.png",
    ]
    assert report["training_set"]["kept"][0]["caption"].startswith("demo_subjectcharacter, ")
    assert Path(report["training_set"]["contact_sheet"]).is_file()
    assert (report["scores"]["passed"], report["scores"]["total"]) == (3, 4)
    assert report["profile"]["method"] == "ipadapter_only"
    graph = json.loads(Path(report["workflow_file"]).read_text())
    classes = {node["class_type"] for node in graph.values()}
    assert {"IPAdapterAdvanced", "KSampler", "VAEDecode", "SaveImage"} <= classes
    assert "IPAdapterApply" not in classes
    again = cli("demo", "--home", str(tmp_path / "demo"))
    assert again.code == 0, again.err
    assert "6. profile: method ipadapter_only" in again.out


def test_the_explore_line_works_without_an_active_environment(
    cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The demo's last line used to say `charstudio character show ...`, which is "command
    # not found" right after scripts/demo.sh (the virtual environment is not active).
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    monkeypatch.chdir(ROOT)
    result = cli("demo", "--home", str(tmp_path / "demo"))
    assert result.code == 0, result.err
    line = next(x for x in result.out.splitlines() if x.startswith("Explore it: "))
    command = line.removeprefix("Explore it: ").split()
    assert command[0] == f"CHARSTUDIO_HOME={tmp_path / 'demo'}"
    assert command[1] == ".venv/bin/charstudio", line
    shown = subprocess.run(
        command[1:],
        env={**os.environ, "CHARSTUDIO_HOME": str(tmp_path / "demo")},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert shown.returncode == 0, shown.stderr
    assert "demo_subject" in shown.stdout


def test_the_explore_line_says_charstudio_when_it_is_on_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}:/usr/bin:/bin")
    assert charstudio_command() == "charstudio"
