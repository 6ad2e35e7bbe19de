"""charstudio errors as HTTP answers: the one mapping both the API and the studio use.

Every :class:`~charstudio.errors.CharstudioError` class carries its HTTP status
(``errors.py`` draws the tree); :func:`http_error` reads it, with the class name as the
error's type and the message (the problem and its fix) as the detail. The API answers it as
JSON (:mod:`charstudio.api.errors`), the studio as its error page
(:mod:`charstudio.web.errors`), and the body-size cap (:mod:`charstudio.http.limits`) as
JSON before any route runs. A request FastAPI cannot validate is answered by
:func:`validation_body`: FastAPI's 422 body, made JSON-safe (a ``NaN`` or ``Infinity`` the
client sent is echoed as a string, since strict JSON has no such numbers, and a body that
is not UTF-8 is echoed with its bad bytes replaced).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from fastapi.encoders import jsonable_encoder

from charstudio.errors import CharstudioError

__all__ = ["HttpError", "http_error", "validation_body"]


@dataclass(frozen=True)
class HttpError:
    """What an HTTP surface answers for one error."""

    status: int
    type: str
    detail: str

    def body(self) -> dict[str, str]:
        """The JSON body: ``{"detail": message, "type": class name}``."""
        return {"detail": self.detail, "type": self.type}


def http_error(exc: CharstudioError) -> HttpError:
    """The status, type and message of ``exc`` as an HTTP surface shows them."""
    return HttpError(status=exc.http_status, type=type(exc).__name__, detail=str(exc))


def validation_body(errors: Sequence[Any]) -> dict[str, Any]:
    """FastAPI's 422 body ``{"detail": [...]}`` for ``errors``, with non-finite floats as
    strings and bytes that are not UTF-8 (a raw body sent without a JSON content type) decoded
    with replacement, so that it always serialises (``json.dumps(..., allow_nan=False)``)."""
    encoded = jsonable_encoder(errors, custom_encoder={bytes: _text})
    return {"detail": _finite(encoded)}


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace")


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # 'nan', 'inf', '-inf'
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_finite(item) for item in value]
    return value
