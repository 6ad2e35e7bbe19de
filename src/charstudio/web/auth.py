"""The studio's session: a login form whose password is the API token, and a signed cookie.

The cookie holds ``<expiry>.<signature>``, where the signature is an HMAC-SHA256 of the
expiry under a key derived from the API token. Nothing else is stored server-side, so a
restarted server still accepts it, and changing the token logs everyone out. The cookie is
``Secure`` (browsers still send it to ``http://localhost`` and ``127.0.0.1``), ``HttpOnly``
(page scripts cannot read it) and ``SameSite=Strict`` (another site cannot make a logged-in
browser post a form here, which is the studio's defence against cross-site requests).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Annotated

from fastapi import Depends, Request

from charstudio.errors import LoginRequired

__all__ = [
    "COOKIE",
    "SESSION_S",
    "LoginRequired",
    "SessionDep",
    "check_password",
    "new_session",
    "require_session",
    "safe_next",
]

COOKIE = "charstudio_session"
SESSION_S = 7 * 24 * 3600


def _key(token: str) -> bytes:
    return hmac.new(token.encode(), b"charstudio web session v1", hashlib.sha256).digest()


def _sign(token: str, expires: int) -> str:
    return hmac.new(_key(token), str(expires).encode(), hashlib.sha256).hexdigest()


def new_session(token: str, *, now: float | None = None) -> str:
    """A cookie value valid for :data:`SESSION_S` seconds."""
    expires = int(now if now is not None else time.time()) + SESSION_S
    return f"{expires}.{_sign(token, expires)}"


def session_valid(token: str, value: str | None, *, now: float | None = None) -> bool:
    """Whether ``value`` was signed with ``token`` and has not expired."""
    if not value or "." not in value:
        return False
    expires_text, signature = value.split(".", 1)
    if not expires_text.isdigit():
        return False
    if not hmac.compare_digest(signature.encode(), _sign(token, int(expires_text)).encode()):
        return False
    return int(expires_text) > (now if now is not None else time.time())


def check_password(token: str, password: str) -> bool:
    """The password is the API token; compared in constant time."""
    return hmac.compare_digest(password.strip().encode(), token.encode())


def safe_next(target: str | None) -> str:
    """Where to go after logging in: a studio path only, never another site."""
    if target and target.startswith("/studio") and not target.startswith("//"):
        return target
    return "/studio"


def require_session(request: Request) -> None:
    """Every studio page but the login form needs a valid session cookie.

    Raises:
        LoginRequired: no cookie, a forged or expired one.
    """
    token: str = request.app.state.token
    value = request.cookies.get(COOKIE)
    if session_valid(token, value):
        return
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    reason = "your session expired or is not valid" if value else "log in to use the studio"
    raise LoginRequired(reason, next_url=target, expired=bool(value))


SessionDep = Annotated[None, Depends(require_session)]
