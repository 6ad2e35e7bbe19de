"""charstudio errors as HTTP responses, in one place.

Every :class:`~charstudio.errors.CharstudioError` carries its HTTP status (errors.py draws
the tree); this handler turns it into ``{"detail": message, "type": class name}``. Request
validation stays FastAPI's 422, whose body names each bad field. No route catches
exceptions itself.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from charstudio.errors import CharstudioError

__all__ = ["install_error_handlers"]


async def _charstudio_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, CharstudioError)
    return JSONResponse(
        status_code=exc.http_status,
        content={"detail": str(exc), "type": type(exc).__name__},
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(CharstudioError, _charstudio_error)
