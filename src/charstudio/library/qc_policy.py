"""A character's quality-control policy: how strict the QC stage is, and how much it may retry.

The policy sits in the consistency profile beside the generation parameters and is stored
the same way: as overrides in the character's ``overrides`` JSON, under ``qc_``-prefixed keys
(``qc_min_identity``, ``qc_min_adherence``, ``qc_extra_attempts``, ``qc_candidates``). The
defaults are written once, in :class:`QCPolicy`.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["QC_OVERRIDE_KEYS", "QCOverrides", "QCPolicy"]


class QCPolicy(BaseModel):
    """What an image must reach to be kept, and the budget to get there.

    Attributes:
        min_identity: smallest cosine similarity to the character's face identity; ``None``
            uses the face backend's own same-person threshold (dlib 0.93-ish, InsightFace
            0.4-ish: thresholds of different backends are not interchangeable).
        min_adherence: smallest prompt-adherence score (0-1); ``None`` uses the scorer's
            default (CLIP: 0.5, tags: 0.5; see ``charstudio.qc``).
        extra_attempts: generations allowed beyond the requested count per requested image
            before the job ends "partial".
        candidates: images generated per requested image; the best passing one is kept.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    min_identity: float | None = Field(default=None, ge=0.0, le=1.0)
    min_adherence: float | None = Field(default=None, ge=0.0, le=1.0)
    extra_attempts: int = Field(default=3, ge=0, le=20)
    candidates: int = Field(default=1, ge=1, le=8)


class QCOverrides(BaseModel):
    """The policy as per-character overrides (``None`` keeps the default); mixed into the
    profile's ``Overrides`` so they are validated and stored with the other parameters."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    qc_min_identity: float | None = Field(default=None, ge=0.0, le=1.0)
    qc_min_adherence: float | None = Field(default=None, ge=0.0, le=1.0)
    qc_extra_attempts: int | None = Field(default=None, ge=0, le=20)
    qc_candidates: int | None = Field(default=None, ge=1, le=8)

    def qc_policy(self) -> QCPolicy:
        """The policy these overrides give (unset keys keep :class:`QCPolicy`'s defaults)."""
        values = {
            key.removeprefix("qc_"): getattr(self, key)
            for key in QC_OVERRIDE_KEYS
            if getattr(self, key) is not None
        }
        return QCPolicy(**values)


QC_OVERRIDE_KEYS: tuple[str, ...] = tuple(QCOverrides.model_fields)
