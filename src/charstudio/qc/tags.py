"""Prompt adherence by tags: the WD14-style ONNX tagger the dataset stage reads.

The subject text (the outfit, the place) is lower-cased, underscores and punctuation read as
spaces, and every run of one to three words that is one of the tagger's general tags
("red dress", "long hair", "beach") becomes an expected tag. The score is the share of
expected tags the tagger gives the image at its own threshold (0.35); the default pass mark
is 0.5 (at least half of what was asked for is seen). A subject with no word the tagger
knows is "not checked", never a pass.
"""

from __future__ import annotations

import re
from pathlib import Path

from PIL import Image

from charstudio.dataset.tagger import Tagger, load_tagger
from charstudio.qc.types import CheckResult, QCRequest

__all__ = ["DEFAULT_TAG_THRESHOLD", "TagScorer", "expected_tags"]

DEFAULT_TAG_THRESHOLD = 0.5
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def expected_tags(subject: str, vocabulary: frozenset[str]) -> tuple[str, ...]:
    """The tagger tags named by ``subject`` (one- to three-word runs), in prompt order."""
    words = _WORD.findall(subject.lower().replace("_", " "))
    found: list[str] = []
    for size in (3, 2, 1):
        for start in range(len(words) - size + 1):
            phrase = " ".join(words[start : start + size])
            if phrase in vocabulary and phrase not in found:
                found.append(phrase)
    return tuple(found)


class TagScorer:
    """Tag-match adherence (see the module's rule)."""

    name = "wd14-tagger"

    def __init__(self, path: Path) -> None:
        """Load the tagger (a folder, or an ``.onnx`` with its ``.csv``).

        Raises:
            InvalidParameter: a missing model or tag list, named.
            BackendUnavailable: onnxruntime is not installed.
        """
        self.tagger: Tagger = load_tagger(path)
        self.model = self.tagger.model_path.parent.name + "/" + self.tagger.model_path.name
        self.vocabulary = frozenset(
            t for t, general in zip(self.tagger.tags, self.tagger.general, strict=True) if general
        )

    def check(
        self, image: Image.Image, request: QCRequest, *, threshold: float | None
    ) -> CheckResult:
        limit = DEFAULT_TAG_THRESHOLD if threshold is None else threshold
        wanted = expected_tags(request.subject_text, self.vocabulary)
        if not wanted:
            return CheckResult(
                check="adherence_tags",
                scorer=self.name,
                model=self.model,
                score=None,
                threshold=limit,
                status="not_checked",
                reason="none of the prompt's words is a tag this tagger knows",
            )
        seen = set(self.tagger.tag(image))
        hits = [t for t in wanted if t in seen]
        score = len(hits) / len(wanted)
        missing = [t for t in wanted if t not in seen]
        return CheckResult(
            check="adherence_tags",
            scorer=self.name,
            model=self.model,
            score=round(score, 4),
            threshold=limit,
            status="pass" if score >= limit else "fail",
            reason=f"{len(hits)}/{len(wanted)} asked-for tags seen"
            + (f"; missing: {', '.join(missing)}" if missing else ""),
        )
