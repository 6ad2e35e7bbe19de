"""The QC stage's models: what was asked for, one entry per check, one result per image.

Every model is a frozen pydantic model so a result can be stored (PNG metadata, the
database, the API) exactly as it was decided.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from charstudio.faces.types import ImageStatus
from charstudio.workflows.request import Variation

__all__ = [
    "CheckName",
    "CheckResult",
    "CheckStatus",
    "QCRequest",
    "QCResult",
]

CheckName = Literal[
    "decode", "identity", "blank", "black", "exposure", "blur", "adherence_clip", "adherence_tags"
]
CheckStatus = Literal["pass", "fail", "not_checked"]


class QCRequest(BaseModel):
    """What an image was asked for.

    Attributes:
        character: the character's name (its face identity is the reference).
        prompt: the user's prompt as written (the several-people rule reads it).
        variation: ``outfit``, ``background``, ``pose`` or ``None``.
        subject: the variation's subject text (the outfit, the place, the pose); the text
            prompt adherence is scored on. ``None``: the prompt.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    character: str = Field(min_length=1)
    prompt: str = ""
    variation: Variation | None = None
    subject: str | None = None

    @property
    def subject_text(self) -> str:
        """The text adherence is scored on: the subject, else the prompt."""
        return (self.subject or self.prompt).strip()


class CheckResult(BaseModel):
    """One check on one image.

    Attributes:
        check: which check.
        scorer: what measured it (``dlib``, ``clip``, ``wd14-tagger``, ``pixels``...).
        model: the model and version (or the measure) that gave the score.
        score: the measured value (``None`` when nothing could be measured).
        threshold: the value the score is compared with.
        comparison: ``>=``: the score must reach the threshold; ``<=``: stay at or below it.
        status: ``pass``, ``fail`` or ``not_checked`` (never counted as a pass).
        reason: one sentence for people.
    """

    model_config = ConfigDict(frozen=True)

    check: CheckName
    scorer: str
    model: str
    score: float | None
    threshold: float | None
    comparison: Literal[">=", "<="] = ">="
    status: CheckStatus
    reason: str

    @property
    def passed(self) -> bool:
        return self.status == "pass"


class QCResult(BaseModel):
    """Every check of one image. ``passed`` when no check failed and identity passed.

    Attributes:
        source: the image (a path, or the caller's label).
        width: pixels (0 when unreadable).
        height: pixels (0 when unreadable).
        checks: one entry per check, in a fixed order.
        faces_found: faces the detector found.
        face_status: the face analysis status (``unreadable`` when it could not be decoded).
        face_box: ``(x0, y0, x1, y1)`` of the subject's face, for contact sheets.
    """

    model_config = ConfigDict(frozen=True)

    source: str
    width: int = 0
    height: int = 0
    checks: tuple[CheckResult, ...]
    faces_found: int = 0
    face_status: ImageStatus = "unreadable"
    face_box: tuple[float, float, float, float] | None = None

    def get(self, check: CheckName) -> CheckResult | None:
        """The entry of one check, or ``None`` when it was not run."""
        return next((c for c in self.checks if c.check == check), None)

    @property
    def passed(self) -> bool:
        """No check failed (``not_checked`` entries do not fail an image, nor pass it: see
        :attr:`adherence_checked`)."""
        return all(c.status != "fail" for c in self.checks)

    @property
    def readable(self) -> bool:
        decode = self.get("decode")
        return decode is None or decode.passed

    @property
    def identity(self) -> float | None:
        """Cosine similarity to the character's identity, when a face could be compared."""
        entry = self.get("identity")
        return None if entry is None else entry.score

    @property
    def adherence(self) -> float | None:
        """The prompt-adherence score (CLIP first, else tags), when one was measured."""
        names: tuple[CheckName, ...] = ("adherence_clip", "adherence_tags")
        for name in names:
            entry = self.get(name)
            if entry is not None and entry.status != "not_checked":
                return entry.score
        return None

    @property
    def adherence_checked(self) -> bool:
        return self.adherence is not None

    @property
    def reasons(self) -> tuple[str, ...]:
        """Why the image failed: each failed check's reason."""
        return tuple(f"{c.check}: {c.reason}" for c in self.checks if c.status == "fail")
