"""The one web app: ``create_app(services)`` builds it once per process (``charstudio serve``).

It holds what neither surface owns: the app's state (services, job queue, API token), the
request-body cap, CORS, ``/health``; then the REST API (:func:`charstudio.api.include_api`,
under ``/api/v1`` and the original ``/character/...`` endpoint, behind the bearer token) and
Character Studio (:func:`charstudio.web.mount_web`, under ``/studio``, behind the same token
through a login form and a session cookie). ``/health`` needs no token. OpenAPI is at
``/openapi.json``, the interactive docs at ``/docs``.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from charstudio import __version__
from charstudio.api import include_api
from charstudio.http import BodyLimit, UploadCleanup
from charstudio.jobs import JobQueue
from charstudio.services import Services
from charstudio.web import mount_web

__all__ = ["create_app"]


def create_app(services: Services, *, queue: JobQueue | None = None) -> FastAPI:
    """The API and the studio over ``services``; jobs go to ``queue`` (default: one built
    from settings)."""
    settings = services.settings
    app = FastAPI(
        # Routes with Form fields take no files: uploads go through http.receive_upload,
        # which streams them into the data root (Starlette would spool them in /tmp).
        form_limits={"max_files": 0},
        title="charstudio",
        version=__version__,
        description="Consistent characters: references, identity, training sets, LoRAs, "
        "generation on ComfyUI, jobs. Send `Authorization: Bearer <token>` (the token is in "
        "`<home>/api_token`).",
    )
    app.state.services = services
    app.state.queue = queue or JobQueue(services)
    app.state.token = settings.api_token or services.store.ensure_api_token()
    app.add_middleware(UploadCleanup)  # inside the cap: a body cut off there is cleaned too
    app.add_middleware(BodyLimit, max_bytes=settings.api_max_upload_bytes)
    if settings.api_cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.api_cors_origins,
            allow_methods=["*"],
            allow_headers=["Authorization", "Content-Type"],
        )

    @app.get("/health", tags=["health"])
    def health() -> dict[str, str]:
        """Liveness: no token needed, nothing about the library."""
        return {"status": "ok", "version": __version__}

    include_api(app)
    mount_web(app)  # Character Studio at /studio, behind the same token (a session cookie)
    return app
