"""ComfyUI's ``/ws`` event stream: one socket per server, events routed to each prompt.

ComfyUI sends a prompt's execution events only to the socket whose ``clientId`` equals
the prompt's ``client_id`` (server.py ``send_sync``), so the client opens one socket with
its own id *before* queueing anything, and a reader task routes every event to the
queue of the prompt it names. Frames (server.py, protocol.py ``BinaryEventTypes``):

* text ``{"type": ..., "data": {...}}``; ``status`` (queue length) has no prompt id;
* binary: a 4-byte big-endian event type, then for ``1`` (PREVIEW_IMAGE) a 4-byte image
  type (1 JPEG, 2 PNG) and the image; for ``4`` (PREVIEW_IMAGE_WITH_METADATA) a 4-byte
  JSON length, the JSON (with ``prompt_id``) and the image; for ``3`` (TEXT) a 4-byte
  node-id length, the node id and UTF-8 text. Type 1 and 3 frames name no prompt: they
  belong to the prompt that is executing.

When the socket cannot be opened or drops, every waiting prompt is told (``closed``)
and falls back to polling ``/history``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection

__all__ = ["PREVIEW_IMAGE", "PREVIEW_IMAGE_WITH_METADATA", "TEXT", "Event", "EventStream"]

PREVIEW_IMAGE = 1
TEXT = 3
PREVIEW_IMAGE_WITH_METADATA = 4


@dataclass(frozen=True, slots=True)
class Event:
    """One event for a prompt.

    Attributes:
        type: ComfyUI's event name (``executing``, ``progress`` ...), ``preview`` for a
            binary preview frame, ``text`` for a binary text frame, ``closed`` when the
            socket dropped, ``cancel`` when the user cancelled.
        data: The event's ``data`` object.
        image: Preview image bytes (``preview`` only).
    """

    type: str
    data: dict[str, Any] = field(default_factory=dict)
    image: bytes | None = None


CLOSED = Event("closed")


class EventStream:
    """The socket of one client id, and per-prompt queues of its events.

    Args:
        ws_url: ``ws://host:port/ws?clientId=<id>``.
        on_status: Called with ``queue_remaining`` from every ``status`` frame.
        open_timeout_s: How long to wait for the handshake.
    """

    def __init__(
        self, ws_url: str, *, on_status: Callable[[int], None], open_timeout_s: float
    ) -> None:
        self.ws_url = ws_url
        self._on_status = on_status
        self._open_timeout_s = open_timeout_s
        self._socket: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._queues: dict[str, asyncio.Queue[Event]] = {}
        self._executing: str | None = None
        self._connecting = asyncio.Lock()

    @property
    def connected(self) -> bool:
        return self._socket is not None and self._reader is not None and not self._reader.done()

    async def connect(self) -> bool:
        """Open the socket if it is not open; ``False`` if it cannot be (poll instead)."""
        # One lock: many jobs start at once, and each would otherwise open its own socket
        # with the same client id, splitting the events between them.
        async with self._connecting:
            if self.connected:
                return True
            try:
                self._socket = await websockets.connect(
                    self.ws_url, open_timeout=self._open_timeout_s, max_size=None
                )
            except (OSError, TimeoutError, websockets.WebSocketException):
                self._socket = None
                return False
            self._reader = asyncio.create_task(self._read(self._socket))
            return True

    def subscribe(self, prompt_id: str) -> asyncio.Queue[Event]:
        """The queue that receives ``prompt_id``'s events (create it before queueing)."""
        return self._queues.setdefault(prompt_id, asyncio.Queue())

    def unsubscribe(self, prompt_id: str) -> None:
        self._queues.pop(prompt_id, None)

    async def close(self) -> None:
        # The reader forgets the socket when it ends, so hold on to it to close it.
        socket = self._socket
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
        if socket is not None:
            with contextlib.suppress(Exception):
                await socket.close()
        self._socket = self._reader = None

    async def _read(self, socket: ClientConnection) -> None:
        try:
            async for frame in socket:
                if isinstance(frame, str):
                    self._route_text(frame)
                else:
                    self._route_binary(frame)
        except websockets.WebSocketException:
            pass
        finally:
            self._socket = None
            for queue in self._queues.values():
                queue.put_nowait(CLOSED)

    def _route_text(self, frame: str) -> None:
        try:
            message = json.loads(frame)
            kind, data = str(message["type"]), message.get("data") or {}
        except (ValueError, KeyError, TypeError):
            return  # not a ComfyUI event; ignored like the web UI does
        if not isinstance(data, dict):
            return
        if kind == "status":
            remaining = data.get("status", {}).get("exec_info", {}).get("queue_remaining")
            if isinstance(remaining, int):
                self._on_status(remaining)
            return
        prompt_id = data.get("prompt_id")
        if kind == "execution_start":
            self._executing = prompt_id
        elif kind == "executing" and data.get("node") is None:
            self._executing = None
        self._put(prompt_id, Event(kind, data))

    def _route_binary(self, frame: bytes) -> None:
        if len(frame) < 8:
            return
        (kind,) = struct.unpack(">I", frame[:4])
        if kind == PREVIEW_IMAGE:
            (image_type,) = struct.unpack(">I", frame[4:8])
            data = {"image_type": "jpeg" if image_type == 1 else "png"}
            self._put(self._executing, Event("preview", data, frame[8:]))
        elif kind == PREVIEW_IMAGE_WITH_METADATA:
            (length,) = struct.unpack(">I", frame[4:8])
            try:
                meta = json.loads(frame[8 : 8 + length])
            except ValueError:
                return
            if isinstance(meta, dict):
                self._put(meta.get("prompt_id"), Event("preview", meta, frame[8 + length :]))
        elif kind == TEXT:
            (length,) = struct.unpack(">I", frame[4:8])
            node = frame[8 : 8 + length].decode("utf-8", "replace")
            text = frame[8 + length :].decode("utf-8", "replace")
            self._put(self._executing, Event("text", {"node": node, "text": text}))

    def _put(self, prompt_id: Any, event: Event) -> None:
        queue = self._queues.get(prompt_id) if isinstance(prompt_id, str) else None
        if queue is not None:
            queue.put_nowait(event)
