"""QC of one image: decode, identity, soundness and prompt adherence, in that order.

:meth:`QualityChecker.check` is what the gated generation calls per image: it returns a
:class:`~charstudio.qc.types.QCResult` whose ``passed`` says keep or regenerate, whose
``identity`` and ``adherence`` feed a best-of-N choice, and whose ``reasons`` say why.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from charstudio.errors import InvalidParameter, UnsupportedImage
from charstudio.faces.analysis import analyse_image
from charstudio.faces.base import FaceBackend, RGBImage, check_rgb_image, comparator
from charstudio.faces.types import DetectedFace, ImageAnalysis
from charstudio.library.images import load_rgb
from charstudio.library.qc_policy import QCPolicy
from charstudio.qc.base import AdherenceScorer, not_checked
from charstudio.qc.identity import CharacterIdentity, check_identity
from charstudio.qc.people import asks_for_several_people
from charstudio.qc.soundness import check_soundness
from charstudio.qc.types import CheckResult, QCRequest, QCResult

__all__ = ["ImageInput", "QualityChecker"]

ImageInput = Path | Image.Image | np.ndarray
NO_ADHERENCE = (
    "no adherence model set (CHARSTUDIO_QC_CLIP_MODEL or CHARSTUDIO_QC_TAGGER): "
    "prompt adherence not checked"
)


@dataclass
class QualityChecker:
    """Checks images of one character.

    Attributes:
        backend: the face backend (the identity's own: see ``CharacterIdentity``).
        identity: the character's identity; ``None`` leaves identity "not checked".
        policy: the character's QC policy (thresholds).
        adherence: prompt-adherence scorers (CLIP, tags); empty: "not checked".
        soundness: run the soundness checks (off only to measure identity alone).
    """

    backend: FaceBackend
    identity: CharacterIdentity | None
    policy: QCPolicy = field(default_factory=QCPolicy)
    adherence: Sequence[AdherenceScorer] = ()
    soundness: bool = True

    def __post_init__(self) -> None:
        if self.identity is not None:
            self.identity.require_backend(self.backend)

    @property
    def identity_threshold(self) -> float:
        """The policy's minimum identity, else the backend's same-person threshold."""
        if self.policy.min_identity is not None:
            return self.policy.min_identity
        return self.backend.threshold

    def check(
        self, image: ImageInput, request: QCRequest, *, source: str | None = None
    ) -> QCResult:
        """Run every check on one image.

        Args:
            image: a file, a PIL image or an RGB uint8 array.
            request: what the image was asked for.
            source: label for the result (default: the path, or ``<image>``).

        Raises:
            InvalidParameter: an array that is not RGB uint8.
        """
        label = source or (str(image) if isinstance(image, Path) else "<image>")
        try:
            rgb = _rgb(image)
        except UnsupportedImage as exc:
            decode = CheckResult(
                check="decode",
                scorer="pillow",
                model="library.images",
                score=None,
                threshold=None,
                status="fail",
                reason=f"unreadable: {exc}",
            )
            return QCResult(source=label, checks=(decode,))
        analysis = analyse_image(self.backend, rgb, source=label, embed="all")
        checks = [self._identity(analysis, request)]
        if self.soundness:
            checks += check_soundness(rgb, _subject(analysis))
        checks += self._adherence(rgb, request)
        height, width = rgb.shape[:2]
        return QCResult(
            source=label,
            width=width,
            height=height,
            checks=tuple(checks),
            faces_found=len(analysis.faces),
            face_status=analysis.status,
            face_box=_box(analysis),
        )

    def _identity(self, analysis: ImageAnalysis, request: QCRequest) -> CheckResult:
        if self.identity is None:
            return CheckResult(
                check="identity",
                scorer=self.backend.name,
                model=self.backend.model_name,
                score=None,
                threshold=self.identity_threshold,
                status="not_checked",
                reason=f"{request.character!r} has no face identity; run "
                f"`charstudio faces extract {request.character}`",
            )
        return check_identity(
            analysis,
            self.identity,
            threshold=self.identity_threshold,
            several_allowed=asks_for_several_people(request.prompt),
            scorer=self.backend.name,
            compare=comparator(self.backend),
        )

    def _adherence(self, rgb: RGBImage, request: QCRequest) -> list[CheckResult]:
        if not self.adherence:
            return [not_checked(NO_ADHERENCE)]
        picture = Image.fromarray(rgb)
        threshold = self.policy.min_adherence
        return [s.check(picture, request, threshold=threshold) for s in self.adherence]


def _rgb(image: ImageInput) -> RGBImage:
    if isinstance(image, Path):
        return load_rgb(image)
    if isinstance(image, Image.Image):
        return np.asarray(image.convert("RGB"), dtype=np.uint8)
    if isinstance(image, np.ndarray):
        return check_rgb_image(image)
    raise InvalidParameter(
        f"image must be a path, a PIL image or an RGB array, got {type(image).__name__}"
    )


def _subject(analysis: ImageAnalysis) -> DetectedFace | None:
    """The face soundness is judged on: the chosen face, else the largest."""
    chosen = analysis.chosen_face
    if chosen is not None:
        return chosen.face
    return analysis.faces[0].face if analysis.faces else None


def _box(analysis: ImageAnalysis) -> tuple[float, float, float, float] | None:
    face = _subject(analysis)
    if face is None:
        return None
    return (face.box.x0, face.box.y0, face.box.x1, face.box.y1)
