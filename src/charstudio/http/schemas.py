"""Request bodies that the API and the studio both take (the API as JSON, the studio from
its forms); each is checked here, at the door, before a service runs."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from charstudio.dataset import DEFAULTS, DatasetConfig
from charstudio.library.profile import Overrides

__all__ = ["CaptionEdit", "CharacterUpdate", "DatasetRequest", "ReferenceChoice", "TrainRequest"]


class CharacterUpdate(Overrides):
    """Overrides of the generation defaults (null leaves a value as it is), resets, text."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    reset: list[str] = Field(default_factory=list, description="Overrides to drop.")
    trigger_word: str | None = None
    description: str | None = Field(default=None, max_length=2000)

    def overrides(self) -> dict[str, Any]:
        """The generation overrides alone, as ``Library.update`` takes them."""
        return self.model_dump(exclude={"reset", "trigger_word", "description"})


class ReferenceChoice(BaseModel):
    model_config = ConfigDict(extra="forbid")

    image: str = Field(description="Original file name or SHA-256 (prefix) of a reference.")


class DatasetRequest(BaseModel):
    """``dataset prepare`` settings; see DatasetConfig for ranges (checked by :meth:`config`)."""

    model_config = ConfigDict(extra="forbid")

    resolution: int = DEFAULTS.resolution
    bucket: bool = DEFAULTS.bucket
    kohya: bool = DEFAULTS.kohya
    repeats: int = DEFAULTS.repeats
    class_word: str = DEFAULTS.class_word
    tags: list[str] = Field(default_factory=list)
    description: str = DEFAULTS.description
    max_upscale: float = DEFAULTS.max_upscale
    blur_threshold: float = DEFAULTS.blur_threshold

    def config(self) -> DatasetConfig:
        """The checked settings.

        Raises:
            InvalidParameter: a value out of its range, named with the range.
        """
        return DatasetConfig.parse(**self.model_dump())


class CaptionEdit(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str | None = Field(description="The caption, trigger word first; null drops the edit.")


class TrainRequest(BaseModel):
    """``charstudio train``: ``set`` takes ``section.key=value`` overrides of the defaults."""

    model_config = ConfigDict(extra="forbid")

    set: list[str] = Field(
        default_factory=list, examples=[["lora.rank=16", "training.train_steps=800"]]
    )
    resume: bool = Field(default=False, description="Finish the last interrupted run.")
