"""Following one queued prompt to its end: over ``/ws`` events, else by polling ``/history``.

The end is ``executing`` with ``node: null`` for the prompt, which ComfyUI sends after
writing the history; ``execution_success`` comes before that write, so the history can
still be ``{}`` at that point (Comfy-Org/ComfyUI#11540). Without a socket (or after it
drops) ``/history/<id>`` is polled; a server that stops answering for ``lost_after_s``,
or answers but no longer knows the prompt (a restart empties ComfyUI's queue), has lost
the job: :class:`~charstudio.errors.ServerLost`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from charstudio.backends.comfyui_errors import execution_failure, interruption
from charstudio.backends.comfyui_events import Event
from charstudio.errors import ComfyUIUnavailable, GenerationCancelled, GenerationFailed, ServerLost
from charstudio.workflows.types import Graph

if TYPE_CHECKING:
    from charstudio.backends.comfyui import ComfyUIClient, EventSink

__all__ = ["finished_entry", "follow", "output_images", "poll", "raise_if_failed"]

_QUIET_S = 5.0
_MAX_QUIET_S = 60.0


async def follow(
    client: ComfyUIClient,
    prompt_id: str,
    queue: asyncio.Queue[Event],
    graph: Graph,
    on_event: EventSink | None,
    deadline: float,
) -> tuple[dict[str, Any], tuple[str, ...], int, str]:
    cached: tuple[str, ...] = ()
    previews = 0
    loop = asyncio.get_running_loop()
    # How long the socket may stay quiet before the history is asked directly (a lost
    # frame, a long node). Waiting in a long queue is quiet too: back off, or a thousand
    # queued jobs would poll the server for nothing.
    quiet_s = _QUIET_S
    while client.events.connected:
        remaining = deadline - loop.time()
        if remaining <= 0:
            await client.give_up(prompt_id)
        try:
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a
            # cancellation that lands as the queue yields an event, and a cancelled
            # generation would then run on.
            async with asyncio.timeout(min(remaining, quiet_s)):
                event = await queue.get()
        except TimeoutError:
            entry = await finished_entry(client, prompt_id, graph)
            if entry is not None:
                return entry, cached, previews, "websocket"
            quiet_s = min(quiet_s * 2, _MAX_QUIET_S)
            continue
        quiet_s = _QUIET_S
        if on_event is not None and event.type not in ("closed", "cancel"):
            on_event(event)
        if event.type == "cancel":
            raise GenerationCancelled(
                f"prompt {prompt_id} on {client.url} was cancelled: nothing was saved"
            )
        if event.type == "execution_cached":
            cached = tuple(str(n) for n in event.data.get("nodes", []))
        elif event.type == "preview":
            previews += 1
        elif event.type == "execution_error":
            raise execution_failure(event.data, server=client.url, graph=graph)
        elif event.type == "execution_interrupted":
            raise interruption(event.data, server=client.url)
        elif event.type == "executing" and event.data.get("node") is None:
            # Done, and (unlike at execution_success) the history is written.
            entry = await finished_entry(client, prompt_id, graph, attempts=20)
            if entry is not None:
                return entry, cached, previews, "websocket"
        elif event.type == "closed":
            break
    entry = await poll(client, prompt_id, graph, deadline, queue)
    return entry, cached, previews, "polling"


async def poll(
    client: ComfyUIClient,
    prompt_id: str,
    graph: Graph,
    deadline: float,
    queue: asyncio.Queue[Event],
) -> dict[str, Any]:
    """Poll ``/history`` until the prompt is done, lost, cancelled or out of time."""
    loop = asyncio.get_running_loop()
    last_answer = counted = loop.time()
    absent = 0
    while True:
        while not queue.empty():
            if queue.get_nowait().type == "cancel":
                raise GenerationCancelled(
                    f"prompt {prompt_id} on {client.url} was cancelled: nothing was saved"
                )
        if loop.time() > deadline:
            await client.give_up(prompt_id)
        try:
            entry = await finished_entry(client, prompt_id, graph)
            if entry is not None:
                return entry
            # A restarted ComfyUI forgets its queue: neither history nor queue has it.
            queued, read_at = await client.queued_ids(max_age_s=client.options.poll_interval_s * 4)
            # Count each shared read once, and only reads begun after the prompt was
            # queued (an older one cannot list it).
            if read_at > counted:
                counted = read_at
                absent = 0 if prompt_id in queued else absent + 1
            last_answer = loop.time()
        except ComfyUIUnavailable as exc:
            if loop.time() - last_answer > client.options.lost_after_s:
                raise ServerLost(
                    f"ComfyUI at {client.url} stopped answering while running prompt "
                    f"{prompt_id} ({exc}); the job is lost there"
                ) from exc
        if absent >= 2:
            raise ServerLost(
                f"ComfyUI at {client.url} no longer knows prompt {prompt_id} (it restarted "
                "mid-job and forgot its queue); the job is lost there"
            )
        await asyncio.sleep(client.options.poll_interval_s)


async def finished_entry(
    client: ComfyUIClient, prompt_id: str, graph: Graph, *, attempts: int = 1
) -> dict[str, Any] | None:
    for attempt in range(attempts):
        entry = await client.history(prompt_id)
        if entry is not None:
            raise_if_failed(entry, prompt_id, client.url, graph)
            return entry
        if attempt + 1 < attempts:
            await asyncio.sleep(0.05)
    return None


def raise_if_failed(entry: Mapping[str, Any], prompt_id: str, server: str, graph: Graph) -> None:
    status = entry.get("status") or {}
    if status.get("status_str") != "error":
        return
    for name, data in status.get("messages") or []:
        if name == "execution_error":
            raise execution_failure({"prompt_id": prompt_id, **data}, server=server, graph=graph)
        if name == "execution_interrupted":
            raise interruption({"prompt_id": prompt_id, **data}, server=server)
    raise GenerationFailed(
        f"prompt {prompt_id} failed on {server} without an error message: see ComfyUI's console"
    )


def output_images(entry: Mapping[str, Any], graph: Graph) -> list[Mapping[str, Any]]:
    """The SaveImage outputs of a history entry (previews and temp images left out)."""
    found = []
    for node_id, output in (entry.get("outputs") or {}).items():
        if graph.get(node_id, {}).get("class_type") != "SaveImage":
            continue
        found += [i for i in output.get("images", []) if i.get("type", "output") == "output"]
    return found
