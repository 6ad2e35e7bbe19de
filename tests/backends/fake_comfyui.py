"""A ComfyUI stand-in that speaks the protocol of the recorded ComfyUI 0.3.64.

It answers from tests/data/comfyui/ (the real ``/object_info``), validates like
``validate_prompt`` where the tests need it (unknown node → 400 ``invalid_prompt``, model
not in a combo → ``value_not_in_list``, numbers out of range), runs one prompt at a time
and sends the WebSocket messages in the order trace_ipadapter_run.json shows: ``status``,
``execution_start``, ``execution_cached``, ``progress_state``, ``executing``,
``progress`` (with binary preview frames), ``executed``, ``execution_success``,
``status``, then — after the history is written — ``executing`` with ``node: null``.

Faults to simulate, set as attributes (read while running):
``slow_s`` (delay every HTTP answer), ``object_info_delay_s`` (delay only ``/object_info``,
as a loaded machine does), ``html`` (answer every request with an HTML page),
``websocket`` (``False``: ``/ws`` is 404, clients must poll), ``missing_packs`` (drop a
node pack from ``/object_info`` and execution), ``models`` (files per ``models/`` folder),
``fail_at`` (class type whose execution raises ``fail_message``), ``die_at`` (class type at
which the server dies: call :meth:`FakeComfyUI.stop`/``restart``), ``step_s`` (seconds
per sampler step), ``history_delay_s`` (delay between ``execution_success`` and the
history write: the race of Comfy-Org/ComfyUI#11540), ``hold_until`` (a predicate: nothing
runs until it is true, so a test decides how long prompts stay queued, by what happened
rather than by time).

Images are flat colours by seed (:func:`png_for`, ``image_size`` pixels square) unless
``photos`` is a :class:`~tests.backends.photo_outputs.PhotoScenario`: then each SaveImage
writes the real photograph it chooses for the graph's KSampler seed and LoRA/IP-Adapter
strength, at the EmptyLatentImage's size, so the real face models can judge the output.
"""

from __future__ import annotations

import asyncio
import copy
import io
import json
import socket
import struct
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, web
from PIL import Image, PngImagePlugin

from tests.backends.photo_outputs import PhotoScenario

DATA = Path(__file__).resolve().parent.parent / "data" / "comfyui"
_OBJECT_INFO: dict[str, Any] = json.loads((DATA / "object_info.json").read_text())
# models/ folder -> (class_type, input) whose combo lists it (folder_paths.py).
_MODEL_COMBOS = {
    "checkpoints": [("CheckpointLoaderSimple", "ckpt_name")],
    "loras": [("LoraLoader", "lora_name"), ("LoraLoaderModelOnly", "lora_name")],
    "clip_vision": [("CLIPVisionLoader", "clip_name")],
    "ipadapter": [("IPAdapterModelLoader", "ipadapter_file")],
    "controlnet": [("ControlNetLoader", "control_net_name")],
}
PACK_MODULES = {
    "ipadapter_plus": "custom_nodes.ComfyUI_IPAdapter_plus",
    "controlnet_aux": "custom_nodes.comfyui_controlnet_aux",
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class FakeComfyUI:
    """One fake server on a loopback port, run in its own thread and event loop."""

    def __init__(self, port: int | None = None, *, photos: PhotoScenario | None = None) -> None:
        self.port = port or free_port()
        self.photos = photos  # None: flat colours (png_for)
        self.url = f"http://127.0.0.1:{self.port}"
        self.slow_s = 0.0
        self.object_info_delay_s = 0.0  # a loaded machine building and sending /object_info
        self.html = False
        self.websocket = True
        self.missing_packs: set[str] = set()
        self.models: dict[str, list[str]] = {
            "checkpoints": ["rand_sd15.safetensors"],
            "loras": ["yuki_v1.safetensors"],
            "clip_vision": ["CLIP-ViT-H-14-laion2B-s32B-b79K.safetensors"],
            "ipadapter": ["ip-adapter-plus-face_sd15.safetensors"],
            "controlnet": ["control_v11p_sd15_openpose_fp16.safetensors"],
        }
        self.fail_at: str | None = None
        self.fail_message = "ClipVision model not found."
        self.die_at: str | None = None
        self.on_die: Callable[[], None] | None = None
        self.step_s = 0.0
        self.history_delay_s = 0.0
        self.hold_until: Callable[[], bool] | None = None  # checked every 10 ms
        self.image_size = 64
        self.prompts_received: list[dict[str, Any]] = []
        self.requests: Counter[str] = Counter()  # "GET /queue" -> how many
        self.outputs: dict[str, bytes] = {}  # survives restarts, like files on disk
        self._object_info_cache: tuple[str, dict[str, Any]] | None = None
        self.sent: dict[str, list[Any]] = {}  # client id -> frames sent, in order
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._reset_state()

    # -- life cycle -------------------------------------------------------------------
    def start(self) -> FakeComfyUI:
        ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(ready,), daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("fake ComfyUI did not start")
        return self

    def stop(self) -> None:
        """Stop answering at once, like a killed process (sockets closed, queue lost)."""
        if self._loop is None or self._thread is None:
            return
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop = self._thread = None

    def restart(self, down_s: float = 0.0) -> None:
        """Stop, forget the queue and history (as ComfyUI does), start on the same port."""
        self.stop()
        time.sleep(down_s)
        self._reset_state()
        self.start()

    def _reset_state(self) -> None:
        self.inputs: dict[str, bytes] = {}
        self.history: dict[str, Any] = {}
        self.pending: list[tuple[int, str, dict[str, Any], dict[str, Any]]] = []
        self.running: str | None = None
        self.number = 0
        self.counter = 0
        self._interrupt: str | None = None
        self._cache: set[str] = set()
        self._sockets: dict[str, web.WebSocketResponse] = {}

    def _serve(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        app = web.Application(middlewares=[self._faults], client_max_size=64 * 2**20)
        for prefix in ("", "/api"):
            app.router.add_get(prefix + "/ws", self._ws)
            app.router.add_get(prefix + "/prompt", self._get_prompt)
            app.router.add_post(prefix + "/prompt", self._post_prompt)
            app.router.add_get(prefix + "/object_info", self._object_info)
            app.router.add_get(prefix + "/models/{folder}", self._models)
            app.router.add_get(prefix + "/history/{prompt_id}", self._history)
            app.router.add_get(prefix + "/queue", self._get_queue)
            app.router.add_post(prefix + "/queue", self._post_queue)
            app.router.add_post(prefix + "/interrupt", self._post_interrupt)
            app.router.add_get(prefix + "/view", self._view)
            app.router.add_post(prefix + "/upload/image", self._upload)
            app.router.add_get(prefix + "/system_stats", self._system_stats)
        self._runner = web.AppRunner(app, handle_signals=False)
        loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True)
        loop.run_until_complete(site.start())
        self._wake = asyncio.Event()
        self._worker = loop.create_task(self._work())
        ready.set()
        loop.run_forever()
        loop.close()

    async def _shutdown(self) -> None:
        self._worker.cancel()
        for ws in list(self._sockets.values()):
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    # -- HTTP -------------------------------------------------------------------------
    @web.middleware
    async def _faults(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.requests[f"{request.method} {request.path}"] += 1
        if self.slow_s:
            await asyncio.sleep(self.slow_s)
        if self.object_info_delay_s and request.path.endswith("/object_info"):
            await asyncio.sleep(self.object_info_delay_s)
        if self.html:
            page = "<!DOCTYPE html><html><body><h1>Sign in</h1></body></html>"
            return web.Response(text=page, content_type="text/html")
        response: web.StreamResponse = await handler(request)
        return response

    def object_info(self) -> dict[str, Any]:
        """``/object_info`` as this server has it (cached until the faults change)."""
        key = json.dumps([sorted(self.missing_packs), self.models], sort_keys=True)
        if self._object_info_cache is None or self._object_info_cache[0] != key:
            self._object_info_cache = (key, self._build_object_info())
        return self._object_info_cache[1]

    def _build_object_info(self) -> dict[str, Any]:
        info = {}
        dropped = {PACK_MODULES[p] for p in self.missing_packs}
        for name, node in _OBJECT_INFO.items():
            if any(str(node.get("python_module", "")).startswith(m) for m in dropped):
                continue
            info[name] = node
        info = copy.deepcopy(info)
        for folder, combos in _MODEL_COMBOS.items():
            for class_type, input_name in combos:
                if class_type in info:
                    spec = info[class_type]["input"]["required"][input_name]
                    spec[0] = list(self.models.get(folder, []))
        return info

    async def _object_info(self, request: web.Request) -> web.Response:
        return web.json_response(self.object_info())

    async def _models(self, request: web.Request) -> web.Response:
        folder = request.match_info["folder"]
        if folder not in self.models:
            return web.Response(status=404)
        return web.json_response(self.models[folder])

    async def _get_prompt(self, request: web.Request) -> web.Response:
        return web.json_response({"exec_info": {"queue_remaining": self._remaining()}})

    async def _system_stats(self, request: web.Request) -> web.Response:
        return web.json_response(
            {"system": {"comfyui_version": "0.3.64", "os": "posix"}, "devices": []}
        )

    async def _post_prompt(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.prompts_received.append(body)
        if "prompt" not in body:
            error = _error("no_prompt", "No prompt provided", "No prompt provided")
            return web.json_response({"error": error, "node_errors": {}}, status=400)
        graph = body["prompt"]
        refused = self._validate(graph)
        if refused is not None:
            return web.json_response(refused, status=400)
        prompt_id = str(body.get("prompt_id") or uuid.uuid4())
        self.number += 1
        extra = dict(body.get("extra_data") or {})
        if "client_id" in body:
            extra["client_id"] = body["client_id"]
        self.pending.append((self.number, prompt_id, graph, extra))
        self._wake.set()
        await self._broadcast_status()
        return web.json_response({"prompt_id": prompt_id, "number": self.number, "node_errors": {}})

    def _validate(self, graph: dict[str, Any]) -> dict[str, Any] | None:
        info = self.object_info()
        for node_id, node in graph.items():
            if node.get("class_type") not in info:
                message = f"Cannot execute because node {node.get('class_type')} does not exist."
                error = _error("invalid_prompt", message, f"Node ID '#{node_id}'")
                return {"error": error, "node_errors": {}}
        node_errors: dict[str, Any] = {}
        outputs = [n for n, node in graph.items() if info[node["class_type"]]["output_node"]]
        for node_id, node in graph.items():
            spec = info[node["class_type"]]["input"]
            declared = {**spec.get("required", {}), **spec.get("optional", {})}
            for name, value in node.get("inputs", {}).items():
                problem = _check_input(node["class_type"], name, value, declared.get(name), self)
                if problem is not None:
                    entry = node_errors.setdefault(
                        node_id,
                        {
                            "errors": [],
                            "dependent_outputs": outputs,
                            "class_type": node["class_type"],
                        },
                    )
                    entry["errors"].append(problem)
        if not node_errors:
            return None
        error = _error("prompt_outputs_failed_validation", "Prompt outputs failed validation", "")
        return {"error": error, "node_errors": node_errors}

    async def _history(self, request: web.Request) -> web.Response:
        prompt_id = request.match_info["prompt_id"]
        entry = self.history.get(prompt_id)
        return web.json_response({prompt_id: entry} if entry is not None else {})

    async def _get_queue(self, request: web.Request) -> web.Response:
        running = [[0, self.running, {}, {}, []]] if self.running else []
        pending = [[n, pid, g, e, []] for n, pid, g, e in self.pending]
        return web.json_response({"queue_running": running, "queue_pending": pending})

    async def _post_queue(self, request: web.Request) -> web.Response:
        body = await request.json()
        drop = set(body.get("delete", []))
        self.pending = [item for item in self.pending if item[1] not in drop]
        if body.get("clear"):
            self.pending = []
        return web.Response(status=200)

    async def _post_interrupt(self, request: web.Request) -> web.Response:
        body = await request.json() if request.can_read_body else {}
        target = body.get("prompt_id")
        if self.running is not None and target in (None, self.running):
            self._interrupt = self.running
        return web.Response(status=200)

    async def _upload(self, request: web.Request) -> web.Response:
        form = await request.post()
        image = form.get("image")
        if not isinstance(image, web.FileField):
            return web.Response(status=400)
        self.inputs[image.filename] = image.file.read()
        return web.json_response({"name": image.filename, "subfolder": "", "type": "input"})

    async def _view(self, request: web.Request) -> web.Response:
        key = f"{request.query.get('subfolder', '')}/{request.query.get('filename', '')}"
        data = self.outputs.get(key)
        if data is None:
            return web.Response(status=404)
        return web.Response(body=data, content_type="image/png")

    # -- WebSocket --------------------------------------------------------------------
    async def _ws(self, request: web.Request) -> web.StreamResponse:
        if not self.websocket:
            return web.Response(status=404, text="404: Not Found")
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        sid = request.query.get("clientId") or uuid.uuid4().hex
        self._sockets[sid] = ws
        status = {"status": {"exec_info": {"queue_remaining": self._remaining()}}, "sid": sid}
        await self._send(sid, "status", status)
        async for message in ws:
            if message.type == WSMsgType.ERROR:
                break
        self._sockets.pop(sid, None)
        return ws

    async def _send(self, sid: str | None, kind: str, data: dict[str, Any]) -> None:
        targets = [sid] if sid is not None else list(self._sockets)
        for target in targets:
            ws = self._sockets.get(target)
            frame = {"type": kind, "data": data}
            self.sent.setdefault(target, []).append(frame)
            if ws is not None and not ws.closed:
                await ws.send_str(json.dumps(frame))

    async def _send_bytes(self, sid: str | None, frame: bytes) -> None:
        ws = self._sockets.get(sid) if sid else None
        if sid is not None:
            self.sent.setdefault(sid, []).append(frame)
        if ws is not None and not ws.closed:
            await ws.send_bytes(frame)

    async def _broadcast_status(self) -> None:
        status = {"status": {"exec_info": {"queue_remaining": self._remaining()}}}
        for sid in list(self._sockets):
            await self._send(sid, "status", status)

    def _remaining(self) -> int:
        return len(self.pending) + (1 if self.running else 0)

    # -- execution --------------------------------------------------------------------
    async def _work(self) -> None:
        while True:
            if not self.pending:
                self._wake.clear()
                await self._wake.wait()
                continue
            if self.hold_until is not None and not self.hold_until():
                await asyncio.sleep(0.01)
                continue
            number, prompt_id, graph, extra = self.pending.pop(0)
            self.running = prompt_id
            try:
                await self._execute(number, prompt_id, graph, extra)
            finally:
                self.running = None

    async def _execute(
        self, number: int, prompt_id: str, graph: dict[str, Any], extra: dict[str, Any]
    ) -> None:
        from tests.backends.fake_execution import execute

        await execute(self, number, prompt_id, graph, extra)


def _error(
    kind: str, message: str, details: str, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {"type": kind, "message": message, "details": details, "extra_info": extra or {}}


def _check_input(
    class_type: str, name: str, value: Any, spec: Any, server: FakeComfyUI
) -> dict[str, Any] | None:
    if spec is None or isinstance(value, list):
        return None
    head = spec[0]
    config = spec[1] if len(spec) > 1 else {}
    extra = {"input_name": name, "input_config": spec, "received_value": value}
    if class_type == "LoadImage" and name == "image":
        if value not in server.inputs:
            return _error(
                "custom_validation_failed",
                "Custom validation failed for node",
                f"image - Invalid image file: {value}",
                extra,
            )
        return None
    if isinstance(head, list):
        if value not in head:
            listed = str(head) if len(head) <= 20 else f"(list of length {len(head)})"
            return _error(
                "value_not_in_list",
                "Value not in list",
                f"{name}: '{value}' not in {listed}",
                extra,
            )
        return None
    if head in ("INT", "FLOAT") and isinstance(value, int | float):
        if "min" in config and value < config["min"]:
            message = f"Value {value} smaller than min of {config['min']}"
            return _error("value_smaller_than_min", message, name, extra)
        if "max" in config and value > config["max"]:
            message = f"Value {value} bigger than max of {config['max']}"
            return _error("value_bigger_than_max", message, name, extra)
    return None


def png_for(seed: int, size: int, text: dict[str, str]) -> bytes:
    """A small PNG whose colour depends on the seed, with ComfyUI's text chunks."""
    colour = (seed % 251, (seed // 251) % 251, (seed // 63001) % 251)
    info = PngImagePlugin.PngInfo()
    for key, value in text.items():
        info.add_text(key, value)
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), colour).save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


def preview_frame(png: bytes) -> bytes:
    """A binary PREVIEW_IMAGE frame: event 1, image type 2 (PNG), the bytes."""
    return struct.pack(">II", 1, 2) + png


def main() -> None:
    """Run one fake server in this process: ``python -m tests.backends.fake_comfyui PORT``."""
    import sys

    server = FakeComfyUI(int(sys.argv[1])).start()
    print(server.url, flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
