"""Scoring images against a character's identity.

Per image: how many faces were found, the best score (cosine similarity; ``1 - difference``
for CCIP) of any embeddable face to the identity, and pass/fail at the backend's same-person
threshold. Per set: **face
consistency**, the share of images that pass (an image where the face was lost counts as a
failure), and the distribution of the similarities.

Analyse generated images with ``embed="all"`` so a scene with several people is scored
on the face that matches best.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from charstudio.errors import InvalidParameter
from charstudio.faces.base import Comparator, cosine_scores
from charstudio.faces.types import (
    FaceEmbeddingVector,
    ImageAnalysis,
    ImageScore,
    ScoreResult,
    SimilarityStats,
)

__all__ = ["score_image", "score_images"]


def score_image(
    analysis: ImageAnalysis,
    identity: FaceEmbeddingVector,
    *,
    threshold: float,
    compare: Comparator = cosine_scores,
) -> ImageScore:
    """Score one analysed image.

    Args:
        analysis: the image, analysed with the identity's backend.
        identity: the character's identity vector.
        threshold: the backend's same-person score.
        compare: the backend's comparator (``comparator(backend)``); cosine by default.

    Raises:
        IncompatibleEmbeddings: the image was embedded by another backend or model.
    """
    embedded = [(i, f.embedding) for i, f in enumerate(analysis.faces) if f.embedding is not None]
    if not embedded:
        return ImageScore(analysis.source, analysis.status, len(analysis.faces), None, False)
    scores = compare([vec for _, vec in embedded], [identity])[:, 0]
    best = int(np.argmax(scores))  # the first of equal scores, as before
    sim, index = float(scores[best]), embedded[best][0]
    return ImageScore(
        source=analysis.source,
        status=analysis.status,
        faces_found=len(analysis.faces),
        similarity=sim,
        passed=sim >= threshold,
        box=analysis.faces[index].face.box,
    )


def score_images(
    analyses: Sequence[ImageAnalysis],
    identity: FaceEmbeddingVector,
    *,
    threshold: float,
    compare: Comparator = cosine_scores,
) -> ScoreResult:
    """Score a set of analysed images against an identity.

    Args:
        analyses: the images, analysed with the identity's backend.
        identity: the character's identity vector.
        threshold: the backend's same-person score.
        compare: the backend's comparator (``comparator(backend)``); cosine by default.

    Raises:
        InvalidParameter: ``threshold`` outside (-1, 1).
        IncompatibleEmbeddings: an image was embedded by another backend or model.
    """
    if not -1.0 < threshold < 1.0:
        raise InvalidParameter(f"threshold must be within (-1, 1), got {threshold}")
    scores = tuple(score_image(a, identity, threshold=threshold, compare=compare) for a in analyses)
    values = [s.similarity for s in scores if s.similarity is not None]
    return ScoreResult(
        backend=identity.backend,
        model=identity.model,
        threshold=threshold,
        images=scores,
        stats=SimilarityStats.of(values),
    )
