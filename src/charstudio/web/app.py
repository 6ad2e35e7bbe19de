"""Mount the studio into the app: static files, the login form and the pages."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.responses import RedirectResponse

from charstudio.web.headers import SecurityHeaders
from charstudio.web.pages import (
    character,
    consistency,
    files,
    generate,
    jobs,
    library,
    login,
)
from charstudio.web.render import STATIC_DIR
from charstudio.web.revoked import REVOKED_FILE, RevokedSessions

__all__ = ["mount_web"]


def mount_web(app: FastAPI) -> None:
    """Add ``/studio`` (pages), ``/studio/static`` (CSS, JS) and ``/`` (-> ``/studio``).

    The app must already hold ``state.services``, ``state.queue`` and ``state.token``, as
    :func:`charstudio.server.create_app` sets them. Studio responses get the security
    headers (:mod:`charstudio.web.headers`); logged-out sessions are kept in
    ``<home>/studio_revoked_sessions.json`` (:mod:`charstudio.web.revoked`).
    """
    app.state.revoked_sessions = RevokedSessions(app.state.services.store.home / REVOKED_FILE)
    app.add_middleware(SecurityHeaders)
    app.mount("/studio/static", StaticFiles(directory=STATIC_DIR), name="studio-static")
    for module in (login, library, character, consistency, generate, jobs, files):
        app.include_router(module.router, include_in_schema=False)

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/studio", status_code=307)
