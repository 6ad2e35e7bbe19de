"""What ``qc score`` hands back: per-image results with folder-relative paths, and the rates."""

from __future__ import annotations

import statistics

from pydantic import BaseModel, ConfigDict

from charstudio.qc.types import QCResult

__all__ = ["Distribution", "QCImageRow", "QCScoreReport", "build_report"]


class Distribution(BaseModel):
    """Summary of a set of scores (all ``None`` when there are none)."""

    model_config = ConfigDict(frozen=True)

    count: int
    minimum: float | None = None
    median: float | None = None
    mean: float | None = None
    maximum: float | None = None

    @classmethod
    def of(cls, values: list[float]) -> Distribution:
        if not values:
            return cls(count=0)
        return cls(
            count=len(values),
            minimum=round(min(values), 4),
            median=round(statistics.median(values), 4),
            mean=round(statistics.fmean(values), 4),
            maximum=round(max(values), 4),
        )


class QCImageRow(BaseModel):
    """One scored image: its path relative to the folder given (or its file name)."""

    model_config = ConfigDict(frozen=True)

    path: str
    result: QCResult


class QCScoreReport(BaseModel):
    """QC of a set of images against one character."""

    model_config = ConfigDict(frozen=True)

    character: str
    face_backend: str
    face_model: str
    thresholds: dict[str, float]
    images: list[QCImageRow]
    total: int
    passed: int
    unreadable: int
    pass_rate: float
    face_consistency: float
    adherence_rate: float | None
    adherence_note: str | None
    identity: Distribution
    adherence: Distribution
    contact_sheet: str


def build_report(
    *,
    character: str,
    face_backend: str,
    face_model: str,
    thresholds: dict[str, float],
    rows: list[QCImageRow],
    contact_sheet: str,
) -> QCScoreReport:
    """Count passes (an unreadable file is a failure) and summarise the scores."""
    results = [r.result for r in rows]
    total = len(results)
    identity = [r.identity for r in results if r.identity is not None]
    adherence = [r.adherence for r in results if r.adherence is not None]
    identity_passes = sum(1 for r in results if (c := r.get("identity")) is not None and c.passed)
    checked = [r for r in results if r.adherence_checked]
    adherence_passes = sum(
        1 for r in checked if all(c.status != "fail" for c in r.checks if "adherence" in c.check)
    )
    note = None
    if not checked:
        reasons = {c.reason for r in results for c in r.checks if "adherence" in c.check}
        note = "prompt adherence not checked: " + ("; ".join(sorted(reasons)) or "no image")
    return QCScoreReport(
        character=character,
        face_backend=face_backend,
        face_model=face_model,
        thresholds=thresholds,
        images=rows,
        total=total,
        passed=sum(1 for r in results if r.passed),
        unreadable=sum(1 for r in results if not r.readable),
        pass_rate=sum(1 for r in results if r.passed) / total if total else 0.0,
        face_consistency=identity_passes / total if total else 0.0,
        adherence_rate=adherence_passes / len(checked) if checked else None,
        adherence_note=note,
        identity=Distribution.of(identity),
        adherence=Distribution.of(adherence),
        contact_sheet=contact_sheet,
    )
