"""``/studio/login`` and ``/studio/logout``: the session cookie (see :mod:`charstudio.web.auth`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from starlette.responses import RedirectResponse, Response

from charstudio.web.auth import COOKIE, SESSION_S, check_password, new_session, safe_next
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
    if not check_password(token, password):
        error = "Enter the API token." if not password else "Wrong password: use the API token."
        return render(request, "login.html", status=401, next=safe_next(next), error=error)
    response = RedirectResponse(safe_next(next), status_code=303)
    response.set_cookie(
        COOKIE,
        new_session(token),
        max_age=SESSION_S,
        path="/",
        secure=True,
        httponly=True,
        samesite="strict",
    )
    return response


@router.post("/studio/logout")
def logout() -> Response:
    response = RedirectResponse("/studio/login", status_code=303)
    response.delete_cookie(COOKIE, path="/", secure=True, httponly=True, samesite="strict")
    return response
