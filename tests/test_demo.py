from __future__ import annotations

import json
from pathlib import Path

from charstudio.demo import sample_images
from tests.conftest import CliRunner


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
