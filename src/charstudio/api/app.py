"""The FastAPI app: ``create_app(services)`` builds it once per process (``charstudio serve``).

Routes live in :mod:`charstudio.api.routes`, one module per resource, each a thin call into
the services; errors become responses in :mod:`charstudio.api.errors` only. Everything under
``/api/v1`` and the original ``/character/...`` endpoint needs the bearer token;
``/health`` does not; the web pages (:mod:`charstudio.web`, under ``/studio``) take the
same token through a login form and a session cookie. OpenAPI is at ``/openapi.json``, the
interactive docs at ``/docs``.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware

from charstudio import __version__
from charstudio.api.deps import require_token
from charstudio.api.errors import install_error_handlers
from charstudio.api.limits import BodyLimit
from charstudio.api.routes import (
    characters,
    datasets,
    faces,
    generation,
    jobs,
    references,
    training,
)
from charstudio.jobs import JobQueue
from charstudio.services import Services
from charstudio.web import mount_web

__all__ = ["create_app"]


def create_app(services: Services, *, queue: JobQueue | None = None) -> FastAPI:
    """The API over ``services``; jobs go to ``queue`` (default: one built from settings)."""
    settings = services.settings
    app = FastAPI(
        title="charstudio",
        version=__version__,
        description="Consistent characters: references, identity, training sets, LoRAs, "
        "generation on ComfyUI, jobs. Send `Authorization: Bearer <token>` (the token is in "
        "`<home>/api_token`).",
    )
    app.state.services = services
    app.state.queue = queue or JobQueue(services)
    app.state.token = settings.api_token or services.store.ensure_api_token()
    install_error_handlers(app)
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

    v1 = APIRouter(prefix="/api/v1", dependencies=[Depends(require_token)])
    for module in (characters, references, faces, datasets, training, jobs):
        v1.include_router(module.router)
    app.include_router(v1)
    app.include_router(generation.router, dependencies=[Depends(require_token)])
    mount_web(app)  # Character Studio at /studio, behind the same token (a session cookie)
    return app
