"""Routing of /ws frames to prompts: text events, binary previews with and without metadata."""

from __future__ import annotations

import asyncio
import json
import struct

from charstudio.backends import EventStream


def stream() -> tuple[EventStream, list[int]]:
    statuses: list[int] = []
    return EventStream("ws://unused", on_status=statuses.append, open_timeout_s=1), statuses


def test_text_events_go_to_their_prompt_and_status_to_the_callback() -> None:
    async def go() -> None:
        events, statuses = stream()
        mine, other = events.subscribe("p1"), events.subscribe("p2")
        events._route_text(
            json.dumps(
                {"type": "status", "data": {"status": {"exec_info": {"queue_remaining": 3}}}}
            )
        )
        events._route_text(json.dumps({"type": "execution_start", "data": {"prompt_id": "p1"}}))
        events._route_text(
            json.dumps({"type": "executing", "data": {"node": None, "prompt_id": "p2"}})
        )
        events._route_text("not json")
        assert statuses == [3]
        assert (mine.get_nowait().type, mine.qsize()) == ("execution_start", 0)
        assert other.get_nowait().data == {"node": None, "prompt_id": "p2"}

    asyncio.run(go())


def test_binary_frames() -> None:
    async def go() -> None:
        events, _ = stream()
        queue = events.subscribe("p1")
        events._route_text(json.dumps({"type": "execution_start", "data": {"prompt_id": "p1"}}))
        queue.get_nowait()
        # PREVIEW_IMAGE (1), PNG (2): belongs to the prompt that is executing.
        events._route_binary(struct.pack(">II", 1, 2) + b"\x89PNG...")
        preview = queue.get_nowait()
        assert (preview.type, preview.data, preview.image) == (
            "preview",
            {"image_type": "png"},
            b"\x89PNG...",
        )
        # PREVIEW_IMAGE_WITH_METADATA (4): the prompt is named in the JSON.
        meta = json.dumps({"node_id": "8", "prompt_id": "p1", "image_type": "image/jpeg"}).encode()
        events._route_binary(struct.pack(">II", 4, len(meta)) + meta + b"JPEGDATA")
        with_meta = queue.get_nowait()
        assert with_meta.data["node_id"] == "8" and with_meta.image == b"JPEGDATA"
        # TEXT (3): node id and text.
        events._route_binary(struct.pack(">II", 3, 1) + b"8" + b"hello")
        assert queue.get_nowait().data == {"node": "8", "text": "hello"}
        # After the prompt ends, unnamed previews belong to nobody.
        events._route_text(
            json.dumps({"type": "executing", "data": {"node": None, "prompt_id": "p1"}})
        )
        queue.get_nowait()
        events._route_binary(struct.pack(">II", 1, 1) + b"jpeg")
        assert queue.empty()

    asyncio.run(go())


def test_connect_fails_quietly_so_the_client_polls() -> None:
    async def go() -> bool:
        events = EventStream(
            "ws://127.0.0.1:9/ws?clientId=x", on_status=lambda _: None, open_timeout_s=1
        )
        return await events.connect()

    assert asyncio.run(go()) is False
