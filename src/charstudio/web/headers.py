"""Security headers on every studio response (``/studio...`` and the ``/`` redirect).

* ``Content-Security-Policy``: scripts, styles, images, fetches and form targets from
  this server only, no inline scripts or style attributes (``studio.js`` applies the few
  computed positions, face boxes and range bars, from ``data-style``), no plugins, no
  ``<base>``, and no framing (``frame-ancestors 'none'``);
* ``X-Frame-Options: DENY``: no framing for browsers older than ``frame-ancestors``
  (clickjacking);
* ``X-Content-Type-Options: nosniff``: an uploaded file is never sniffed into HTML;
* ``Referrer-Policy: same-origin``: studio URLs (character names, job ids) are not sent
  to other sites.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["CSP", "SECURITY_HEADERS", "SecurityHeaders"]

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "object-src 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
_RAW = [(k.lower().encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]


class SecurityHeaders:
    """ASGI middleware: :data:`SECURITY_HEADERS` on responses to studio paths."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if not (path == "/" or path == "/studio" or path.startswith("/studio/")):
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {k.lower() for k, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in _RAW if k not in names]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, with_headers)
