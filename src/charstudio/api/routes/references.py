"""``/api/v1/characters/{name}/references``: upload, list, download, delete."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request, Response, status
from fastapi.responses import FileResponse
from starlette.concurrency import run_in_threadpool

from charstudio.api.routes.characters import FILES_BODY
from charstudio.api.schemas import Page
from charstudio.errors import NotFound
from charstudio.http import Limit, Offset, ServicesDep, receive_upload
from charstudio.library import ImportResult
from charstudio.library.types import ReferenceInfo

router = APIRouter(prefix="/characters/{name}/references", tags=["references"])


@router.post("", status_code=status.HTTP_201_CREATED, openapi_extra=FILES_BODY)
async def upload_references(name: str, request: Request, services: ServicesDep) -> ImportResult:
    """Add uploaded images (multipart ``files``); duplicates are reported, not added."""
    settings = services.settings
    await run_in_threadpool(services.library.get_name, name)  # 404 before reading the body
    async with receive_upload(
        request, home=settings.home, max_files=settings.api_max_files
    ) as form:
        return await run_in_threadpool(services.library.import_images, name, form.files)


@router.get("")
def list_references(
    name: str, services: ServicesDep, limit: Limit = 50, offset: Offset = 0
) -> Page[ReferenceInfo]:
    refs = services.library.show(name).references
    return Page(items=refs[offset : offset + limit], total=len(refs), limit=limit, offset=offset)


@router.get("/{sha256}", response_class=FileResponse)
def download_reference(name: str, sha256: str, request: Request, services: ServicesDep) -> Response:
    """The stored original; ``ETag`` is its SHA-256, so ``If-None-Match`` gives 304."""
    ref = _find(services, name, sha256)
    etag = f'"{ref.sha256}"'
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers={"ETag": etag})
    return FileResponse(
        Path(ref.stored_path),
        media_type=f"image/{ref.format.lower()}",
        headers={"ETag": etag, "Cache-Control": "private, max-age=31536000, immutable"},
    )


@router.delete("/{sha256}")
def delete_reference(name: str, sha256: str, services: ServicesDep) -> ReferenceInfo:
    """Delete one reference image and its stored copy."""
    return services.library.remove_reference(name, sha256)


def _find(services: ServicesDep, name: str, sha256: str) -> ReferenceInfo:
    for ref in services.library.show(name).references:
        if ref.sha256 == sha256:
            return ref
    raise NotFound(f"{name!r} has no reference image {sha256!r}")
