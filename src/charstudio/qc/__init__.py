"""Quality control: every generated image checked for identity, prompt and soundness.

:class:`QualityChecker` checks one image (identity against the character's face identity,
soundness, prompt adherence with CLIP or a WD14 tagger when one is set) and returns a
:class:`QCResult`; :class:`QCService` builds a character's checker and scores folders
(``charstudio qc score``).
"""

from charstudio.qc.base import AdherenceScorer
from charstudio.qc.checker import QualityChecker
from charstudio.qc.clip import ClipScorer, check_clip_folder
from charstudio.qc.identity import CharacterIdentity, load_identity
from charstudio.qc.people import asks_for_several_people
from charstudio.qc.report import Distribution, QCImageRow, QCScoreReport
from charstudio.qc.service import QCService
from charstudio.qc.tags import TagScorer, expected_tags
from charstudio.qc.types import CheckResult, QCRequest, QCResult

__all__ = [
    "AdherenceScorer",
    "CharacterIdentity",
    "CheckResult",
    "ClipScorer",
    "Distribution",
    "QCImageRow",
    "QCRequest",
    "QCResult",
    "QCScoreReport",
    "QCService",
    "QualityChecker",
    "TagScorer",
    "asks_for_several_people",
    "check_clip_folder",
    "expected_tags",
    "load_identity",
]
