"""``/studio``: the library, every character as a card; create one by dropping images."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from charstudio.http import QueueDep, ServicesDep, receive_upload
from charstudio.web.auth import require_session
from charstudio.web.errors import StudioRoute
from charstudio.web.render import render
from charstudio.web.views import library_cards

router = APIRouter(route_class=StudioRoute, dependencies=[Depends(require_session)])


@router.get("/studio")
def library(request: Request, services: ServicesDep, queue: QueueDep) -> Response:
    cards = library_cards(services, queue)
    return render(request, "library.html", nav="library", cards=cards)


@router.post("/studio/characters")
async def create_character(request: Request, services: ServicesDep) -> Response:
    """Multipart ``name`` + ``files`` (the drop zone or the form); nothing is stored unless
    every file is an image (the library checks them all before copying any)."""
    settings = services.settings
    async with receive_upload(
        request, home=settings.home, max_files=settings.api_max_files
    ) as form:
        result = await run_in_threadpool(
            services.library.create,
            form.fields.get("name", "").strip(),
            form.files,
            trigger_word=form.fields.get("trigger_word") or None,
        )
    return RedirectResponse(f"/studio/characters/{quote(result.character)}", status_code=303)
