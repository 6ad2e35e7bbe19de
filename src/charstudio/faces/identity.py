"""Building a character's face identity from per-image embeddings.

The identity is the L2-normalised mean of the *inlier* embeddings. Outliers (another
person, or a shot bad enough to move the embedding) are found robustly, on the backend's
score (cosine similarity; ``1 - difference`` of CCIP's metrics model, see
:mod:`charstudio.faces.ccip_backend`):

1. **Start at the medoid**: the embedding with the highest median similarity to all the
   others. Fewer than half of the images being strangers cannot move it (with exactly two
   images that disagree, the first one given is kept).
2. **Keep** the embeddings whose score against the centre is at least the backend's
   same-person threshold; the others are outliers.
3. **Recentre** on the normalised mean of the kept embeddings and repeat 2-3 until the
   inlier set stops changing (at most 10 rounds).

Images with no face, several faces or a face too small carry no embedding; they are
members with ``inlier=False`` and the analysis message as reason.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from charstudio.errors import InvalidParameter
from charstudio.faces.base import Comparator, check_compatible, cosine_scores
from charstudio.faces.types import (
    FaceEmbeddingVector,
    IdentityMember,
    IdentityResult,
    ImageAnalysis,
    NoUsableFace,
)

__all__ = ["MAX_ROUNDS", "build_identity"]

MAX_ROUNDS = 10


def build_identity(
    analyses: Sequence[ImageAnalysis], *, threshold: float, compare: Comparator = cosine_scores
) -> IdentityResult:
    """Build an identity from analysed reference images.

    Args:
        analyses: one per reference image (from :mod:`charstudio.faces.analysis`).
        threshold: the backend's same-person score (``backend.threshold``).
        compare: the backend's comparator (``comparator(backend)``); cosine by default.

    Returns:
        The identity vector and, per image, its similarity to it and whether it is in.

    Raises:
        InvalidParameter: ``threshold`` outside (-1, 1).
        NoUsableFace: no image has one usable face.
        IncompatibleEmbeddings: the embeddings come from different backends or models.
    """
    # 1. Validate.
    if not -1.0 < threshold < 1.0:
        raise InvalidParameter(f"threshold must be within (-1, 1), got {threshold}")
    usable = [(i, a.embedding) for i, a in enumerate(analyses) if a.embedding is not None]
    if not usable:
        statuses = ", ".join(sorted({a.status for a in analyses})) or "no images"
        raise NoUsableFace(
            f"none of the {len(analyses)} images has one usable face ({statuses}); "
            "add close-up images with one clearly visible face"
        )
    first = usable[0][1]
    for _, vec in usable[1:]:
        check_compatible(first, vec)
    vectors = [vec for _, vec in usable]
    matrix = np.stack([vec.vector for vec in vectors]).astype(np.float64)

    def to_centre(centre: FaceEmbeddingVector) -> np.ndarray:
        return compare(vectors, [centre])[:, 0]

    # 2. Robust centre: the medoid, then recentre on the inliers until stable.
    medoid = int(np.argmax(np.median(compare(vectors, vectors), axis=1)))
    centre = vectors[medoid]
    keep = np.zeros(len(usable), dtype=bool)
    for _ in range(MAX_ROUNDS):
        scores = to_centre(centre)
        new_keep = scores >= threshold
        new_keep[int(np.argmax(scores))] = True  # the best match always stays
        if np.array_equal(new_keep, keep):
            break
        keep = new_keep
        centre = FaceEmbeddingVector.from_raw(
            backend=first.backend, model=first.model, values=matrix[keep].mean(axis=0)
        )
    identity = centre
    # 3. Report every image.
    final = to_centre(identity)
    row_of = {index: row for row, (index, _) in enumerate(usable)}
    members = []
    for index, analysis in enumerate(analyses):
        row = row_of.get(index)
        if row is None:
            members.append(
                IdentityMember(analysis.source, analysis.status, None, False, analysis.message)
            )
            continue
        sim = float(final[row])
        reason = None
        if not keep[row]:
            reason = (
                f"outlier: similarity {sim:.3f} to the identity is below the same-person "
                f"threshold {threshold:.2f}; another person or a poor shot"
            )
        members.append(
            IdentityMember(analysis.source, analysis.status, sim, bool(keep[row]), reason)
        )
    return IdentityResult(vector=identity, threshold=threshold, members=tuple(members))
