"""The client of one ComfyUI server: upload, check models, queue, follow, download.

Protocol facts (docs/reference/comfyui.md, checked against a recorded ComfyUI 0.3.64):

1. ``POST /upload/image`` (multipart ``image``, ``overwrite``) answers ``{"name",
   "subfolder", "type"}``; LoadImage takes ``subfolder/name``.
2. ``GET /object_info`` lists every node with its combos: the model files the server
   has. A graph is validated against it before it is queued, so a missing model is
   reported with the folder it belongs in instead of failing mid-run.
3. ``POST /prompt`` with our ``client_id`` and our own ``prompt_id`` (so the events can
   be routed before the answer arrives): 200 ``{"prompt_id", "number", "node_errors"}``,
   or 400 ``{"error", "node_errors"}``.
4. Events arrive on ``/ws`` (see :mod:`charstudio.backends.comfyui_events`). The prompt
   is done at ``executing`` with ``node: null``: ``execution_success`` comes *before*
   ComfyUI writes the history, so ``/history/<id>`` may still be ``{}`` then
   (Comfy-Org/ComfyUI#11540). Without a socket, ``/history/<id>`` is polled.
5. ``GET /view?filename&subfolder&type`` returns each image's PNG.

Every failure becomes a :mod:`charstudio.errors` exception naming the server and the fix.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import mimetypes
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from charstudio.backends.comfyui_events import Event, EventStream
from charstudio.backends.comfyui_follow import follow, output_images
from charstudio.backends.types import CancelToken, upload_name
from charstudio.errors import ComfyUIUnavailable, GenerationCancelled, GenerationFailed, ServerLost
from charstudio.workflows import Catalog, rejection_from_response
from charstudio.workflows.types import Graph

__all__ = ["ClientOptions", "ComfyUIClient", "EventSink", "PromptOutcome", "upload_name"]

EventSink = Callable[[Event], None]


@dataclass(frozen=True, slots=True)
class ClientOptions:
    """Timeouts of one client.

    Attributes:
        request_timeout_s: Longest wait for one HTTP answer.
        job_timeout_s: Longest wait for a queued prompt to finish.
        lost_after_s: How long a server may stop answering mid-job before it is lost.
        poll_interval_s: Pause between ``/history`` polls without a socket.
        use_websocket: Follow events on ``/ws`` (else poll only).
    """

    request_timeout_s: float = 30.0
    job_timeout_s: float = 1800.0
    lost_after_s: float = 30.0
    poll_interval_s: float = 0.25
    use_websocket: bool = True


@dataclass(frozen=True, slots=True)
class PromptOutcome:
    """A finished prompt: its output images and what happened on the way."""

    prompt_id: str
    images: list[bytes]
    cached_nodes: tuple[str, ...]
    previews: int
    followed_by: str  # "websocket" or "polling"


class ComfyUIClient:
    """One ComfyUI server, spoken to with httpx (HTTP) and websockets (``/ws``).

    Args:
        url: ``http://host:port``.
        options: Timeouts.
        transport: An httpx transport (tests pass a mock; default: the network).
    """

    def __init__(
        self,
        url: str,
        *,
        options: ClientOptions | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.options = options or ClientOptions()
        self.client_id = f"charstudio-{uuid.uuid4().hex}"
        timeout = self.options.request_timeout_s
        self._http = httpx.AsyncClient(
            base_url=self.url,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            transport=transport,
        )
        ws_base = "wss" + self.url[5:] if self.url.startswith("https") else "ws" + self.url[4:]
        self.queue_remaining: int | None = None
        self.events = EventStream(
            f"{ws_base}/ws?clientId={self.client_id}",
            on_status=self._set_queue,
            open_timeout_s=min(timeout, 10.0),
        )
        self._catalog: Catalog | None = None
        self._model_lists: dict[str, list[str]] = {}
        self._uploads: dict[str, asyncio.Future[str]] = {}
        self._queue_read: asyncio.Future[set[str]] | None = None
        self._queue_read_at = 0.0

    async def aclose(self) -> None:
        await self.events.close()
        await self._http.aclose()

    # -- reading the server --------------------------------------------------------------
    async def probe(self) -> int:
        """Check the server answers as ComfyUI; returns its queue length (``GET /prompt``)."""
        body = await self._get_json("/prompt")
        remaining = (
            body.get("exec_info", {}).get("queue_remaining") if isinstance(body, dict) else None
        )
        if not isinstance(remaining, int):
            raise self._not_comfyui("/prompt", 200, "JSON without exec_info.queue_remaining")
        self.queue_remaining = remaining
        return remaining

    async def catalog(self, *, refresh: bool = False) -> Catalog:
        """The server's nodes and model files (``GET /object_info``), cached."""
        if self._catalog is None or refresh:
            body = await self._get_json("/object_info")
            self._catalog = Catalog.from_object_info(body, source=self.url)
        return self._catalog

    async def models(self, folder: str, *, refresh: bool = False) -> list[str]:
        """Files in ``models/<folder>`` (``GET /models/<folder>``), cached; ``[]`` if no folder."""
        if folder in self._model_lists and not refresh:
            return self._model_lists[folder]
        response = await self._send("GET", f"/models/{folder}")
        if response.status_code == 404:
            return []
        body = self._decode(response, f"/models/{folder}")
        files = [str(name) for name in body] if isinstance(body, list) else []
        self._model_lists[folder] = files
        return files

    async def history(self, prompt_id: str) -> dict[str, Any] | None:
        """The prompt's history entry, or ``None`` while it is not finished."""
        body = await self._get_json(f"/history/{prompt_id}")
        entry = body.get(prompt_id) if isinstance(body, dict) else None
        return entry if isinstance(entry, dict) else None

    async def queued_ids(self, *, max_age_s: float = 0.0) -> tuple[set[str], float]:
        """Prompt ids running or pending (``GET /queue``), and when that read began.

        Args:
            max_age_s: Reuse a read begun at most this long ago. ``/queue`` lists every
                pending graph, so many polling jobs share one read instead of each
                fetching it; a caller compares the returned start time with its own
                (a read begun before its prompt was queued cannot list it).
        """
        loop = asyncio.get_running_loop()
        reusable = self._queue_read is not None and (
            not self._queue_read.done() or loop.time() - self._queue_read_at <= max_age_s
        )
        if not reusable or self._queue_read is None:
            self._queue_read = asyncio.ensure_future(self._read_queue())
            self._queue_read_at = loop.time()
        started = self._queue_read_at
        return await asyncio.shield(self._queue_read), started

    async def _read_queue(self) -> set[str]:
        body = await self._get_json("/queue")
        ids: set[str] = set()
        for key in ("queue_running", "queue_pending"):
            for item in body.get(key, []) if isinstance(body, dict) else []:
                if isinstance(item, list) and len(item) > 1:
                    ids.add(str(item[1]))
        return ids

    # -- writing ----------------------------------------------------------------------
    async def upload_image(self, path: Path) -> str:
        """Upload ``path`` to ComfyUI's input folder; returns the name LoadImage takes."""
        name = upload_name(path)
        # One upload per image and server, shared by the jobs that start together; once
        # it is done the next job uploads again (the client lives as long as the process,
        # and the server's input folder may have been emptied since).
        pending = self._uploads.get(name)
        if pending is None:
            pending = asyncio.ensure_future(self._upload(path, name))
            self._uploads[name] = pending
            pending.add_done_callback(lambda done: self._forget_upload(name, done))
        return await asyncio.shield(pending)

    def _forget_upload(self, name: str, done: asyncio.Future[str]) -> None:
        if self._uploads.get(name) is done:
            del self._uploads[name]

    async def _upload(self, path: Path, name: str) -> str:
        mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        response = await self._send(
            "POST",
            "/upload/image",
            files={"image": (name, path.read_bytes(), mime)},
            data={"overwrite": "true", "type": "input"},
        )
        body = self._decode(response, "/upload/image")
        if response.status_code != 200 or not isinstance(body, dict) or "name" not in body:
            raise self._not_comfyui("/upload/image", response.status_code, repr(body)[:200])
        folder = str(body.get("subfolder") or "")
        return f"{folder}/{body['name']}" if folder else str(body["name"])

    async def submit(self, graph: Graph, *, extra_pnginfo: Mapping[str, Any] | None = None) -> str:
        """Queue ``graph`` under our client id; returns the prompt id.

        Raises:
            WorkflowRejected: ComfyUI refused it (``ModelMissing`` for a missing file).
        """
        prompt_id = str(uuid.uuid4())
        if self.options.use_websocket:
            await self.events.connect()
        # Subscribe first: the socket may deliver the prompt's first events before the
        # POST's answer reaches us.
        self.events.subscribe(prompt_id)
        body: dict[str, Any] = {
            "prompt": graph,
            "client_id": self.client_id,
            "prompt_id": prompt_id,
        }
        if extra_pnginfo:
            body["extra_data"] = {"extra_pnginfo": dict(extra_pnginfo)}
        try:
            response = await self._send("POST", "/prompt", json=body)
            answer = self._decode(response, "/prompt")
            if response.status_code == 400:
                raise rejection_from_response(answer, server=self.url, graph=graph)
            if response.status_code != 200 or not isinstance(answer, dict):
                raise self._not_comfyui("/prompt", response.status_code, repr(answer)[:200])
        except asyncio.CancelledError:
            self.events.unsubscribe(prompt_id)
            # The POST may have reached the server: take the prompt off it by our own id.
            await self._cancel_quietly(prompt_id)
            raise
        except BaseException:
            self.events.unsubscribe(prompt_id)
            raise
        return str(answer.get("prompt_id", prompt_id))

    async def cancel(self, prompt_id: str) -> None:
        """Stop a prompt: drop it from the queue if pending, interrupt it if running."""
        await self._send("POST", "/queue", json={"delete": [prompt_id]})
        await self._send("POST", "/interrupt", json={"prompt_id": prompt_id})

    async def view(self, image: Mapping[str, Any]) -> bytes:
        """Download one output image (``GET /view``)."""
        params = {
            "filename": str(image.get("filename", "")),
            "subfolder": str(image.get("subfolder", "")),
            "type": str(image.get("type", "output")),
        }
        response = await self._send("GET", "/view", params=params)
        if response.status_code != 200:
            raise GenerationFailed(
                f"ComfyUI on {self.url} has no output file {params['filename']!r} "
                f"(HTTP {response.status_code} from /view): it was deleted or the output "
                "folder changed; run the command again"
            )
        return response.content

    # -- following a prompt -------------------------------------------------------------
    async def wait(
        self,
        prompt_id: str,
        *,
        graph: Graph,
        on_event: EventSink | None = None,
        cancel: CancelToken | None = None,
    ) -> PromptOutcome:
        """Follow ``prompt_id`` to the end and download its images.

        Raises:
            GenerationFailed: a node failed (``execution_error``).
            GenerationCancelled: cancelled here or interrupted on the server.
            ServerLost: the server died or restarted before the prompt finished.
        """
        queue = self.events.subscribe(prompt_id)
        loop = asyncio.get_running_loop()

        def wake() -> None:
            # Called from whichever thread cancels: hand the event to the loop's thread.
            loop.call_soon_threadsafe(queue.put_nowait, Event("cancel"))

        unregister = cancel.on_cancel(wake) if cancel is not None else (lambda: None)
        deadline = loop.time() + self.options.job_timeout_s
        try:
            entry, cached, previews, mode = await follow(
                self, prompt_id, queue, graph, on_event, deadline
            )
        except (asyncio.CancelledError, GenerationCancelled):
            await self._cancel_quietly(prompt_id)
            raise
        except ServerLost:
            raise
        except ComfyUIUnavailable as exc:
            raise ServerLost(
                f"ComfyUI at {self.url} stopped answering while running prompt {prompt_id} "
                f"({exc}); the job is lost there"
            ) from exc
        finally:
            unregister()
            self.events.unsubscribe(prompt_id)
        images = [await self.view(ref) for ref in output_images(entry, graph)]
        if not images:
            raise GenerationFailed(
                f"prompt {prompt_id} finished on {self.url} without an image: the graph needs "
                "a SaveImage node fed by VAEDecode"
            )
        return PromptOutcome(prompt_id, images, cached, previews, mode)

    async def give_up(self, prompt_id: str) -> None:
        """Remove a prompt that ran out of time, and raise."""
        await self._cancel_quietly(prompt_id)
        raise GenerationFailed(
            f"prompt {prompt_id} did not finish within {self.options.job_timeout_s:g} s on "
            f"{self.url} (removed from its queue): the server is busy or stuck; raise "
            "CHARSTUDIO_COMFYUI_JOB_TIMEOUT_S or add servers to CHARSTUDIO_COMFYUI_URLS"
        )

    async def _cancel_quietly(self, prompt_id: str) -> None:
        # A server that is gone has lost the prompt anyway.
        with contextlib.suppress(ComfyUIUnavailable, asyncio.CancelledError):
            await asyncio.shield(self.cancel(prompt_id))

    # -- HTTP plumbing ------------------------------------------------------------------
    def _set_queue(self, remaining: int) -> None:
        self.queue_remaining = remaining

    async def _get_json(self, path: str) -> Any:
        response = await self._send("GET", path)
        body = self._decode(response, path)
        if response.status_code != 200:
            raise self._not_comfyui(path, response.status_code, repr(body)[:200])
        return body

    async def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return await self._http.request(method, path, **kwargs)
        except httpx.TimeoutException as exc:
            raise ComfyUIUnavailable(
                f"ComfyUI at {self.url} did not answer {method} {path} within "
                f"{self.options.request_timeout_s:g} s: it is overloaded or hung; check it, or "
                "raise CHARSTUDIO_COMFYUI_REQUEST_TIMEOUT_S"
            ) from exc
        except httpx.ConnectError as exc:
            raise ComfyUIUnavailable(
                f"cannot reach ComfyUI at {self.url} ({exc or 'connection refused'}): start it "
                "(python main.py --listen) or fix CHARSTUDIO_COMFYUI_URLS"
            ) from exc
        except httpx.HTTPError as exc:
            raise ComfyUIUnavailable(
                f"the connection to ComfyUI at {self.url} broke during {method} {path} "
                f"({exc.__class__.__name__}): check that the server is still running"
            ) from exc

    def _decode(self, response: httpx.Response, path: str) -> Any:
        kind = response.headers.get("content-type", "").split(";")[0].strip()
        if kind == "text/html":
            raise self._not_comfyui(path, response.status_code, "an HTML page")
        try:
            return response.json()
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise self._not_comfyui(
                path, response.status_code, f"{kind or 'an untyped body'}"
            ) from exc

    def _not_comfyui(self, path: str, status: int, what: str) -> ComfyUIUnavailable:
        return ComfyUIUnavailable(
            f"{self.url}{path} answered HTTP {status} with {what} instead of ComfyUI's JSON: "
            "check that the URL points at ComfyUI itself (not a proxy login page or another "
            "web app)"
        )
