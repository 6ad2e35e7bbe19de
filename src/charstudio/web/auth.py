"""The studio's session: a login form whose password is the API token, and a signed cookie.

The cookie holds ``<expiry>.<session id>.<signature>``: a random id per login, and an
HMAC-SHA256 of expiry and id under a key derived from the API token, so a restarted server
still accepts it and changing the token logs everyone out. Logging out revokes the id
server-side (:mod:`charstudio.web.revoked`), so a copy of the cookie taken before the
logout no longer works. The cookie is scoped to ``Path=/studio`` (the API and anything
else on the host never receive it), ``Secure`` (browsers still send it to
``http://localhost`` and ``127.0.0.1``), ``HttpOnly`` (page scripts cannot read it) and
``SameSite=Strict``.

SameSite does not stop another *port* of the same host (ComfyUI on :8188 serves pages of
its custom nodes): a browser treats every port of 127.0.0.1 as the same site. So every
state-changing studio request is also checked by :mod:`charstudio.web.csrf`: an
``Origin``/``Referer`` of this very server, and the session's CSRF token
(:func:`csrf_token`, an HMAC of the session id), sent as a hidden form field or a header.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from charstudio.errors import LoginRequired
from charstudio.web.revoked import RevokedSessions

__all__ = [
    "COOKIE",
    "COOKIE_PATH",
    "SESSION_S",
    "LoginRequired",
    "Session",
    "SessionDep",
    "check_password",
    "csrf_token",
    "current_session",
    "new_session",
    "read_session",
    "require_session",
    "revoked_sessions",
    "safe_next",
    "session_valid",
]

COOKIE = "charstudio_session"
COOKIE_PATH = "/studio"
SESSION_S = 7 * 24 * 3600


@dataclass(frozen=True)
class Session:
    """A valid session: its random id and when it expires (Unix seconds)."""

    id: str
    expires: int


def _key(token: str) -> bytes:
    return hmac.new(token.encode(), b"charstudio web session v2", hashlib.sha256).digest()


def _sign(token: str, message: str) -> str:
    return hmac.new(_key(token), message.encode(), hashlib.sha256).hexdigest()


def new_session(token: str, *, now: float | None = None) -> str:
    """A cookie value for a new session, valid for :data:`SESSION_S` seconds."""
    expires = int(now if now is not None else time.time()) + SESSION_S
    session_id = secrets.token_urlsafe(18)  # letters, digits, '-' and '_': never a '.'
    return f"{expires}.{session_id}.{_sign(token, f'{expires}.{session_id}')}"


def read_session(token: str, value: str | None, *, now: float | None = None) -> Session | None:
    """The session in cookie ``value`` if ``token`` signed it and it has not expired."""
    parts = (value or "").split(".")
    if len(parts) != 3 or not parts[0].isdigit() or not parts[1]:
        return None
    expires_text, session_id, signature = parts
    expected = _sign(token, f"{expires_text}.{session_id}")
    if not hmac.compare_digest(signature.encode(), expected.encode()):
        return None
    if int(expires_text) <= (now if now is not None else time.time()):
        return None
    return Session(id=session_id, expires=int(expires_text))


def session_valid(token: str, value: str | None, *, now: float | None = None) -> bool:
    """Whether ``value`` was signed with ``token`` and has not expired (revocation aside)."""
    return read_session(token, value, now=now) is not None


def csrf_token(token: str, session: Session) -> str:
    """The session's CSRF token: only a page this server rendered for the session has it."""
    return _sign(token, f"csrf {session.id}")


def check_password(token: str, password: str) -> bool:
    """The password is the API token; compared in constant time."""
    return hmac.compare_digest(password.strip().encode(), token.encode())


def safe_next(target: str | None) -> str:
    """Where to go after logging in: a studio path only, never another site."""
    if target and target.startswith("/studio") and not target.startswith("//"):
        return target
    return "/studio"


def revoked_sessions(request: Request) -> RevokedSessions:
    revoked = request.app.state.revoked_sessions
    assert isinstance(revoked, RevokedSessions)
    return revoked


def current_session(request: Request) -> Session:
    """The request's valid, unrevoked session (also kept as ``request.state.session``).

    Raises:
        LoginRequired: no cookie, a forged, expired or logged-out one.
    """
    token: str = request.app.state.token
    value = request.cookies.get(COOKIE)
    session = read_session(token, value)
    if session is not None and session.id not in revoked_sessions(request):
        request.state.session = session
        return session
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    reason = "your session expired or is not valid" if value else "log in to use the studio"
    raise LoginRequired(reason, next_url=target, expired=bool(value))


def require_session(request: Request) -> None:
    """Every studio page but the login form needs a valid session cookie.

    Raises:
        LoginRequired: no cookie, a forged, expired or logged-out one.
    """
    current_session(request)


SessionDep = Annotated[None, Depends(require_session)]
