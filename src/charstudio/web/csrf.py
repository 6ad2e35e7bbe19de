"""Cross-site request checks for every state-changing studio request (issue 15).

SameSite=Strict cookies do not stop another port of the same host: to a browser,
``http://127.0.0.1:8188`` (ComfyUI, whose custom nodes serve arbitrary pages) is the same
site as the studio on ``:8420``. So :func:`check_post`, which :class:`~charstudio.web.
errors.StudioRoute` runs before every POST (and any other unsafe method), asks for both:

1. an ``Origin`` header, or failing that a ``Referer``, of exactly this server's scheme,
   host and port (a browser always sends ``Origin`` on a POST; a request with neither
   comes from a non-browser client and is left to the token);
2. the session's CSRF token (:func:`charstudio.web.auth.csrf_token`), in the form field
   :data:`CSRF_FIELD` (every POST form renders it with ``{{ csrf_input() }}``) or the
   header :data:`CSRF_HEADER` (``studio.js`` sends it on its ``fetch`` POSTs, read from
   ``<meta name="csrf-token">``). The login form is the one exception: it has no session
   yet, so only the origin is checked there.

A refusal is :class:`~charstudio.errors.Forbidden` (403), shown as the error page, and
nothing has changed.
"""

from __future__ import annotations

import hmac
from typing import Any
from urllib.parse import urlsplit

from fastapi import Request
from jinja2 import pass_context
from markupsafe import Markup, escape

from charstudio.errors import Forbidden
from charstudio.http import parse_form
from charstudio.web.auth import Session, csrf_token, current_session

__all__ = ["CSRF_FIELD", "CSRF_HEADER", "SAFE_METHODS", "check_post", "csrf_input", "csrf_value"]

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_DEFAULT_PORTS = {"http": 80, "https": 443}
_NO_TOKEN = (
    "this form did not come from a Character Studio page of this session (its CSRF "
    "token is missing or wrong); reload the page and send it again"
)


def _origin(url: str) -> tuple[str, str, int] | None:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    return scheme, parts.hostname.lower(), port or _DEFAULT_PORTS[scheme]


def check_origin(request: Request) -> None:
    """Refuse a request whose ``Origin`` (or ``Referer``) is not this server.

    Raises:
        Forbidden: another scheme, host or port, or an opaque ``null`` origin.
    """
    sent = request.headers.get("origin") or request.headers.get("referer")
    if sent is None:
        return
    own = _origin(str(request.base_url))
    if own is None or _origin(sent) != own:
        where = f"{own[0]}://{own[1]}:{own[2]}" if own else str(request.base_url)
        shown = sent[:200].split("?")[0]
        raise Forbidden(
            f"refused a request sent from {shown!r}: studio forms are accepted only from "
            f"pages of {where}; open the studio there and send the form again"
        )


async def check_post(request: Request) -> None:
    """The origin, then the session's CSRF token, of a state-changing request.

    Raises:
        Forbidden: another origin, or no or a wrong CSRF token.
        LoginRequired: no valid session (the login form aside).
        PayloadTooLarge, UsageError: a form body that cannot be parsed.
    """
    check_origin(request)
    if request.url.path == "/studio/login":
        return
    session = current_session(request)
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and _is_form(request):
        settings = request.app.state.services.settings
        form = await parse_form(request, home=settings.home, max_files=settings.api_max_files)
        field = form.get(CSRF_FIELD)
        sent = field if isinstance(field, str) else None
    expected = csrf_value(request, session)
    if not sent or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise Forbidden(_NO_TOKEN)


def _is_form(request: Request) -> bool:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    return kind in {"application/x-www-form-urlencoded", "multipart/form-data"}


def csrf_value(request: Request, session: Session) -> str:
    token: str = request.app.state.token
    return csrf_token(token, session)


@pass_context
def csrf_input(context: Any) -> Markup:
    """Jinja global: the hidden CSRF field for a POST form (empty without a session)."""
    value = _page_value(context)
    if not value:
        return Markup("")
    return Markup(f'<input type="hidden" name="{CSRF_FIELD}" value="{escape(value)}">')


@pass_context
def csrf_meta(context: Any) -> str:
    """Jinja global: the CSRF token for ``<meta name="csrf-token">`` (empty without one)."""
    return _page_value(context)


def _page_value(context: Any) -> str:
    request = context.get("request")
    session = getattr(getattr(request, "state", None), "session", None)
    if request is None or not isinstance(session, Session):
        return ""
    return csrf_value(request, session)
