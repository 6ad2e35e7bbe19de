"""The face backend interface and the ways to compare embeddings.

A backend detects faces (box, landmarks, a detector score) in an upright RGB image and
embeds detected faces into L2-normalised vectors. Each backend states a calibrated
"same person" threshold on its own **score**, where higher means more alike and a pair at
or above the threshold is the same person (or character); thresholds of different backends
are not interchangeable, and neither are their vectors.

The score is the cosine similarity of the vectors (:func:`cosine_scores`) for dlib and
InsightFace. A backend with a learned metric (CCIP: a model turns feature pairs into a
difference) is a :class:`LearnedMetricBackend`; its :meth:`~LearnedMetricBackend.compare`
is the score, and :func:`comparator` picks the right one for a backend. Cosine is refused
on such a backend's vectors, so no caller can silently score them the wrong way.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from charstudio.errors import InvalidParameter
from charstudio.faces.types import DetectedFace, FaceEmbeddingVector, IncompatibleEmbeddings

__all__ = [
    "LEARNED_METRIC_BACKENDS",
    "Comparator",
    "FaceBackend",
    "LearnedMetricBackend",
    "RGBImage",
    "Scores",
    "check_compatible",
    "check_rgb_image",
    "comparator",
    "cosine_scores",
    "similarity",
]

RGBImage = npt.NDArray[np.uint8]
"""An upright ``(height, width, 3)`` uint8 RGB array, as ``load_rgb`` returns."""

Scores = npt.NDArray[np.float64]
"""A ``(len(a), len(b))`` matrix of scores, higher = more alike."""

Comparator = Callable[[Sequence[FaceEmbeddingVector], Sequence[FaceEmbeddingVector]], Scores]
"""Scores every vector of ``a`` against every vector of ``b``."""

LEARNED_METRIC_BACKENDS = frozenset({"ccip"})
"""Backends whose vectors are compared by their own model, never by the cosine."""


@runtime_checkable
class FaceBackend(Protocol):
    """What every face backend provides."""

    @property
    def name(self) -> str:
        """Backend name, e.g. ``"dlib"``."""
        ...

    @property
    def model_name(self) -> str:
        """Recognition model name, e.g. ``"dlib_face_recognition_resnet_model_v1"``."""
        ...

    @property
    def dim(self) -> int:
        """Embedding dimension."""
        ...

    @property
    def threshold(self) -> float:
        """Cosine similarity at or above which two faces are the same person."""
        ...

    def detect(self, image: RGBImage) -> list[DetectedFace]:
        """Find faces in an upright RGB image; boxes in its pixels, any order."""
        ...

    def embed(self, image: RGBImage, faces: Sequence[DetectedFace]) -> list[FaceEmbeddingVector]:
        """Embed ``faces`` of ``image`` in one batch, in the order given."""
        ...


@runtime_checkable
class LearnedMetricBackend(FaceBackend, Protocol):
    """A backend whose score comes from a model of its own (CCIP's metrics model)."""

    def compare(self, a: Sequence[FaceEmbeddingVector], b: Sequence[FaceEmbeddingVector]) -> Scores:
        """Scores of every vector of ``a`` against every vector of ``b``, higher = alike."""
        ...


def check_rgb_image(image: object, *, argument: str = "image") -> RGBImage:
    """Validate an image array at a backend's door.

    Returns:
        The array, C-contiguous.

    Raises:
        InvalidParameter: not a ``(height, width, 3)`` uint8 array.
    """
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3:
        shape = getattr(image, "shape", None)
        raise InvalidParameter(
            f"{argument} must be a (height, width, 3) RGB array, got shape {shape}; "
            "load files with charstudio.library.images.load_rgb"
        )
    if image.dtype != np.uint8:
        raise InvalidParameter(
            f"{argument} must be uint8, got {image.dtype}; load files with load_rgb"
        )
    return np.ascontiguousarray(image)


def check_compatible(a: FaceEmbeddingVector, b: FaceEmbeddingVector) -> None:
    """Refuse to compare embeddings made by different backends or models.

    Raises:
        IncompatibleEmbeddings: naming both, and how to fix it.
    """
    if (a.backend, a.model, a.dim) != (b.backend, b.model, b.dim):
        raise IncompatibleEmbeddings(
            f"cannot compare a {a.label} embedding with a {b.label} embedding: "
            "similarities are only meaningful within one backend and model; "
            f"re-extract the identity with the {b.backend} backend (or score with {a.backend})"
        )


def cosine_scores(a: Sequence[FaceEmbeddingVector], b: Sequence[FaceEmbeddingVector]) -> Scores:
    """Cosine similarities of normalised embeddings: dlib's and InsightFace's score.

    Raises:
        IncompatibleEmbeddings: the vectors come from different backends or models, or
            from a backend whose score is its own model's (CCIP).
    """
    vectors = [*a, *b]
    for vec in vectors[1:]:
        check_compatible(vectors[0], vec)
    if vectors and vectors[0].backend in LEARNED_METRIC_BACKENDS:
        raise IncompatibleEmbeddings(
            f"{vectors[0].label} embeddings are compared by the {vectors[0].backend} "
            "backend's own metrics model, not by cosine similarity; compare them with "
            f"comparator(backend) of a loaded {vectors[0].backend} backend"
        )
    if not a or not b:
        return np.zeros((len(a), len(b)), dtype=np.float64)
    left = np.stack([v.vector for v in a]).astype(np.float64)
    right = np.stack([v.vector for v in b]).astype(np.float64)
    return np.clip(left @ right.T, -1.0, 1.0)


def comparator(backend: FaceBackend) -> Comparator:
    """How ``backend``'s vectors are scored: its own metric if it has one, else cosine."""
    if isinstance(backend, LearnedMetricBackend):
        return backend.compare
    return cosine_scores


def similarity(
    a: FaceEmbeddingVector, b: FaceEmbeddingVector, *, compare: Comparator = cosine_scores
) -> float:
    """The score of two embeddings of the same backend and model (cosine by default).

    Args:
        a: one embedding.
        b: the other.
        compare: the backend's comparator (:func:`comparator`); cosine for dlib and
            InsightFace.

    Raises:
        IncompatibleEmbeddings: they come from different backends or models.
    """
    check_compatible(a, b)
    return float(compare([a], [b])[0, 0])
