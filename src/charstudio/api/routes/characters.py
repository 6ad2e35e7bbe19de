"""``/api/v1/characters``: create (with images), list, show with profile, update, delete."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, status
from starlette.concurrency import run_in_threadpool

from charstudio.api.schemas import Page
from charstudio.http import (
    CharacterUpdate,
    Limit,
    Offset,
    ServicesDep,
    read_now,
    receive_upload,
)
from charstudio.library import (
    CharacterConsistencyProfile,
    CharacterDetail,
    CharacterSummary,
    ImportResult,
    RemoveResult,
)

router = APIRouter(prefix="/characters", tags=["characters"])

_FILES = {"type": "array", "items": {"type": "string", "format": "binary"}}


def multipart_body(required: list[str], **properties: object) -> dict[str, Any]:
    """OpenAPI for a multipart form (the routes parse it themselves, with limits)."""
    return {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {"type": "object", "required": required, "properties": properties}
                }
            },
        }
    }


_UPLOAD_BODY = multipart_body(
    ["name", "files"],
    name={"type": "string"},
    trigger_word={"type": "string"},
    description={"type": "string"},
    files=_FILES,
)
FILES_BODY = multipart_body(["files"], files=_FILES)


@router.get("")
async def list_characters(
    services: ServicesDep, limit: Limit = 50, offset: Offset = 0
) -> Page[CharacterSummary]:
    """Every character with its method and counts."""
    page = await read_now(services, services.library.page, limit=limit, offset=offset)
    return Page[CharacterSummary](items=page.items, total=page.total, limit=limit, offset=offset)


@router.post("", status_code=status.HTTP_201_CREATED, openapi_extra=_UPLOAD_BODY)
async def create_character(request: Request, services: ServicesDep) -> ImportResult:
    """Create a character from uploaded reference images (multipart: ``name``, ``files``)."""
    settings = services.settings
    async with receive_upload(
        request, home=settings.home, max_files=settings.api_max_files
    ) as form:
        return await run_in_threadpool(
            services.library.create,
            form.fields.get("name", ""),
            form.files,
            trigger_word=form.fields.get("trigger_word") or None,
            description=form.fields.get("description", ""),
        )


@router.get("/{name}")
def show_character(name: str, services: ServicesDep) -> CharacterDetail:
    """A character with its consistency profile and references."""
    return services.library.show(name)


@router.patch("/{name}")
def update_character(
    name: str, body: CharacterUpdate, services: ServicesDep
) -> CharacterConsistencyProfile:
    """Change generation overrides (null keeps), reset some, or edit text fields."""
    return services.library.update(
        name,
        overrides=body.overrides(),
        reset=body.reset,
        trigger_word=body.trigger_word,
        description=body.description,
    )


@router.delete("/{name}")
def delete_character(
    name: str,
    services: ServicesDep,
    purge: Annotated[bool, Query(description="Also delete its files.")] = False,
) -> RemoveResult:
    """Delete a character's records; files are kept unless ``purge``."""
    return services.library.remove(name, purge=purge)
