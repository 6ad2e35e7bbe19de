"""The ComfyUI client against the fake server: protocol, progress, and every fault."""

from __future__ import annotations

import asyncio
import copy
import io
import json
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from charstudio.backends import (
    CancelToken,
    ClientOptions,
    ComfyUIClient,
    ComfyUIPool,
    GenerationRequest,
    PoolOptions,
    ProgressEvent,
    run_request,
    upload_name,
)
from charstudio.errors import (
    ComfyUIUnavailable,
    GenerationCancelled,
    GenerationFailed,
    ServerLost,
)
from charstudio.workflows import ModelMissing, WorkflowRejected
from tests.backends.conftest import FAST, RequestMaker
from tests.backends.fake_comfyui import FakeComfyUI, free_port, png_for
from tests.workflows.conftest import recorded


def run(
    request: GenerationRequest, urls: list[str], options: PoolOptions = FAST, **kwargs: Any
) -> Any:
    async def go() -> Any:
        async with ComfyUIPool(urls, options=options) as pool:
            return await run_request(pool, request, **kwargs)

    return asyncio.run(go())


def test_generates_an_image_following_the_websocket(
    fake: FakeComfyUI, make_request: RequestMaker
) -> None:
    events: list[ProgressEvent] = []
    images = run(make_request(), [fake.url], progress=events.append)
    assert len(images) == 1
    image = images[0]
    assert (image.server, image.seed, image.extra["followed_by"]) == (fake.url, 1234, "websocket")
    # The image is the PNG ComfyUI saved, with the graph it embedded.
    with Image.open(io.BytesIO(image.png)) as png:
        assert json.loads(png.info["prompt"]) == image.graph
        assert json.loads(png.info["charstudio"])["seed"] == "1234"
    sent = fake.prompts_received[0]
    assert sent["client_id"].startswith("charstudio-") and sent["prompt"] == image.graph
    assert image.graph["1"]["inputs"]["ckpt_name"] == "rand_sd15.safetensors"
    assert fake.inputs, "the reference image was uploaded"
    kinds = [e.kind for e in events]
    assert kinds[0] == "queued" and kinds[-1] == "finished"
    assert kinds.count("step") == 3 and kinds.count("preview") == 3
    assert image.extra["previews"] == 3
    assert [e.message for e in events if e.kind == "step"] == ["step 1/3", "step 2/3", "step 3/3"]


def test_second_run_reports_cached_nodes_like_the_recording(fake: FakeComfyUI) -> None:
    """The fake's message order equals what ComfyUI 0.3.64 sent for the same graph."""
    body = recorded("graph_ipadapter_plus_face.json")
    trace = recorded("trace_ipadapter_run.json")
    fake.inputs["yuki_reference.png"] = png_for(1, 8, {})

    async def go() -> list[str]:
        client = ComfyUIClient(fake.url, options=FAST.client)
        try:
            for seed in (1, 12345):
                graph = copy.deepcopy(body["prompt"])
                graph["8"]["inputs"]["seed"] = seed
                prompt_id = await client.submit(graph)
                outcome = await client.wait(prompt_id, graph=graph)
                assert len(outcome.images) == 1
            return list(outcome.cached_nodes)
        finally:
            await client.aclose()

    cached = asyncio.run(go())
    assert cached == ["1", "2", "3", "4", "5", "6", "7"]
    client_id = next(iter(fake.sent))
    frames = [f for f in fake.sent[client_id] if isinstance(f, dict)]
    second = frames[[i for i, f in enumerate(frames) if f["type"] == "execution_start"][1] :]
    wanted = [m["ws_text"]["type"] for m in trace if "ws_text" in m]
    wanted = wanted[wanted.index("execution_start") :]
    # Our run has 2 sampler steps as recorded; the fake adds no frames of its own.
    assert [f["type"] for f in second] == wanted


def test_waits_past_execution_success_for_the_history(
    fake: FakeComfyUI, make_request: RequestMaker
) -> None:
    """The history race (Comfy-Org/ComfyUI#11540): history is empty at execution_success."""
    fake.history_delay_s = 0.4
    images = run(make_request(), [fake.url])
    assert images[0].extra["followed_by"] == "websocket" and images[0].png


def test_polls_the_history_without_a_websocket(
    fake: FakeComfyUI, make_request: RequestMaker
) -> None:
    fake.websocket = False
    images = run(make_request(), [fake.url])
    assert images[0].extra["followed_by"] == "polling"
    assert Image.open(io.BytesIO(images[0].png)).size == (64, 64)


def test_unreachable_server(make_request: RequestMaker) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(ComfyUIUnavailable) as caught:
        run(make_request(), [url])
    assert str(caught.value).startswith(f"cannot reach ComfyUI at {url}")
    assert "start it (python main.py --listen) or fix CHARSTUDIO_COMFYUI_URLS" in str(caught.value)


def test_slow_server(fake: FakeComfyUI, make_request: RequestMaker) -> None:
    fake.slow_s = 2.5
    impatient = replace(FAST, client=replace(FAST.client, request_timeout_s=1.0))
    with pytest.raises(ComfyUIUnavailable) as caught:
        run(make_request(), [fake.url], impatient)
    assert str(caught.value) == (
        f"ComfyUI at {fake.url} did not answer GET /prompt within 1 s: it is overloaded or "
        "hung; check it, or raise CHARSTUDIO_COMFYUI_REQUEST_TIMEOUT_S"
    )


def test_html_instead_of_json(fake: FakeComfyUI, make_request: RequestMaker) -> None:
    fake.html = True
    with pytest.raises(ComfyUIUnavailable) as caught:
        run(make_request(), [fake.url])
    assert str(caught.value) == (
        f"{fake.url}/prompt answered HTTP 200 with an HTML page instead of ComfyUI's JSON: "
        "check that the URL points at ComfyUI itself (not a proxy login page or another web app)"
    )


def test_node_errors_from_the_server_name_node_input_and_fix(fake: FakeComfyUI) -> None:
    """A graph refused by the server itself (here sent past local validation)."""
    graph = recorded("graph_ipadapter_plus_face.json")["prompt"]
    graph["1"]["inputs"]["ckpt_name"] = "realisticVision_v51.safetensors"
    graph["8"]["inputs"]["seed"] = 2**64
    fake.inputs["yuki_reference.png"] = png_for(1, 8, {})

    async def go() -> None:
        client = ComfyUIClient(fake.url, options=FAST.client)
        try:
            await client.submit(graph)
        finally:
            await client.aclose()

    with pytest.raises(ModelMissing) as caught:
        asyncio.run(go())
    message = str(caught.value)
    assert message.startswith(f"ComfyUI on {fake.url} would refuse the workflow (2 problems):")
    assert (
        "node 1 (CheckpointLoaderSimple) input 'ckpt_name': model "
        f"'realisticVision_v51.safetensors' not found on {fake.url}: put it in "
        "models/checkpoints (it has: rand_sd15.safetensors)"
    ) in message
    assert (
        "node 8 (KSampler) input 'seed': 18446744073709551616 is above the maximum "
        "18446744073709551615: use a value from 0 to 18446744073709551615"
    ) in message
    assert caught.value.missing[0].folder == "checkpoints"


def test_original_design_graph_is_refused_by_the_server(fake: FakeComfyUI) -> None:
    graph = {
        "ckpt": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "x"}},
        "ipadapter_apply": {"class_type": "IPAdapterApply", "inputs": {}},
    }

    async def go() -> None:
        client = ComfyUIClient(fake.url, options=FAST.client)
        try:
            await client.submit(graph)
        finally:
            await client.aclose()

    with pytest.raises(WorkflowRejected) as caught:
        asyncio.run(go())
    assert str(caught.value) == (
        f"IPAdapterApply is not a node on {fake.url} (node 'ipadapter_apply'): it was removed "
        "in ComfyUI_IPAdapter_plus v2; install ComfyUI_IPAdapter_plus v2 "
        "(https://github.com/cubiq/ComfyUI_IPAdapter_plus) and use IPAdapterAdvanced instead"
    )
    assert caught.value.error["type"] == "invalid_prompt"


def test_missing_custom_node_pack(fake: FakeComfyUI, make_request: RequestMaker) -> None:
    fake.missing_packs = {"ipadapter_plus"}
    with pytest.raises(WorkflowRejected) as caught:
        run(make_request(), [fake.url])
    assert str(caught.value).startswith(
        f"IPAdapterModelLoader is not a node on {fake.url} (node '3'): install "
        "ComfyUI_IPAdapter_plus v2 (https://github.com/cubiq/ComfyUI_IPAdapter_plus) in "
        "ComfyUI's custom_nodes and restart it"
    )
    assert fake.prompts_received == [], "nothing is queued on a server that cannot run it"


def test_missing_model_is_found_before_queueing(
    fake: FakeComfyUI, make_request: RequestMaker
) -> None:
    fake.models["ipadapter"] = []
    with pytest.raises(ModelMissing) as caught:
        run(make_request(), [fake.url])
    assert (
        "input 'ipadapter_file': model 'ip-adapter-plus-face_sd15.safetensors' not found on "
        f"{fake.url}: put it in models/ipadapter (it has: nothing)"
    ) in str(caught.value)
    assert fake.prompts_received == []


def test_execution_error_mid_run(fake: FakeComfyUI, make_request: RequestMaker) -> None:
    fake.fail_at, fake.fail_message = "IPAdapterModelLoader", "IPAdapter model not found."
    with pytest.raises(GenerationFailed) as caught:
        run(make_request(), [fake.url])
    message = str(caught.value)
    assert message.startswith(
        f"ComfyUI on {fake.url} failed at node 3 (IPAdapterModelLoader) input 'ipadapter_file' "
        "= 'ip-adapter-plus-face_sd15.safetensors' while running prompt "
    )
    assert message.endswith(
        ": Exception: IPAdapter model not found.; fix: put the preset's adapter file (e.g. "
        "ip-adapter-plus-face_sd15.safetensors) in models/ipadapter, named as the "
        "IPAdapter_plus README says"
    )


def test_execution_error_read_from_the_history_when_polling(
    fake: FakeComfyUI, make_request: RequestMaker
) -> None:
    fake.websocket = False
    fake.fail_at = "KSampler"
    fake.fail_message = "CUDA out of memory. Tried to allocate 2.00 GiB"
    with pytest.raises(GenerationFailed) as caught:
        run(make_request(), [fake.url])
    assert "failed at node 10 (KSampler) while running prompt" in str(caught.value)
    assert str(caught.value).endswith(
        "fix: use a smaller image size or fewer images at once, or free GPU memory "
        "(POST /free) and try again"
    )


def test_server_restart_mid_job_without_another_server(
    fake: FakeComfyUI, make_request: RequestMaker
) -> None:
    fake.die_at = "KSampler"
    fake.on_die = lambda: fake.restart(0.2)
    with pytest.raises(ServerLost) as caught:
        run(make_request(), [fake.url])
    message = str(caught.value)
    assert message.startswith(f"ComfyUI at {fake.url} no longer knows prompt ")
    assert "(it restarted mid-job and forgot its queue); the job is lost there; no other " in (
        message
    )


def test_cancel_interrupts_the_running_prompt(
    fake: FakeComfyUI, make_request: RequestMaker
) -> None:
    fake.step_s = 0.1
    token = CancelToken()

    def on_event(event: ProgressEvent) -> None:
        if event.kind == "step":
            token.cancel()

    request = make_request(params=make_request().params.model_copy(update={"steps": 50}))
    with pytest.raises(GenerationCancelled) as caught:
        run(request, [fake.url], progress=on_event, cancel=token)
    assert "was cancelled: nothing was saved" in str(caught.value)
    prompt_id = fake.prompts_received[0]["prompt_id"]
    for _ in range(100):
        if prompt_id in fake.history:
            break
        threading.Event().wait(0.05)
    assert fake.history[prompt_id]["status"]["messages"][-1][0] == "execution_interrupted"


def test_unified_preset_files_are_checked_before_queueing(
    fake: FakeComfyUI, make_request: RequestMaker
) -> None:
    """IPAdapterUnifiedLoader finds files by preset while running; /models/* is read first."""
    request = make_request(
        ipadapter_preset="FULL FACE - SD1.5 only (portraits stronger)", ipadapter_loader="unified"
    )
    with pytest.raises(ModelMissing) as caught:
        run(request, [fake.url])
    assert str(caught.value) == (
        f"ComfyUI on {fake.url} would fail the workflow while running (1 problem):\n- node 3 "
        "(IPAdapterUnifiedLoader) input 'preset' = 'FULL FACE - SD1.5 only (portraits "
        "stronger)': model 'ip-adapter-full-face_sd15.safetensors' not found on "
        f"{fake.url}: put it in models/ipadapter (it has: ip-adapter-plus-face_sd15.safetensors)"
    )
    assert caught.value.missing[0].folder == "ipadapter" and fake.prompts_received == []
    # PLUS FACE's file is there (matched like IPAdapter_plus does, by pattern): it runs.
    fake.models["ipadapter"] = ["subdir/IP-Adapter-Plus-Face_SD15.safetensors"]
    plus_face = make_request(ipadapter_loader="unified")
    assert run(plus_face, [fake.url])[0].graph["3"]["class_type"] == "IPAdapterUnifiedLoader"


def test_cancelled_task_takes_its_prompt_off_the_server(
    fake: FakeComfyUI, make_request: RequestMaker
) -> None:
    """Ctrl-C cancels asyncio.run's task: the running prompt must not keep the GPU busy."""
    fake.step_s = 0.1
    request = make_request(params=make_request().params.model_copy(update={"steps": 50}))

    async def go() -> None:
        async with ComfyUIPool([fake.url], options=FAST) as pool:
            task = asyncio.create_task(run_request(pool, request))
            while fake.running is None:
                await asyncio.sleep(0.01)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

    asyncio.run(go())
    prompt_id = fake.prompts_received[0]["prompt_id"]
    for _ in range(100):
        if prompt_id in fake.history:
            break
        threading.Event().wait(0.05)
    assert fake.history[prompt_id]["status"]["messages"][-1][0] == "execution_interrupted"


def test_unexpected_answers_through_a_mock_transport() -> None:
    """The transport seam: answers a real ComfyUI gives only when something is wrong."""

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and request.url.path == "/prompt":
            return httpx.Response(500, json={"error": "Internal Server Error"})
        if request.url.path == "/view":
            return httpx.Response(404, text="404: Not Found")
        return httpx.Response(200, json={"exec_info": {}})

    options = ClientOptions(use_websocket=False)

    async def go(call: str) -> Any:
        client = ComfyUIClient(
            "http://gpu9:8188", options=options, transport=httpx.MockTransport(handler)
        )
        try:
            if call == "submit":
                return await client.submit({"1": {"class_type": "SaveImage", "inputs": {}}})
            if call == "view":
                return await client.view({"filename": "gone.png", "type": "output"})
            return await client.probe()
        finally:
            await client.aclose()

    with pytest.raises(ComfyUIUnavailable) as caught:
        asyncio.run(go("submit"))
    assert str(caught.value) == (
        "http://gpu9:8188/prompt answered HTTP 500 with {'error': 'Internal Server Error'} "
        "instead of ComfyUI's JSON: check that the URL points at ComfyUI itself (not a proxy "
        "login page or another web app)"
    )
    with pytest.raises(GenerationFailed) as failed:
        asyncio.run(go("view"))
    assert str(failed.value) == (
        "ComfyUI on http://gpu9:8188 has no output file 'gone.png' (HTTP 404 from /view): it "
        "was deleted or the output folder changed; run the command again"
    )
    with pytest.raises(ComfyUIUnavailable, match="answered HTTP 200 with JSON without exec_info"):
        asyncio.run(go("probe"))


def test_job_timeout_takes_the_prompt_off_the_server(
    fake: FakeComfyUI, make_request: RequestMaker
) -> None:
    fake.step_s = 0.3
    options = replace(FAST, client=replace(FAST.client, job_timeout_s=0.5))

    async def go() -> None:
        async with ComfyUIPool([fake.url], options=options) as pool:
            await run_request(pool, make_request())

    with pytest.raises(GenerationFailed) as caught:
        asyncio.run(go())
    prompt_id = fake.prompts_received[0]["prompt_id"]
    assert str(caught.value) == (
        f"prompt {prompt_id} did not finish within 0.5 s on {fake.url} (removed from its "
        "queue): the server is busy or stuck; raise CHARSTUDIO_COMFYUI_JOB_TIMEOUT_S or add "
        "servers to CHARSTUDIO_COMFYUI_URLS"
    )


def test_prompt_without_a_saved_image(fake: FakeComfyUI) -> None:
    fake.inputs["yuki_reference.png"] = png_for(1, 8, {})
    graph = {
        "1": {"class_type": "LoadImage", "inputs": {"image": "yuki_reference.png"}},
        "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}},
    }

    async def go() -> None:
        client = ComfyUIClient(fake.url, options=FAST.client)
        try:
            await client.wait(await client.submit(graph), graph=graph)
        finally:
            await client.aclose()

    with pytest.raises(GenerationFailed) as caught:
        asyncio.run(go())
    assert str(caught.value).endswith(
        f"finished on {fake.url} without an image: the graph needs a SaveImage node fed by "
        "VAEDecode"
    )


def test_unreadable_reference_fails_in_load_image(
    fake: FakeComfyUI, make_request: RequestMaker, tmp_path: Path
) -> None:
    """LoadImage's validation only checks the file exists; Pillow fails on it mid-run."""
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png at all")
    with pytest.raises(GenerationFailed) as caught:
        run(make_request(reference_file=broken), [fake.url])
    message = str(caught.value)
    assert f"failed at node 5 (LoadImage) input 'image' = '{upload_name(broken)}'" in message
    assert message.endswith(
        "PIL.UnidentifiedImageError: cannot identify image file "
        f"'/ComfyUI/input/{upload_name(broken)}'; fix: the uploaded image is not a readable "
        "image: choose another reference (charstudio faces reference NAME --use IMAGE) or "
        "re-import it"
    )
