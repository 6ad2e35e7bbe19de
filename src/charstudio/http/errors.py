"""charstudio errors as HTTP answers: the one mapping both the API and the studio use.

Every :class:`~charstudio.errors.CharstudioError` class carries its HTTP status
(``errors.py`` draws the tree); :func:`http_error` reads it, with the class name as the
error's type and the message (the problem and its fix) as the detail. The API answers it as
JSON (:mod:`charstudio.api.errors`), the studio as its error page
(:mod:`charstudio.web.errors`), and the body-size cap (:mod:`charstudio.http.limits`) as
JSON before any route runs.
"""

from __future__ import annotations

from dataclasses import dataclass

from charstudio.errors import CharstudioError

__all__ = ["HttpError", "http_error"]


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
