"""The consistency lab's models: prompts, grid cells, scored images and their rates.

Everything here is measured by the QC stage (``charstudio.qc``) on images the normal
generation service made; the rates are shares of those images, never estimates.
"""

from __future__ import annotations

import math
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator

from charstudio.library.profile import Method
from charstudio.workflows import Variation

__all__ = [
    "Cell",
    "CellResult",
    "LabPrompt",
    "Rates",
    "ScoredImage",
    "rates_of",
]


class LabPrompt(BaseModel):
    """One prompt of the fixed set: a variation and its subject ("outfit: a red dress")."""

    model_config = ConfigDict(frozen=True)

    variation: Variation | None
    text: str = Field(min_length=1, max_length=500)

    def label(self) -> str:
        return f"{self.variation or 'plain'}: {self.text}"


class Cell(BaseModel):
    """One point of a grid: the strengths (``None``: the method does not use it)."""

    model_config = ConfigDict(frozen=True)

    lora_strength: float | None = None
    ipadapter_strength: float | None = None
    character_weight: float | None = None  # None: the profile's (not a tune axis)

    @field_validator("lora_strength", "ipadapter_strength", "character_weight")
    @classmethod
    def _finite(cls, value: float | None) -> float | None:
        if value is not None and not (math.isfinite(value) and 0.0 <= value <= 2.0):
            raise ValueError(f"a strength must be within 0-2, got {value}")
        return None if value is None else round(value, 4)

    @property
    def key(self) -> str:
        """A file-name-safe key: ``lora0.7_ipa0.55``."""
        parts = []
        if self.lora_strength is not None:
            parts.append(f"lora{self.lora_strength:g}")
        if self.ipadapter_strength is not None:
            parts.append(f"ipa{self.ipadapter_strength:g}")
        if self.character_weight is not None:
            parts.append(f"cw{self.character_weight:g}")
        return "_".join(parts) or "defaults"

    def label(self) -> str:
        parts = []
        if self.lora_strength is not None:
            parts.append(f"LoRA {self.lora_strength:g}")
        if self.ipadapter_strength is not None:
            parts.append(f"IP-Adapter {self.ipadapter_strength:g}")
        if self.character_weight is not None:
            parts.append(f"character weight {self.character_weight:g}")
        return ", ".join(parts) or "profile defaults"


class ScoredImage(BaseModel):
    """One generated image with what QC measured on it."""

    model_config = ConfigDict(frozen=True)

    path: str
    seed: int
    prompt: int  # index in the run's prompt list
    variation: Variation | None
    generation_id: int
    identity: float | None
    identity_passed: bool
    adherence: float | None
    adherence_passed: bool | None  # None: not checked
    passed: bool
    reasons: list[str] = Field(default_factory=list)


class Rates(BaseModel):
    """Rates over a set of scored images.

    Attributes:
        images: how many images.
        face_consistency: share whose identity check passed (an image without the face
            fails).
        prompt_adherence: share of adherence-checked images that passed; ``None`` when no
            adherence model was set.
        mean_similarity: mean identity similarity over the images where a face was compared.
    """

    model_config = ConfigDict(frozen=True)

    images: int
    face_consistency: float
    prompt_adherence: float | None
    mean_similarity: float | None


def rates_of(images: list[ScoredImage]) -> Rates:
    """The :class:`Rates` of ``images`` (all zero for none)."""
    if not images:
        return Rates(images=0, face_consistency=0.0, prompt_adherence=None, mean_similarity=None)
    checked = [i.adherence_passed for i in images if i.adherence_passed is not None]
    similar = [i.identity for i in images if i.identity is not None]
    return Rates(
        images=len(images),
        face_consistency=round(sum(i.identity_passed for i in images) / len(images), 4),
        prompt_adherence=round(sum(checked) / len(checked), 4) if checked else None,
        mean_similarity=round(sum(similar) / len(similar), 4) if similar else None,
    )


class CellResult(BaseModel):
    """A measured cell (or report row): its images and their rates, overall and per
    variation."""

    model_config = ConfigDict(frozen=True)

    cell: Cell
    method: Method
    lora_version: int | None
    images: list[ScoredImage]
    rates: Rates
    per_variation: dict[str, Rates]
    finished_at: datetime
