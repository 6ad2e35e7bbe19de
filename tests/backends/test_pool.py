"""The pool: choosing servers, spreading work, retrying a job whose server died."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from charstudio.backends import (
    ComfyUIPool,
    GenerationRequest,
    PoolOptions,
    ProgressEvent,
    run_request,
)
from charstudio.errors import ComfyUIUnavailable, ServerLost
from charstudio.workflows import ModelMissing
from tests.backends.conftest import FAST, RequestMaker
from tests.backends.fake_comfyui import FakeComfyUI, free_port


def run(request: GenerationRequest, urls: list[str], **kwargs: Any) -> Any:
    async def go() -> Any:
        async with ComfyUIPool(urls, options=FAST) as pool:
            return await run_request(pool, request, **kwargs)

    return asyncio.run(go())


def test_job_of_a_dead_server_is_retried_on_another(
    fakes: list[FakeComfyUI], make_request: RequestMaker
) -> None:
    first, second = fakes
    second.step_s = 0.05
    # Busier, so the first server is chosen first: another client's prompt runs there. (A
    # pending one could be taken by the server's loop before the choice, leaving a tie.)
    second.running = "someone-else"
    first.die_at = "KSampler"
    first.on_die = lambda: first.stop()
    events: list[ProgressEvent] = []
    images = run(make_request(), [first.url, second.url], progress=events.append)
    assert images[0].server == second.url
    assert images[0].extra["retried_from"] == first.url
    retries = [e for e in events if e.kind == "retry"]
    assert len(retries) == 1 and retries[0].server == first.url
    assert retries[0].message.startswith(f"retrying: ComfyUI at {first.url} stopped answering")
    assert len(second.prompts_received) == 1


def test_lost_twice_fails_with_both_reasons(
    fakes: list[FakeComfyUI], make_request: RequestMaker
) -> None:
    for server in fakes:
        server.die_at = "KSampler"
        server.on_die = server.stop
    with pytest.raises(ServerLost) as caught:
        run(make_request(), [s.url for s in fakes])
    message = str(caught.value)
    assert "stopped answering while running prompt" in message
    assert "(this was the retry: the job was first lost because ComfyUI at" in message
    assert all(len(s.prompts_received) == 1 for s in fakes)


def test_goes_to_the_server_that_has_the_models(
    fakes: list[FakeComfyUI], make_request: RequestMaker
) -> None:
    without, with_lora = fakes
    without.models["loras"] = []
    # Under load the first /object_info (580 KB) took more than the 2 s the test client
    # allowed for one answer, and the server with the models was taken for a hung one.
    for server in fakes:
        server.object_info_delay_s = 2.5
    images = run(make_request(), [without.url, with_lora.url])
    assert images[0].server == with_lora.url
    assert without.prompts_received == []


def test_no_server_has_the_model(fakes: list[FakeComfyUI], make_request: RequestMaker) -> None:
    for server in fakes:
        server.models["loras"] = ["other_v3.safetensors"]
    with pytest.raises(ModelMissing) as caught:
        run(make_request(), [s.url for s in fakes])
    message = str(caught.value)
    assert (
        f"model 'yuki_v1.safetensors' not found on {fakes[0].url}: put it in models/loras "
        "(it has: other_v3.safetensors)"
    ) in message
    assert f"(servers: {fakes[0].url}: ComfyUI on" in message


def test_images_spread_over_the_servers_none_lost_or_twice(
    fakes: list[FakeComfyUI], make_request: RequestMaker
) -> None:
    for server in fakes:
        server.step_s = 0.02
    request = make_request(seeds=(1, 2, 3, 4, 5, 6))
    images = run(request, [s.url for s in fakes])
    assert [i.seed for i in images] == [1, 2, 3, 4, 5, 6]
    assert len({i.prompt_id for i in images}) == 6
    counts = sorted(len(s.prompts_received) for s in fakes)
    assert counts == [3, 3]


def test_every_server_unreachable(make_request: RequestMaker) -> None:
    urls = [f"http://127.0.0.1:{free_port()}", f"http://127.0.0.1:{free_port()}"]
    with pytest.raises(ComfyUIUnavailable) as caught:
        run(make_request(), urls)
    message = str(caught.value)
    assert message.startswith(f"no ComfyUI server is usable: {urls[0]}: cannot reach ComfyUI")
    assert f"; {urls[1]}: cannot reach ComfyUI at {urls[1]}" in message


def test_no_server_configured() -> None:
    with pytest.raises(ComfyUIUnavailable) as caught:
        ComfyUIPool([])
    assert str(caught.value) == (
        "no ComfyUI server is configured: set CHARSTUDIO_COMFYUI_URLS (e.g. http://127.0.0.1:8188)"
    )


def test_polling_jobs_share_queue_reads_and_none_is_taken_for_lost(
    fake: FakeComfyUI, make_request: RequestMaker
) -> None:
    """Without /ws, a dozen queued jobs poll; GET /queue (every pending graph) is shared.

    Each poll reads ``/history/<id>``; every one that misses (the prompt is not done) also
    needs the queue, to tell a queued prompt from a lost one. Nothing runs until every job
    has missed at least 5 times, so how many polls there are depends on no timing, and the
    reads are compared with the polls that needed one.
    """
    fake.websocket = False

    def polls() -> dict[str, int]:
        return {k: n for k, n in fake.requests.items() if k.startswith("GET /history/")}

    fake.hold_until = lambda: len(polls()) == 12 and min(polls().values()) >= 5
    images = run(make_request(seeds=tuple(range(12))), [fake.url])
    assert sorted(i.seed for i in images) == list(range(12))
    assert {i.extra["followed_by"] for i in images} == {"polling"}
    assert len(polls()) == 12  # each job polled its own prompt
    needed_queue = sum(polls().values()) - 12  # all but each job's last poll, which found it
    assert needed_queue >= 12 * 5
    reads = fake.requests["GET /queue"]
    # Shared: jobs that waited on one read wake together and poll in step, so one read
    # answers many polls, not one each (measured: about 12 polls a read here, still 4-5
    # with every answer of the server delayed past the sharing window, slow_s 0.3-0.6).
    assert reads >= 1 and reads * 3 <= needed_queue, (reads, needed_queue)


def test_another_workers_prompts_count_as_load(
    fakes: list[FakeComfyUI], make_request: RequestMaker
) -> None:
    """Two workers, two pools: the load is the server's own queue count, so a worker that
    never used a server still sees the other worker's prompts there and goes elsewhere."""
    busy, idle = fakes
    busy.step_s = 0.2  # the other worker's prompts keep it busy while this one chooses

    async def go() -> Any:
        async with (
            ComfyUIPool([busy.url], options=FAST) as other_worker,
            ComfyUIPool([busy.url, idle.url], options=FAST) as this_worker,
        ):
            theirs = asyncio.create_task(run_request(other_worker, make_request(seeds=(1, 2, 3))))
            while len(busy.prompts_received) < 3:
                await asyncio.sleep(0.01)
            # Read for this choice (probe_interval_s 0, the default a worker has).
            assert this_worker.options.probe_interval_s == PoolOptions().probe_interval_s == 0
            ours = await run_request(this_worker, make_request(seeds=(4,)))
            await theirs
            return ours

    ours = asyncio.run(go())
    assert ours[0].server == idle.url
    assert len(busy.prompts_received) == 3


def test_choices_at_the_same_moment_spread_and_each_counts_until_submitted(
    fakes: list[FakeComfyUI], make_request: RequestMaker
) -> None:
    async def go() -> tuple[list[str], list[int]]:
        async with ComfyUIPool([s.url for s in fakes], options=FAST) as pool:
            states = await asyncio.gather(*(pool.choose(_graph(make_request())) for _ in range(4)))
            reserved = [s.reserved for s in pool.servers]
            for state in states:
                pool.release(state)
            assert [s.reserved for s in pool.servers] == [0, 0]
            return [s.client.url for s in states], reserved

    chosen, reserved = asyncio.run(go())
    assert sorted(chosen) == sorted([fakes[0].url, fakes[1].url] * 2)
    assert reserved == [2, 2]


def _graph(request: GenerationRequest) -> Any:
    from charstudio.backends import ServerNames
    from charstudio.workflows import build_workflow

    return build_workflow(request.workflow_request(0, ServerNames()))
