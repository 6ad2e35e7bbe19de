"""charstudio errors as JSON responses, in one place.

The status, type and message come from the mapping both HTTP surfaces share
(:func:`charstudio.http.http_error`); this handler answers them as
``{"detail": message, "type": class name}``. Request validation stays FastAPI's 422, whose
body names each bad field (:func:`charstudio.http.validation_body`, which also answers a
``NaN`` in a JSON body instead of failing to encode it). No route catches exceptions itself.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from charstudio.errors import FULL_DISK_ERRNOS, CharstudioError, storage_error_from
from charstudio.http import http_error, validation_body

__all__ = ["install_error_handlers"]


async def _charstudio_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, CharstudioError)
    error = http_error(exc)
    return JSONResponse(status_code=error.status, content=error.body())


async def _invalid_request(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return JSONResponse(status_code=422, content=validation_body(exc.errors()))


async def _os_error(request: Request, exc: Exception) -> JSONResponse:
    """A full disk met outside the store's write helpers is still ``DiskFull`` (507)."""
    assert isinstance(exc, OSError)
    if exc.errno not in FULL_DISK_ERRNOS:
        raise exc  # a real bug: the server's 500
    return await _charstudio_error(request, storage_error_from(exc, exc.filename))


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(CharstudioError, _charstudio_error)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(OSError, _os_error)
