"""API bodies name files relative to the data root, never by the server's absolute path.

The services, the CLI (``--json``) and the studio keep absolute paths; only what the API
sends changes. :class:`RelativePaths` rewrites JSON and event-stream bodies of the API's
paths: ``<home>/character_data/...`` becomes ``character_data/...`` and the root alone
becomes ``.``. A client reads a file through the API's download routes, or joins the path
to the data root it knows.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["RelativePaths", "relative_paths"]

_API_PREFIXES = ("/api/", "/character/")
_REWRITTEN_TYPES = ("application/json", "text/event-stream")


def _pattern(home: Path) -> re.Pattern[bytes] | None:
    roots = {str(home.absolute()), str(home.resolve())} - {"/"}
    if not roots:
        return None  # a data root of "/" has nothing to strip
    # As JSON writes them (a quote or a backslash in the root is escaped).
    encoded = sorted({json.dumps(r, ensure_ascii=False)[1:-1].encode() for r in roots}, key=len)
    either = b"|".join(re.escape(e) for e in reversed(encoded))
    return re.compile(rb"(?:" + either + rb")(/+|(?![\w.\-]))")


def relative_paths(body: bytes, pattern: re.Pattern[bytes] | None) -> bytes:
    """``body`` with the data root's absolute paths made relative to it."""
    if pattern is None:
        return body
    return pattern.sub(lambda m: b"" if m.group(1) else b".", body)


class RelativePaths:
    """ASGI middleware: :func:`relative_paths` on JSON and event-stream API responses."""

    def __init__(self, app: ASGIApp, *, home: Path) -> None:
        self.app = app
        self.pattern = _pattern(home)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope.get("path", "").startswith(_API_PREFIXES):
            await self.app(scope, receive, send)
            return
        held: Message | None = None  # the start of a sized body, sent once the body is known
        parts: list[bytes] = []
        rewrite = False

        async def relative(message: Message) -> None:
            nonlocal held, rewrite
            if message["type"] == "http.response.start":
                headers = MutableHeaders(raw=list(message.get("headers", [])))
                rewrite = headers.get("content-type", "").startswith(_REWRITTEN_TYPES)
                if rewrite and "content-length" in headers:
                    held = message
                    return
                await send(message)
                return
            if message["type"] != "http.response.body" or not rewrite:
                await send(message)
                return
            body = relative_paths(message.get("body", b""), self.pattern)
            if held is None:  # streamed: each chunk on its own
                await send({**message, "body": body})
                return
            parts.append(body)
            if message.get("more_body", False):
                return
            whole = b"".join(parts)
            headers = MutableHeaders(raw=list(held.get("headers", [])))
            headers["content-length"] = str(len(whole))
            await send({**held, "headers": headers.raw})
            await send({"type": "http.response.body", "body": whole, "more_body": False})

        await self.app(scope, receive, relative)
