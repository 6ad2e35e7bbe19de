"""Typed results of the library service (what the CLI prints and the API returns)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from charstudio.library.profile import CharacterConsistencyProfile, Method

__all__ = [
    "CharacterDetail",
    "CharacterPage",
    "CharacterSummary",
    "DuplicateImage",
    "ImageLimits",
    "ImportResult",
    "ImportedImage",
    "ProgressCallback",
    "ReferenceInfo",
    "RemoveResult",
    "SkippedFile",
]

ProgressCallback = Callable[[int, int, str], None]
"""``progress(done, total, message)``, called as long work advances."""


class _Result(BaseModel):
    model_config = ConfigDict(frozen=True)


class ImageLimits(_Result):
    """Limits every imported image must meet (from the settings)."""

    max_pixels: int
    max_bytes: int
    min_side: int


class ImportedImage(_Result):
    sha256: str
    original_name: str
    source: str
    stored_path: str
    width: int
    height: int
    size_bytes: int
    format: str


class DuplicateImage(_Result):
    source: str
    sha256: str
    duplicate_of: str  # original name of the image already in the library or batch


class SkippedFile(_Result):
    source: str
    reason: str


class ImportResult(_Result):
    character: str
    created: bool
    added: list[ImportedImage]
    duplicates: list[DuplicateImage]
    skipped: list[SkippedFile]


class ReferenceInfo(_Result):
    id: int
    sha256: str
    original_name: str
    stored_path: str
    width: int
    height: int
    size_bytes: int
    format: str
    added_at: datetime
    # From the last `faces extract` (None/empty before it): ok | outlier | no_face | ...,
    # the face box (x0, y0, x1, y1) with similarity and outlier reason, and whether this
    # image is the IP-Adapter reference ("auto" or "user").
    face_status: str | None = None
    face_details: dict[str, Any] = {}
    ipadapter_reference: str | None = None
    caption_edit: str | None = None  # a user's caption, applied by the next dataset prepare


class CharacterSummary(_Result):
    name: str
    trigger_word: str
    reference_images: int
    method: Method
    has_lora: bool
    has_embedding: bool
    created_at: datetime


class CharacterPage(_Result):
    """Some characters, by name, and how many the library holds."""

    items: list[CharacterSummary]
    total: int


class CharacterDetail(_Result):
    name: str
    trigger_word: str
    description: str
    created_at: datetime
    updated_at: datetime
    profile: CharacterConsistencyProfile
    references: list[ReferenceInfo]


class RemoveResult(_Result):
    name: str
    purged: bool
    files_kept: list[str]
    files_removed: list[str]
