"""The identity check: is the image's subject the character?

It reuses the face stage whole: its analysis (detection, the dominance rule "the largest
face counts only when its area is at least twice the next one's", the 64 px minimum), its
embeddings, its identity files (``embeddings/<name>_face.{npy,json}``) and its backend's
same-person threshold. Only what a *generated* image needs is added:

* several faces without a dominant one fail as "several people", unless the prompt asks
  for more than one person (:func:`~charstudio.qc.people.asks_for_several_people`); then
  the best-matching face is compared, as ``faces score`` does;
* an identity made by another face backend or model is refused, naming both.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from charstudio.errors import IncompatibleEmbeddings, InvalidParameter, NotFound
from charstudio.faces.base import Comparator, FaceBackend, cosine_scores, similarity
from charstudio.faces.identity_files import identity_files
from charstudio.faces.scoring import score_image
from charstudio.faces.types import FaceEmbeddingVector, ImageAnalysis
from charstudio.qc.types import CheckResult

__all__ = ["CharacterIdentity", "check_identity", "load_identity"]


@dataclass(frozen=True)
class CharacterIdentity:
    """A character's face identity as ``faces extract`` wrote it."""

    character: str
    vector: FaceEmbeddingVector
    threshold: float  # the backend's same-person score (cosine; 1 - difference for ccip)
    source: Path  # the .npy file

    def require_backend(self, backend: FaceBackend) -> None:
        """Refuse to compare with faces of another backend or model.

        Raises:
            IncompatibleEmbeddings: naming both, and how to fix it.
        """
        if (self.vector.backend, self.vector.model) != (backend.name, backend.model_name):
            raise IncompatibleEmbeddings(
                f"the identity of {self.character!r} was made by {self.vector.label}, but the "
                f"face backend now is {backend.name}/{backend.model_name}; scores across "
                f"backends mean nothing: re-run `charstudio faces extract {self.character}` "
                "or switch CHARSTUDIO_FACE_BACKEND back"
            )


def load_identity(embeddings_dir: Path, name: str) -> CharacterIdentity:
    """Read ``<name>_face.npy`` and ``<name>_face.json`` from the embeddings folder.

    Raises:
        NotFound: no identity yet (the message says to run ``faces extract``).
        InvalidParameter: the files are unreadable or disagree with each other.
    """
    files = identity_files(embeddings_dir, name)
    if not files.npy.is_file() or not files.json.is_file():
        raise NotFound(
            f"{name!r} has no face identity yet ({files.npy.name} is missing); run "
            f"`charstudio faces extract {name}` first"
        )
    try:
        meta = json.loads(files.json.read_text())
        values = np.load(files.npy, allow_pickle=False)
        vector = FaceEmbeddingVector.from_raw(
            backend=str(meta["backend"]), model=str(meta["model"]), values=values
        )
        threshold = float(meta["threshold"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InvalidParameter(
            f"the identity files {files.npy} / {files.json} cannot be read ({exc}); re-run "
            f"`charstudio faces extract {name}`"
        ) from exc
    return CharacterIdentity(character=name, vector=vector, threshold=threshold, source=files.npy)


def check_identity(
    analysis: ImageAnalysis,
    identity: CharacterIdentity,
    *,
    threshold: float,
    several_allowed: bool,
    scorer: str,
    compare: Comparator = cosine_scores,
) -> CheckResult:
    """Compare the image's subject with the identity.

    Args:
        analysis: the face analysis of the image, made with ``embed="all"``.
        identity: the character's identity.
        threshold: the score to reach (the policy's, else the backend's): a cosine, or
            ``1 - difference`` for ccip.
        several_allowed: the prompt asks for more than one person.
        scorer: the face backend's name.
        compare: the backend's comparator (``comparator(backend)``: CCIP's metrics model,
            else cosine).
    """

    def entry(score: float | None, passed: bool, reason: str) -> CheckResult:
        return CheckResult(
            check="identity",
            scorer=scorer,
            model=identity.vector.model,
            score=None if score is None else round(score, 4),
            threshold=threshold,
            status="pass" if passed else "fail",
            reason=reason,
        )

    status = analysis.status
    if status == "no_face":
        return entry(None, False, f"no face: {analysis.message}")
    if status == "face_too_small" and not several_allowed:
        return entry(None, False, f"face too small: {analysis.message}")
    if several_allowed:
        best = score_image(
            analysis, identity.vector, threshold=threshold, compare=compare
        ).similarity
        if best is None:
            return entry(None, False, f"no face large enough to compare: {analysis.message}")
        verdict = "the character" if best >= threshold else "no face is the character"
        return entry(best, best >= threshold, f"{verdict} (best of {len(analysis.faces)} faces)")
    if status == "several_faces":
        return entry(None, False, f"several people: {analysis.message}")
    chosen = analysis.chosen_face
    if chosen is None or chosen.embedding is None:
        return entry(None, False, f"no face could be embedded: {analysis.message}")
    sim = similarity(chosen.embedding, identity.vector, compare=compare)
    verdict = "the character" if sim >= threshold else "not the character"
    metric = "cosine" if compare is cosine_scores else f"{scorer} score"
    return entry(sim, sim >= threshold, f"{verdict}: {metric} {sim:.3f} vs {threshold:.3f}")
