"""Typed settings and results of training-set preparation."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from charstudio.errors import invalid_parameter_from

__all__ = [
    "DEFAULTS",
    "CropBox",
    "DatasetConfig",
    "Framing",
    "KeptImage",
    "PrepareResult",
    "RejectReason",
    "RejectedImage",
    "View",
]

View = Literal["front view", "three-quarter view", "profile view"]
Framing = Literal["close-up", "upper body", "full body"]
RejectReason = Literal[
    "corrupt",
    "too_small",
    "no_face",
    "several_faces",
    "face_too_small",
    "identity_outlier",
    "blurred",
    "near_duplicate",
]

MIN_IMAGES = 3  # below this, a LoRA learns the pictures, not the character
WARN_IMAGES = 10  # the usual advice is 10-20 images (docs/reference/lora-trainers.md, section 3.2)


class DatasetConfig(BaseModel):
    """How a training set is prepared; saved in ``config.json`` and hashed into its version."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    resolution: int = Field(default=768, ge=256, le=2048)
    bucket: bool = False
    kohya: bool = False  # also write kohya sd-scripts' folder layout and dataset.toml
    repeats: int = Field(default=10, ge=1, le=1000)
    class_word: str = Field(default="person", max_length=64)
    tags: tuple[str, ...] = ()
    description: str = Field(default="", max_length=500)
    caption_style: Literal["descriptive"] = "descriptive"
    # An image may be upscaled at most this much to reach the resolution; smaller ones are
    # rejected as too small (upscaled pixels teach the LoRA blur).
    max_upscale: float = Field(default=1.25, ge=1.0, le=4.0)
    # Variance of the Laplacian of the face, resized to 128 px grey (the face engine's
    # sharpness); below this an image is rejected as blurred. Measured on the test
    # portraits: sharp 144-866, Gaussian blur sigma 1: 19-212, sigma 2: 4-39.
    blur_threshold: float = Field(default=40.0, ge=0.0)
    # Perceptual-hash (64-bit pHash) Hamming distance at or below which two images are
    # near-duplicates; 0 = identical, re-encodes and small resizes measure 0-4.
    duplicate_distance: int = Field(default=6, ge=0, le=32)
    min_images: int = Field(default=MIN_IMAGES, ge=1)
    # An optional WD14-style ONNX tagger (dataset/tagger.py): its general tags at or above
    # the threshold join each caption after view and framing.
    tagger: str | None = None
    tagger_threshold: float = Field(default=0.35, gt=0.0, lt=1.0)

    @field_validator("resolution")
    @classmethod
    def _multiple_of_64(cls, value: int) -> int:
        if value % 64:
            raise ValueError(
                f"resolution {value} is not a multiple of 64; use e.g. "
                f"{value // 64 * 64 or 64} or {(value // 64 + 1) * 64}"
            )
        return value

    @field_validator("tags")
    @classmethod
    def _clean_tags(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for tag in value:
            if not tag.strip() or any(c in tag for c in "\n\r,"):
                raise ValueError(f"tag {tag!r} must be non-empty and hold no commas or newlines")
        return tuple(t.strip() for t in value)

    @classmethod
    def parse(cls, **values: object) -> DatasetConfig:
        """Validate, raising :class:`InvalidParameter` with each bad field named."""
        from pydantic import ValidationError

        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            raise invalid_parameter_from(exc, "invalid dataset setting") from exc

    def with_default_tagger(self, tagger: Path | None) -> DatasetConfig:
        """This config, using ``tagger`` (the ``tagger`` setting, ``CHARSTUDIO_TAGGER``) when
        it names none itself: every surface (CLI, API, studio) applies the setting so."""
        if self.tagger is not None or tagger is None:
            return self
        return self.model_copy(update={"tagger": str(tagger)})


# The defaults, written once: the CLI's options and the studio's form fields read them.
DEFAULTS = DatasetConfig()


class CropBox(BaseModel):
    """A crop in source-image pixels (after EXIF rotation), and the output size."""

    model_config = ConfigDict(frozen=True)

    left: int
    top: int
    right: int
    bottom: int
    out_width: int
    out_height: int

    @property
    def width(self) -> int:
        return self.right - self.left

    @property
    def height(self) -> int:
        return self.bottom - self.top


class KeptImage(BaseModel):
    model_config = ConfigDict(frozen=True)

    index: int
    file_name: str
    source_sha256: str
    source_name: str
    crop: CropBox
    view: View | None
    framing: Framing | None
    caption: str
    caption_edited: bool
    sharpness: float


class RejectedImage(BaseModel):
    model_config = ConfigDict(frozen=True)

    source_sha256: str
    source_name: str
    reason: RejectReason
    detail: str


class PrepareResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    character: str
    version: int
    content_hash: str
    unchanged: bool
    path: str
    kohya_path: str | None
    kept: list[KeptImage]
    rejected: list[RejectedImage]
    contact_sheet: str
    rejected_sheet: str | None
    warnings: list[str]
    config: DatasetConfig
