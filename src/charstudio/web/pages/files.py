"""``/studio/files/<path>``: images under the data root, for the pages' ``<img>`` tags.

Only image files (by suffix) inside the data root are served, so the database and the
API token file never are; the path is resolved first, so ``..`` cannot leave the root. A
path no data-root file can have (a NUL, over :data:`MAX_PATH` characters, a component the
file system refuses) is a 404 before the file system sees it.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Depends
from starlette.responses import FileResponse, Response

from charstudio.errors import NotFound
from charstudio.http import ServicesDep
from charstudio.web.auth import require_session
from charstudio.web.errors import StudioRoute

router = APIRouter(route_class=StudioRoute, dependencies=[Depends(require_session)])

MAX_PATH = 1024  # longer than any path the store writes (names are <= 64 characters)
_IMAGES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp"}


@router.get("/studio/files/{path:path}")
def data_file(path: str, services: ServicesDep) -> Response:
    missing = NotFound(f"no image {path[:100]!r} in the data root")
    if "\x00" in path or len(path) > MAX_PATH:
        raise missing
    home = services.settings.home.resolve()
    try:
        target = (home / path).resolve()
        media = _IMAGES.get(target.suffix.lower())
        if media is None or not target.is_relative_to(home) or not target.is_file():
            raise missing
    except (OSError, ValueError) as exc:  # ENAMETOOLONG for one long component, and such
        raise missing from exc
    return FileResponse(Path(target), media_type=media, headers={"Cache-Control": "private"})
