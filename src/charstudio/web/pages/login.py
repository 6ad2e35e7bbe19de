"""``/studio/login`` and ``/studio/logout``: the session cookie (see :mod:`charstudio.web.auth`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from starlette.responses import RedirectResponse, Response

from charstudio.errors import InvalidParameter
from charstudio.http import check_token_strength
from charstudio.web.auth import (
    COOKIE,
    COOKIE_PATH,
    SESSION_S,
    check_password,
    new_session,
    read_session,
    revoked_sessions,
    safe_next,
)
from charstudio.web.errors import StudioRoute
from charstudio.web.render import render

router = APIRouter(route_class=StudioRoute)


@router.get("/studio/login")
def login_form(request: Request, next: str = "/studio", expired: bool = False) -> Response:
    error = "Your session expired or is not valid; log in again." if expired else None
    return render(request, "login.html", next=safe_next(next), error=error)


@router.post("/studio/login")
def login(
    request: Request,
    password: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/studio",
) -> Response:
    token: str = request.app.state.token
    try:
        check_token_strength(token)
    except InvalidParameter as exc:  # an empty token would make the empty password work
        return render(request, "login.html", status=503, next=safe_next(next), error=str(exc))
    if not check_password(token, password):
        error = "Enter the API token." if not password else "Wrong password: use the API token."
        return render(request, "login.html", status=401, next=safe_next(next), error=error)
    response = RedirectResponse(safe_next(next), status_code=303)
    response.set_cookie(
        COOKIE,
        new_session(token),
        max_age=SESSION_S,
        path=COOKIE_PATH,
        secure=True,
        httponly=True,
        samesite="strict",
    )
    return response


@router.post("/studio/logout")
def logout(request: Request) -> Response:
    """Revoke the session server-side (a copied cookie stops working) and drop the cookie."""
    session = read_session(request.app.state.token, request.cookies.get(COOKIE))
    if session is not None:
        revoked_sessions(request).revoke(session.id, expires=session.expires)
    response = RedirectResponse("/studio/login", status_code=303)
    response.delete_cookie(COOKIE, path=COOKIE_PATH, secure=True, httponly=True, samesite="strict")
    return response
