"""Request and response bodies of the API that are not the services' own typed results."""

from __future__ import annotations

from typing import Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from charstudio.library.profile import Method, Overrides

__all__ = [
    "CaptionEdit",
    "CharacterUpdate",
    "DatasetRequest",
    "GenerateBody",
    "LegacyGenerateResponse",
    "Page",
    "ReferenceChoice",
]

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """One page of a listing."""

    items: list[T]
    total: int
    limit: int
    offset: int


class CharacterUpdate(Overrides):
    """Overrides of the generation defaults (null leaves a value as it is), resets, text."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    reset: list[str] = Field(default_factory=list, description="Overrides to drop.")
    trigger_word: str | None = None
    description: str | None = Field(default=None, max_length=2000)


class ReferenceChoice(BaseModel):
    model_config = ConfigDict(extra="forbid")

    image: str = Field(description="Original file name or SHA-256 (prefix) of a reference.")


class DatasetRequest(BaseModel):
    """``dataset prepare`` settings; see DatasetConfig for ranges (checked by the job)."""

    model_config = ConfigDict(extra="forbid")

    resolution: int = 768
    bucket: bool = False
    kohya: bool = False
    repeats: int = 10
    class_word: str = "person"
    tags: list[str] = Field(default_factory=list)
    description: str = ""
    max_upscale: float = 1.25
    blur_threshold: float = 40.0


class CaptionEdit(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str | None = Field(description="The caption, trigger word first; null drops the edit.")


class GenerateBody(BaseModel):
    """A generation, as JSON: the same fields as ``charstudio generate``."""

    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(min_length=1, max_length=2000)
    variation: Literal["outfit", "background", "pose"] | None = None
    lora_strength: float | None = Field(default=None, ge=0.0, le=2.0)
    ipadapter_strength: float | None = Field(default=None, ge=0.0, le=2.0)
    seed: int | None = Field(
        default=None, ge=0, le=2**64 - 1, description="First seed; null draws random seeds."
    )
    count: int = Field(default=1, ge=1, le=64)
    backend: str = "comfyui"


class LegacyGenerateResponse(BaseModel):
    """The original design's answer, with ``prompt_id`` being charstudio's job id."""

    success: bool
    prompt_id: str
    method: Method
    consistency_expected: str
