"""The prompt-adherence scorer interface: one per mechanism (``clip.py``, ``tags.py``)."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from PIL import Image

from charstudio.qc.types import CheckResult, QCRequest

__all__ = ["AdherenceScorer", "not_checked"]


@runtime_checkable
class AdherenceScorer(Protocol):
    """Scores how well an image shows what its request asked for."""

    @property
    def name(self) -> str:
        """Scorer name as results show it (``clip``, ``wd14-tagger``)."""
        ...

    def check(
        self, image: Image.Image, request: QCRequest, *, threshold: float | None
    ) -> CheckResult:
        """Score one image; ``threshold`` ``None`` uses the scorer's default."""
        ...


def not_checked(reason: str) -> CheckResult:
    """The adherence entry when no scorer is set: never a silent pass."""
    return CheckResult(
        check="adherence_clip",
        scorer="none",
        model="none",
        score=None,
        threshold=None,
        status="not_checked",
        reason=reason,
    )
