"""Typed results of the face service (what ``charstudio faces ...`` prints and the API returns)."""

from __future__ import annotations

import math
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from charstudio.faces.types import IdentityMember, ImageAnalysis, ScoreResult
from charstudio.library.models import ReferenceImage

__all__ = [
    "ExtractReport",
    "FaceImageReport",
    "ReferenceReport",
    "ScoreImageReport",
    "ScoreReport",
    "image_report",
    "score_report",
]


class _Report(BaseModel):
    model_config = ConfigDict(frozen=True)


class FaceImageReport(_Report):
    """One reference image after ``faces extract``."""

    sha256: str
    original_name: str
    path: str
    status: str  # ok | outlier | no_face | several_faces | face_too_small | unreadable
    message: str
    faces: int
    box: tuple[float, float, float, float] | None
    similarity: float | None
    inlier: bool
    reason: str | None


class ReferenceReport(_Report):
    """The IP-Adapter reference: which image, who chose it, the files ComfyUI loads."""

    character: str
    sha256: str
    original_name: str
    path: str
    chosen_by: str  # auto | user
    score: float | None
    face_crop: str | None
    full_image: str | None
    ranking: list[tuple[str, float]]


class ExtractReport(_Report):
    """One ``faces extract``: the identity, every reference's part in it, the reference.

    ``subject`` is ``"face"``, or ``"character"`` for a drawn character (CCIP); ``note``
    says how characters were found when that matters (no character detector set).
    """

    character: str
    backend: str
    model: str
    dim: int
    threshold: float
    images: list[FaceImageReport]
    inliers: int
    outliers: int
    files: list[str]
    reference: ReferenceReport | None
    subject: str = "face"
    note: str | None = None


class ScoreImageReport(_Report):
    source: str
    status: str
    faces_found: int
    similarity: float | None
    passed: bool


class ScoreReport(_Report):
    """Identity scores of a set of images; ``face_consistency`` is the share that pass."""

    character: str
    backend: str
    model: str
    threshold: float
    images: list[ScoreImageReport]
    passed: int
    total: int
    face_consistency: float
    similarity: dict[str, float | int | None]
    contact_sheet: str


def image_report(
    ref: ReferenceImage, path: Path, analysis: ImageAnalysis, member: IdentityMember
) -> FaceImageReport:
    chosen = analysis.chosen_face
    status = "outlier" if analysis.status == "ok" and not member.inlier else analysis.status
    box = chosen.face.box if chosen is not None else None
    return FaceImageReport(
        sha256=ref.sha256,
        original_name=ref.original_name,
        path=str(path),
        status=status,
        message=analysis.message,
        faces=len(analysis.faces),
        box=(box.x0, box.y0, box.x1, box.y1) if box is not None else None,
        similarity=member.similarity,
        inlier=member.inlier,
        reason=member.reason,
    )


def score_report(name: str, result: ScoreResult, sheet: Path) -> ScoreReport:
    stats = result.stats
    return ScoreReport(
        character=name,
        backend=result.backend,
        model=result.model,
        threshold=result.threshold,
        images=[
            ScoreImageReport(
                source=s.source,
                status=s.status,
                faces_found=s.faces_found,
                similarity=s.similarity,
                passed=s.passed,
            )
            for s in result.images
        ],
        passed=result.passed,
        total=len(result.images),
        face_consistency=result.face_consistency,
        similarity={
            "count": stats.count,
            **{
                key: (None if math.isnan(value) else round(value, 4))
                for key, value in (
                    ("mean", stats.mean),
                    ("std", stats.std),
                    ("min", stats.minimum),
                    ("median", stats.median),
                    ("max", stats.maximum),
                )
            },
        },
        contact_sheet=str(sheet),
    )
