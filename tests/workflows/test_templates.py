from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from charstudio.errors import StorageError
from charstudio.workflows import (
    TEMPLATE_NAMES,
    AcceptedResult,
    Catalog,
    WorkflowRequest,
    build_template,
    build_workflow,
    fill_template,
    save_generated,
    validate_graph,
    write_json_atomic,
    write_templates,
)

from .conftest import RequestFactory

VALUES = {
    "character": "yuki",
    "job": "job-1",
    "trigger_word": "yukicharacter",
    "prompt": "red dress",
    "checkpoint": "rand_sd15.safetensors",
    "lora": "yuki_v1.safetensors",
    "reference_image": "yuki_reference.png",
    "pose_image": "pose.png",
    "controlnet": "control_v11p_sd15_openpose_fp16.safetensors",
}


def test_templates_are_written_atomically_to_the_given_folder(tmp_path: Path) -> None:
    folder = tmp_path / "workflows" / "templates"
    paths = write_templates(folder)
    assert [p.name for p in paths] == ["base.json", "outfit.json", "background.json", "pose.json"]
    assert sorted(folder.iterdir()) == sorted(paths)  # no temp files left
    for name, path in zip(TEMPLATE_NAMES, paths, strict=True):
        document = json.loads(path.read_text(encoding="utf-8"))
        assert document["format"] == "charstudio.workflow-template/1"
        assert (document["name"], document["method"], document["family"]) == (
            name,
            "lora_ipadapter",
            "sd15",
        )
        assert "TPL" not in json.dumps(document["graph"])  # every sentinel became a placeholder


def test_template_placeholders_and_prompt_wording() -> None:
    outfit = build_template("outfit")
    assert set(outfit["placeholders"]) == {
        "trigger_word",
        "prompt",
        "character",
        "job",
        "checkpoint",
        "lora",
        "reference_image",
        "seed",
    }
    texts = [n["inputs"]["text"] for n in outfit["graph"].values() if "text" in n["inputs"]]
    assert texts[0] == "{{trigger_word}}, wearing {{prompt}}, white background, full body"
    pose = build_template("pose")
    assert {"pose_image", "controlnet"} <= set(pose["placeholders"])
    assert build_template("base", method="img2img")["placeholders"].keys() >= {"reference_image"}


@pytest.mark.parametrize("name", TEMPLATE_NAMES)
@pytest.mark.parametrize("family", ["sd15", "sdxl"])
def test_filled_template_is_what_the_builder_makes(
    make_request: RequestFactory, name: Any, family: Any
) -> None:
    graph = fill_template(build_template(name, family=family)["graph"], VALUES)
    assert validate_graph(graph, Catalog.builtin()).ok
    pose = None
    if name == "pose":
        pose = {"image": VALUES["pose_image"], "controlnet": VALUES["controlnet"]}
    request = make_request(
        variation=None if name == "base" else name, seed=0, family=family, pose=pose
    )
    assert graph == build_workflow(request)


def test_fill_template_needs_every_placeholder() -> None:
    graph = build_template("outfit")["graph"]
    with pytest.raises(KeyError, match="template placeholders without a value: checkpoint"):
        fill_template(graph, {k: v for k, v in VALUES.items() if k != "checkpoint"})


def test_fill_template_keeps_quotes_in_values() -> None:
    graph = build_template("base")["graph"]
    filled = fill_template(graph, {**VALUES, "prompt": 'a "quoted" \\ prompt'})
    texts = [n["inputs"]["text"] for n in filled.values() if "text" in n["inputs"]]
    assert texts[0] == 'yukicharacter, a "quoted" \\ prompt'


def test_accepted_workflow_is_saved_with_its_result(
    tmp_path: Path, make_request: RequestFactory
) -> None:
    request = make_request(seed=2**64 - 1)
    graph = build_workflow(request)
    result = AcceptedResult(
        prompt_id="49a54479-ad9a-401b-8edd-cadf2facf3e4",
        server="http://127.0.0.1:8188",
        images=["outputs/yuki/job-1/yuki_00001_.png"],
        identity_similarity=0.91,
    )
    path = save_generated(tmp_path / "generated", request=request, graph=graph, result=result)
    assert path.name == "yuki_job-1_18446744073709551615.json"
    saved = json.loads(path.read_text(encoding="utf-8"))
    assert saved["format"] == "charstudio.generated-workflow/1"
    assert saved["graph"] == graph
    assert AcceptedResult.model_validate(saved["result"]) == result
    assert WorkflowRequest.model_validate(saved["request"]) == request


def test_atomic_write_replaces_and_cleans_up(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    write_json_atomic(path, {"v": 1})
    write_json_atomic(path, {"v": 2})
    assert json.loads(path.read_text(encoding="utf-8")) == {"v": 2}
    with pytest.raises(TypeError):
        write_json_atomic(path, {"v": object()})
    assert json.loads(path.read_text(encoding="utf-8")) == {"v": 2}
    assert list(tmp_path.iterdir()) == [path]


def test_unwritable_folder_is_a_storage_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x", encoding="utf-8")
    with pytest.raises(StorageError, match=r"storage failed writing .*templates.*Not a directory"):
        write_templates(blocker / "templates")
