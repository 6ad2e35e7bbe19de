"""The REST API's part of the app: :func:`include_api` adds its routers and its error handler
to the app that :func:`charstudio.server.create_app` builds.

Routes live in :mod:`charstudio.api.routes`, one module per resource, each a thin call into
the services or the job layer; errors become JSON responses in :mod:`charstudio.api.errors`
only. Everything under ``/api/v1`` and the original ``/character/...`` endpoint needs the
bearer token.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, FastAPI

from charstudio.api.errors import install_error_handlers
from charstudio.api.paths import RelativePaths
from charstudio.api.routes import (
    characters,
    datasets,
    faces,
    generation,
    jobs,
    lab,
    references,
    training,
)
from charstudio.http import require_token

__all__ = ["include_api"]


def include_api(app: FastAPI) -> None:
    """Add ``/api/v1/...``, the original ``/character/...`` endpoint and the JSON error
    handler to ``app``, which must already hold ``state.services``, ``state.queue`` and
    ``state.token``. Bodies name files relative to the data root (:mod:`charstudio.api.paths`)."""
    install_error_handlers(app)
    app.add_middleware(RelativePaths, home=app.state.services.store.home)
    v1 = APIRouter(prefix="/api/v1", dependencies=[Depends(require_token)])
    for module in (characters, references, faces, datasets, training, lab, jobs):
        v1.include_router(module.router)
    app.include_router(v1)
    app.include_router(generation.router, dependencies=[Depends(require_token)])
