"""charstudio errors as studio pages, in one place.

Studio routes use :class:`StudioRoute`: every POST is first checked for a cross-site
origin and the session's CSRF token (:func:`charstudio.web.csrf.check_post`; a refusal is
the error page with 403); a missing or bad session becomes a redirect to the login
form; any :class:`~charstudio.errors.CharstudioError` becomes the error page with the
status and message of the mapping both surfaces share (:func:`charstudio.http.http_error`,
which the API answers as JSON), upload folders left out of the message; and a request
FastAPI cannot parse becomes the error page with status 422 naming the field. Page handlers
catch nothing themselves; the forms that show field errors validate with
:func:`field_errors` before calling a service.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import ValidationError
from starlette.responses import RedirectResponse, Response

from charstudio.errors import FULL_DISK_ERRNOS, CharstudioError, storage_error_from
from charstudio.http import http_error
from charstudio.web.auth import LoginRequired
from charstudio.web.csrf import SAFE_METHODS, check_post
from charstudio.web.render import render

__all__ = ["StudioRoute", "error_page", "field_errors"]


def error_page(request: Request, *, status: int, title: str, message: str) -> Response:
    back = request.headers.get("referer", "")
    own = str(request.base_url)
    return render(
        request,
        "error.html",
        status=status,
        title=title,
        message=message,
        back=back if back.startswith(own) else "/studio",
    )


# Where uploads wait (http/uploads.py) or pose images are kept: the user knows the file name.
_UPLOAD_DIR = re.compile(r"/\S*/(?:tmp/upload-[^/\s]+/\d{4}|uploads/poses/[0-9a-f]{32})/")
_TITLES = {
    400: "That did not work",
    403: "Refused",
    404: "Not found",
    409: "Not now",
    413: "Too large",
    507: "The disk is full",
}


class StudioRoute(APIRoute):
    """An ``APIRoute`` whose errors are pages (see the module docstring)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await _checked(request)
            finally:
                await request.close()  # the uploads of a form parsed by the CSRF check

        async def _checked(request: Request) -> Response:
            try:
                if request.method not in SAFE_METHODS:
                    await check_post(request)
                return await handler(request)
            except LoginRequired as exc:
                return RedirectResponse(exc.login_url, status_code=303)
            except (CharstudioError, OSError) as exc:
                if isinstance(exc, OSError):  # a full disk met outside the store's helpers
                    if exc.errno not in FULL_DISK_ERRNOS:
                        raise
                    exc = storage_error_from(exc, exc.filename)
                error = http_error(exc)
                title = _TITLES.get(error.status, "Something went wrong")
                message = _UPLOAD_DIR.sub("", error.detail)
                return error_page(request, status=error.status, title=title, message=message)
            except RequestValidationError as exc:
                fields = ", ".join(
                    f"{'.'.join(str(p) for p in e['loc'][1:])}: {e['msg']}" for e in exc.errors()
                )
                return error_page(
                    request, status=422, title="Check the form", message=fields or "bad request"
                )

        return route


def field_errors(exc: ValidationError) -> dict[str, str]:
    """Pydantic's errors as ``{field: message}`` to show beside each input; the template puts
    the field's label first ("IP-Adapter strength must be at most 2")."""
    errors: dict[str, str] = {}
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else "form"
        context = error.get("ctx") or {}
        kind = error["type"]
        if kind in _BOUNDS:
            words, key = _BOUNDS[kind]
            message = f"must be {words} {context.get(key)}"
        else:
            message = _WORDS.get(kind, error["msg"].removeprefix("Value error, "))
        errors.setdefault(field, message)
    return errors


_BOUNDS = {
    "less_than_equal": ("at most", "le"),
    "greater_than_equal": ("at least", "ge"),
    "greater_than": ("more than", "gt"),
    "less_than": ("less than", "lt"),
}
_WORDS = {
    "missing": "is required",
    "string_too_short": "must not be empty",
    "string_too_long": "is too long",
    "float_parsing": "must be a number",
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "literal_error": "is not one of the choices",
}
