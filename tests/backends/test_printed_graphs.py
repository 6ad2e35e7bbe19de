"""``workflow --print`` prints exactly what ``generate`` sends, and with ``--upload`` a plain
HTTP client can POST it to ComfyUI as it is: for every method and every variation."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from charstudio.backends import GenerateRequest
from charstudio.config import load_settings
from charstudio.library.profile import Method
from charstudio.services import Services, build_services
from tests.backends.conftest import give_lora_and_identity
from tests.backends.fake_comfyui import FakeComfyUI
from tests.backends.pose_images import write_skeleton
from tests.conftest import CliRunner, write_image

METHODS: tuple[Method, ...] = ("lora_ipadapter", "lora_only", "ipadapter_only", "img2img")
VARIATIONS = (None, "outfit", "background", "pose")


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeComfyUI]:
    fake = FakeComfyUI().start()
    monkeypatch.setenv("CHARSTUDIO_COMFYUI_URLS", fake.url)
    monkeypatch.setenv("CHARSTUDIO_COMFYUI_CHECKPOINT", "rand_sd15.safetensors")
    monkeypatch.setenv("CHARSTUDIO_COMFYUI_REQUEST_TIMEOUT_S", "30")
    yield fake
    fake.stop()


@pytest.fixture
def services(server: FakeComfyUI, home: Path) -> Iterator[Services]:
    """Services built after the server's settings are in the environment."""
    built = build_services(load_settings(home=home))
    yield built
    built.close()


def character_for(services: Services, refs: Path, method: Method, server: FakeComfyUI) -> str:
    """A character whose assets allow ``method``, pinned to it; a face crop exported."""
    name = f"c_{method}"
    services.library.create(name, [refs])
    if method != "img2img":
        give_lora_and_identity(services, name)
        server.models["loras"].append(f"{name}_v1.safetensors")
        write_image(services.store.embeddings_dir / f"{name}_reference_face.png", size=(128, 128))
    services.library.update(name, overrides={"method": method})
    return name


def post_and_wait(url: str, graph: dict[str, Any]) -> dict[str, Any]:
    """What any client does: POST /prompt, poll /history until the prompt is done."""
    with httpx.Client(base_url=url, timeout=30.0) as client:
        answer = client.post("/prompt", json={"prompt": graph})
        assert answer.status_code == 200, answer.text
        prompt_id = answer.json()["prompt_id"]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            entry = client.get(f"/history/{prompt_id}").json().get(prompt_id)
            if entry is not None:
                return dict(entry)
            time.sleep(0.05)
    raise AssertionError(f"prompt {prompt_id} did not finish in 60 s")


def without_save(graph: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in graph.items() if v["class_type"] != "SaveImage"}


@pytest.mark.parametrize("method", METHODS)
def test_printed_graphs_run_as_they_are(
    services: Services, refs: Path, server: FakeComfyUI, tmp_path: Path, method: Method
) -> None:
    name = character_for(services, refs, method, server)
    pose = write_skeleton(tmp_path / "pose.png")
    for variation in VARIATIONS:
        request = GenerateRequest(
            prompt="red dress",
            variation=variation,
            pose=pose if variation == "pose" else None,
            seed=11,
        )
        plan = services.generation.workflow(name, request, upload=True)
        assert plan.uploaded_to == server.url
        loaded = sorted(
            node["inputs"]["image"]
            for node in plan.graph.values()
            if node["class_type"] == "LoadImage"
        )
        assert loaded == sorted(plan.uploads.values())
        assert set(loaded) <= set(server.inputs)
        entry = post_and_wait(server.url, plan.graph)
        assert entry["status"]["status_str"] == "success", (method, variation, entry)
        # generate sends the same graph (the seed fixed, the same upload names); only the
        # SaveImage prefix differs, as it names each run's job.
        result = services.generation.generate(name, request)
        sent = server.prompts_received[-1]["prompt"]
        assert without_save(sent) == without_save(plan.graph), (method, variation)
        assert len(result.images) == 1


def test_face_presets_load_the_face_crop(
    services: Services, refs: Path, server: FakeComfyUI
) -> None:
    name = character_for(services, refs, "ipadapter_only", server)
    plan = services.generation.workflow(name, GenerateRequest(prompt="x", seed=1))
    crop = services.store.embeddings_dir / f"{name}_reference_face.png"
    assert plan.reference == str(crop) and plan.reference_input == "face"
    assert list(plan.uploads) == [str(crop)]


def test_cli_upload_then_print(
    cli: CliRunner, services: Services, refs: Path, server: FakeComfyUI
) -> None:
    name = character_for(services, refs, "lora_ipadapter", server)
    services.close()
    printed = cli("workflow", name, "a red coat", "--seed", "3", "--upload", "--print")
    assert printed.code == 0, printed.err
    graph = json.loads(printed.out)
    entry = post_and_wait(server.url, graph)
    assert entry["status"]["status_str"] == "success"


def test_upload_with_no_reachable_server(
    cli: CliRunner, services: Services, refs: Path, server: FakeComfyUI
) -> None:
    name = character_for(services, refs, "img2img", server)
    services.close()
    server.stop()
    result = cli("workflow", name, "a red coat", "--seed", "3", "--upload", "--print")
    assert result.code == 1
    assert result.err.startswith(f"error: cannot reach ComfyUI at {server.url}")
    assert result.out == ""
