"""How the fake ComfyUI runs one prompt: the messages of trace_ipadapter_run.json, in order."""

from __future__ import annotations

import asyncio
import io
import json
import threading
import time
from typing import TYPE_CHECKING, Any

from PIL import Image

from tests.backends.fake_comfyui import png_for, preview_frame

if TYPE_CHECKING:
    from tests.backends.fake_comfyui import FakeComfyUI


def _ms() -> int:
    return int(time.time() * 1000)


def _is_link(value: Any, graph: dict[str, Any]) -> bool:
    return isinstance(value, list) and len(value) == 2 and str(value[0]) in graph


def _order(graph: dict[str, Any]) -> list[str]:
    """Nodes in dependency order (inputs first), as ComfyUI's execution list runs them."""
    done: list[str] = []

    def visit(node_id: str) -> None:
        if node_id in done:
            return
        for value in graph[node_id].get("inputs", {}).values():
            if isinstance(value, list) and len(value) == 2 and str(value[0]) in graph:
                visit(str(value[0]))
        done.append(node_id)

    for node_id in graph:
        visit(node_id)
    return done


async def execute(
    server: FakeComfyUI, number: int, prompt_id: str, graph: dict[str, Any], extra: dict[str, Any]
) -> None:
    sid = extra.get("client_id")
    messages: list[list[Any]] = []

    async def event(kind: str, data: dict[str, Any], *, keep: bool = False) -> None:
        if keep:
            messages.append([kind, data])
        await server._send(sid, kind, data)

    await server._broadcast_status()
    await event("execution_start", {"prompt_id": prompt_id, "timestamp": _ms()}, keep=True)
    order = _order(graph)
    # A node is cached when it and everything upstream ran before with the same inputs.
    signature: dict[str, str] = {}
    for n in order:
        inputs = {
            k: signature[str(v[0])] + f"/{v[1]}" if _is_link(v, graph) else v
            for k, v in graph[n].get("inputs", {}).items()
        }
        signature[n] = json.dumps([graph[n]["class_type"], inputs], sort_keys=True)
    cached = [
        n for n in order if signature[n] in server._cache and graph[n]["class_type"] != "SaveImage"
    ]
    await event(
        "execution_cached", {"nodes": cached, "prompt_id": prompt_id, "timestamp": _ms()}, keep=True
    )
    outputs: dict[str, Any] = {}
    states: dict[str, Any] = {}
    seed = 0
    for node_id in order:
        if node_id in cached:
            continue
        class_type = graph[node_id]["class_type"]
        states[node_id] = _state(prompt_id, node_id, 0.0, 1.0, "running")
        await event("progress_state", {"prompt_id": prompt_id, "nodes": dict(states)})
        await event("executing", {"node": node_id, "display_node": node_id, "prompt_id": prompt_id})
        if server.die_at == class_type and server.on_die is not None:
            # The process dies here: the test's callback stops (or restarts) the server,
            # from another thread (stopping waits for this loop).
            threading.Thread(target=server.on_die, daemon=True).start()
            await asyncio.sleep(3600)
        failure = _failure(server, graph, node_id, class_type)
        if failure is not None:
            await _fail(
                server,
                event,
                messages,
                number,
                prompt_id,
                graph,
                extra,
                node_id,
                class_type,
                failure,
            )
            return
        if class_type == "KSampler":
            seed = int(graph[node_id]["inputs"].get("seed", 0))
            steps = int(graph[node_id]["inputs"].get("steps", 1))
            for step in range(1, steps + 1):
                if server.step_s:
                    await asyncio.sleep(server.step_s)
                if server._interrupt == prompt_id:
                    await _interrupted(
                        server,
                        event,
                        messages,
                        number,
                        prompt_id,
                        graph,
                        extra,
                        node_id,
                        class_type,
                    )
                    return
                states[node_id] = _state(prompt_id, node_id, step, steps, "running")
                await event("progress_state", {"prompt_id": prompt_id, "nodes": dict(states)})
                await event(
                    "progress",
                    {"value": step, "max": steps, "prompt_id": prompt_id, "node": node_id},
                )
                await server._send_bytes(sid, preview_frame(png_for(seed + step, 8, {})))
        if class_type == "SaveImage":
            images = _save(server, graph, node_id, seed, extra)
            outputs[node_id] = {"images": images}
            await event(
                "executed",
                {
                    "node": node_id,
                    "display_node": node_id,
                    "output": {"images": images},
                    "prompt_id": prompt_id,
                },
            )
        states[node_id] = _state(prompt_id, node_id, 1.0, 1.0, "finished")
        await event("progress_state", {"prompt_id": prompt_id, "nodes": dict(states)})
        server._cache.add(signature[node_id])
    await event("execution_success", {"prompt_id": prompt_id, "timestamp": _ms()}, keep=True)
    await server._broadcast_status()
    if server.history_delay_s:
        await asyncio.sleep(server.history_delay_s)
    server.history[prompt_id] = {
        "prompt": [number, prompt_id, graph, extra, list(outputs)],
        "outputs": outputs,
        "status": {"status_str": "success", "completed": True, "messages": messages},
        "meta": {
            n: {"node_id": n, "display_node": n, "parent_node": None, "real_node_id": n}
            for n in outputs
        },
    }
    await event("executing", {"node": None, "prompt_id": prompt_id})


def _failure(
    server: FakeComfyUI, graph: dict[str, Any], node_id: str, class_type: str
) -> tuple[str, str] | None:
    """The exception a node raises here, if any: the injected one, or LoadImage's on a
    file Pillow cannot read (ComfyUI's LoadImage opens the upload with PIL)."""
    if server.fail_at == class_type:
        return "Exception", server.fail_message
    if class_type == "LoadImage":
        name = str(graph[node_id]["inputs"].get("image", ""))
        try:
            with Image.open(io.BytesIO(server.inputs.get(name, b""))) as image:
                image.load()
        except (OSError, ValueError):
            path = f"/ComfyUI/input/{name}"
            return "PIL.UnidentifiedImageError", f"cannot identify image file '{path}'"
    return None


def _state(
    prompt_id: str, node_id: str, value: float, maximum: float, state: str
) -> dict[str, Any]:
    return {
        "value": value,
        "max": maximum,
        "state": state,
        "node_id": node_id,
        "prompt_id": prompt_id,
        "display_node_id": node_id,
        "parent_node_id": None,
        "real_node_id": node_id,
    }


def _save(
    server: FakeComfyUI, graph: dict[str, Any], node_id: str, seed: int, extra: dict[str, Any]
) -> list[dict[str, Any]]:
    prefix = str(graph[node_id]["inputs"].get("filename_prefix", "ComfyUI"))
    folder, _, stem = prefix.rpartition("/")
    server.counter += 1
    name = f"{stem}_{server.counter:05}_.png"
    text = {"prompt": json.dumps(graph)}
    for key, value in (extra.get("extra_pnginfo") or {}).items():
        text[key] = json.dumps(value)
    if server.photos is not None:
        png = server.photos.png_for_graph(graph, text, server.inputs, server.image_size)
    else:
        png = png_for(seed, server.image_size, text)
    server.outputs[f"{folder}/{name}"] = png
    return [{"filename": name, "subfolder": folder, "type": "output"}]


async def _fail(
    server: FakeComfyUI,
    event: Any,
    messages: list[list[Any]],
    number: int,
    prompt_id: str,
    graph: dict[str, Any],
    extra: dict[str, Any],
    node_id: str,
    class_type: str,
    failure: tuple[str, str],
) -> None:
    kind, message = failure
    data = {
        "prompt_id": prompt_id,
        "node_id": node_id,
        "node_type": class_type,
        "executed": [],
        "exception_message": message,
        "exception_type": kind,
        "traceback": [
            "Traceback (most recent call last):\n",
            f"{kind}: {message}\n",
        ],
        "current_inputs": {},
        "current_outputs": {},
        "timestamp": _ms(),
    }
    await event("execution_error", data, keep=True)
    _finish_error(server, messages, number, prompt_id, graph, extra)
    await server._broadcast_status()
    await event("executing", {"node": None, "prompt_id": prompt_id})


async def _interrupted(
    server: FakeComfyUI,
    event: Any,
    messages: list[list[Any]],
    number: int,
    prompt_id: str,
    graph: dict[str, Any],
    extra: dict[str, Any],
    node_id: str,
    class_type: str,
) -> None:
    server._interrupt = None
    data = {
        "prompt_id": prompt_id,
        "node_id": node_id,
        "node_type": class_type,
        "executed": [],
        "timestamp": _ms(),
    }
    await event("execution_interrupted", data, keep=True)
    _finish_error(server, messages, number, prompt_id, graph, extra)
    await event("executing", {"node": None, "prompt_id": prompt_id})


def _finish_error(
    server: FakeComfyUI,
    messages: list[list[Any]],
    number: int,
    prompt_id: str,
    graph: dict[str, Any],
    extra: dict[str, Any],
) -> None:
    server.history[prompt_id] = {
        "prompt": [number, prompt_id, graph, extra, []],
        "outputs": {},
        "status": {"status_str": "error", "completed": False, "messages": messages},
        "meta": {},
    }
