"""Request and response bodies of the API alone (those the studio takes too are in
:mod:`charstudio.http.schemas`) that are not the services' own typed results."""

from __future__ import annotations

from typing import Generic, TypeVar

from pydantic import BaseModel

from charstudio.library.profile import Method

__all__ = ["LegacyGenerateResponse", "Page"]

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """One page of a listing."""

    items: list[T]
    total: int
    limit: int
    offset: int


class LegacyGenerateResponse(BaseModel):
    """The original design's answer, with ``prompt_id`` being charstudio's job id."""

    success: bool
    prompt_id: str
    method: Method
    consistency_expected: str
