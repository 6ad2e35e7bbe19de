"""Templates and the few filters pages share: one Jinja2 environment for the studio."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.templating import Jinja2Templates
from starlette.responses import Response

from charstudio.web.csrf import csrf_input, csrf_meta

__all__ = ["STATIC_DIR", "file_url", "render"]

_HERE = Path(__file__).parent
STATIC_DIR = _HERE / "static"
_templates = Jinja2Templates(directory=_HERE / "templates")


def file_url(home: Path, path: str | Path | None) -> str | None:
    """The studio URL of an image under the data root (``None`` for none or outside it)."""
    if not path:
        return None
    try:
        relative = Path(path).resolve().relative_to(home.resolve())
    except ValueError:
        return None
    return "/studio/files/" + quote(relative.as_posix())


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.0f} %"


_templates.env.filters["percent"] = _percent
_templates.env.filters["urlpart"] = lambda text: quote(str(text), safe="")
# Every POST form renders {{ csrf_input() }}; base.html puts csrf_meta() where studio.js
# reads it for its fetch POSTs (charstudio.web.csrf).
_templates.env.globals["csrf_input"] = csrf_input
_templates.env.globals["csrf_meta"] = csrf_meta


def render(request: Request, template: str, *, status: int = 200, **context: Any) -> Response:
    """A full page (or fragment) rendered with ``context``; ``home`` is always available."""
    context.setdefault("home", request.app.state.services.settings.home)
    return _templates.TemplateResponse(request, template, context, status_code=status)
