"""The fake server's scenarios against a real ComfyUI: the first of ``CHARSTUDIO_COMFYUI_URLS``,
the variable the application reads.

Skipped (with the reason) when the variable is not set. The server needs a checkpoint in
``models/checkpoints`` (the first one is used; random weights are fine) and, for the
IP-Adapter scenario, ``clip_vision/CLIP-ViT-H-14-laion2B-s32B-b79K.safetensors`` and
``ipadapter/ip-adapter-plus-face_sd15.safetensors`` with ComfyUI_IPAdapter_plus v2
installed. README.md, "Generating on ComfyUI", says how to start one on CPU.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from charstudio.backends import (
    CancelToken,
    ClientOptions,
    ComfyUIBackend,
    ComfyUIClient,
    ComfyUIPool,
    GenerationRequest,
    PoolOptions,
    ProgressEvent,
    ServerNames,
    run_request,
)
from charstudio.errors import ComfyUIUnavailable, GenerationCancelled, GenerationFailed
from charstudio.library.profile import METHOD_DEFAULTS
from charstudio.workflows import ModelMissing, WorkflowRejected, build_workflow
from tests.backends.fake_comfyui import free_port
from tests.backends.live import live_url
from tests.backends.pose_images import write_skeleton
from tests.conftest import write_image

# Read at import: the autouse fixture clears CHARSTUDIO_* before each test runs.
LIVE_URL = live_url(os.environ)

pytestmark = [
    pytest.mark.live_comfyui,
    pytest.mark.skipif(
        not LIVE_URL,
        reason="set CHARSTUDIO_COMFYUI_URLS to a running ComfyUI to run the live suite",
    ),
]

# A CPU-only ComfyUI takes seconds per step: generous timeouts.
SLOW_CPU = PoolOptions(
    client=ClientOptions(request_timeout_s=60.0, job_timeout_s=900.0, lost_after_s=30.0),
    probe_interval_s=1.0,
)


def on_server(coroutine_factory: Any) -> Any:
    async def go() -> Any:
        client = ComfyUIClient(LIVE_URL, options=SLOW_CPU.client)
        try:
            return await coroutine_factory(client)
        finally:
            await client.aclose()

    return asyncio.run(go())


@pytest.fixture(scope="module")
def server_files() -> dict[str, list[str]]:
    async def read(client: ComfyUIClient) -> dict[str, list[str]]:
        return {f: await client.models(f) for f in ("checkpoints", "ipadapter", "clip_vision")}

    files: dict[str, list[str]] = on_server(read)
    if not files["checkpoints"]:
        pytest.skip(f"{LIVE_URL} has no file in models/checkpoints")
    return files


def live_request(tmp_path: Path, files: dict[str, list[str]], **changes: Any) -> GenerationRequest:
    method = changes.pop("method", "img2img")
    values: dict[str, Any] = {
        "character": "yuki",
        "job": "live",
        "trigger_word": "yukicharacter",
        "prompt": "red dress",
        "variation": "outfit",
        "method": method,
        "params": METHOD_DEFAULTS[method].model_copy(update={"steps": 2}),
        "seeds": (1234,),
        "checkpoint": files["checkpoints"][0],
        "width": 64,
        "height": 64,
        "reference_file": write_image(tmp_path / "yuki_live.png", size=(64, 64)),
    }
    values.update(changes)
    return GenerationRequest(**values)


def run(request: GenerationRequest, urls: list[str], **kwargs: Any) -> Any:
    async def go() -> Any:
        async with ComfyUIPool(urls, options=SLOW_CPU) as pool:
            return await run_request(pool, request, **kwargs)

    return asyncio.run(go())


def test_generates_an_image(tmp_path: Path, server_files: dict[str, list[str]]) -> None:
    events: list[ProgressEvent] = []
    images = run(live_request(tmp_path, server_files), [LIVE_URL], progress=events.append)
    assert images[0].png.startswith(b"\x89PNG") and images[0].server == LIVE_URL
    assert [e.kind for e in events][-1] == "finished"
    assert any(e.kind == "step" for e in events)


def test_ipadapter_plus_face(tmp_path: Path, server_files: dict[str, list[str]]) -> None:
    if "ip-adapter-plus-face_sd15.safetensors" not in server_files["ipadapter"]:
        pytest.skip(f"{LIVE_URL} has no models/ipadapter/ip-adapter-plus-face_sd15.safetensors")
    request = live_request(tmp_path, server_files, method="ipadapter_only")
    assert run(request, [LIVE_URL])[0].png.startswith(b"\x89PNG")


def test_missing_model(tmp_path: Path, server_files: dict[str, list[str]]) -> None:
    request = live_request(tmp_path, server_files, checkpoint="not_installed_v51.safetensors")
    with pytest.raises(ModelMissing, match="put it in models/checkpoints"):
        run(request, [LIVE_URL])


def test_node_errors_and_removed_node_from_the_server() -> None:
    graph = {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "nope.safetensors"}},
        "2": {"class_type": "IPAdapterApply", "inputs": {}},
    }
    with pytest.raises(WorkflowRejected, match="IPAdapterApply is not a node on"):
        on_server(lambda client: client.submit(graph))


def test_preset_files_are_checked_before_queueing(
    tmp_path: Path, server_files: dict[str, list[str]]
) -> None:
    """FULL FACE is found by name only while running: the pool checks /models first."""
    if any("full-face" in name for name in server_files["ipadapter"]):
        pytest.skip(f"{LIVE_URL} has a FULL FACE adapter")
    request = live_request(
        tmp_path,
        server_files,
        method="ipadapter_only",
        ipadapter_preset="FULL FACE - SD1.5 only (portraits stronger)",
        ipadapter_loader="unified",
    )
    with pytest.raises(ModelMissing, match="put it in models/ipadapter"):
        run(request, [LIVE_URL])


def test_execution_error_mid_run(tmp_path: Path, server_files: dict[str, list[str]]) -> None:
    """A reference that is not an image passes validation and fails in LoadImage."""
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png at all")
    request = live_request(tmp_path, server_files, reference_file=broken)
    with pytest.raises(GenerationFailed, match=r"\(LoadImage\) input 'image'"):
        run(request, [LIVE_URL])


def test_cancel(tmp_path: Path, server_files: dict[str, list[str]]) -> None:
    token = CancelToken()

    def on_event(event: ProgressEvent) -> None:
        if event.kind in ("step", "node"):
            token.cancel()

    request = live_request(
        tmp_path, server_files, params=METHOD_DEFAULTS["img2img"].model_copy(update={"steps": 200})
    )
    with pytest.raises(GenerationCancelled):
        run(request, [LIVE_URL], progress=on_event, cancel=token)


def test_unreachable_beside_the_live_server(
    tmp_path: Path, server_files: dict[str, list[str]]
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    images = run(live_request(tmp_path, server_files), [dead, LIVE_URL])
    assert images[0].server == LIVE_URL
    with pytest.raises(ComfyUIUnavailable, match=f"cannot reach ComfyUI at {dead}"):
        run(live_request(tmp_path, server_files), [dead])


@pytest.mark.parametrize("method", ["img2img", "ipadapter_only"])
def test_printed_graph_runs_as_printed(
    tmp_path: Path, server_files: dict[str, list[str]], method: str
) -> None:
    """What `charstudio workflow ... --upload --print` gives, POSTed by a plain client."""
    if method == "ipadapter_only" and (
        "ip-adapter-plus-face_sd15.safetensors" not in server_files["ipadapter"]
    ):
        pytest.skip(f"{LIVE_URL} has no models/ipadapter/ip-adapter-plus-face_sd15.safetensors")
    # A seed of its own on each run: the same graph as the previous prompt (test_unreachable_...
    # runs img2img at seed 1234 just before) is answered from ComfyUI's cache without running.
    seed = time.time_ns() % 2**32
    request = live_request(tmp_path, server_files, method=method, seeds=(seed,))
    with ComfyUIBackend([LIVE_URL], options=SLOW_CPU) as backend:
        assert backend.upload(request) == LIVE_URL
    graph = build_workflow(request.workflow_request(0, ServerNames()))
    with httpx.Client(base_url=LIVE_URL, timeout=60.0) as client:
        answer = client.post("/prompt", json={"prompt": graph})
        assert answer.status_code == 200, answer.text
        prompt_id = answer.json()["prompt_id"]
        deadline = time.monotonic() + 900
        entry = None
        while entry is None and time.monotonic() < deadline:
            time.sleep(1.0)
            entry = client.get(f"/history/{prompt_id}").json().get(prompt_id)
    assert entry is not None and entry["status"]["status_str"] == "success", entry
    cached = {
        node
        for event, data in entry["status"]["messages"]
        if event == "execution_cached"
        for node in data["nodes"]
    }
    saves = {node for node, spec in graph.items() if spec["class_type"] == "SaveImage"}
    assert saves and not saves & cached, f"{sorted(cached)} answered from ComfyUI's cache"


def test_skeleton_pose_needs_no_preprocessor(
    tmp_path: Path, server_files: dict[str, list[str]]
) -> None:
    """A ready OpenPose skeleton goes straight to the ControlNet: no annotator download."""
    controlnets = on_server(lambda client: client.models("controlnet"))
    name = "control_v11p_sd15_openpose_fp16.safetensors"
    if name not in controlnets:
        pytest.skip(f"{LIVE_URL} has no models/controlnet/{name}")
    request = live_request(
        tmp_path,
        server_files,
        variation="pose",
        pose_file=write_skeleton(tmp_path / "pose.png", size=(64, 64)),
        pose_kind="skeleton",
        controlnet=name,
    )
    graph = build_workflow(request.workflow_request(0, ServerNames()))
    assert "OpenposePreprocessor" not in {node["class_type"] for node in graph.values()}
    assert run(request, [LIVE_URL])[0].png.startswith(b"\x89PNG")
