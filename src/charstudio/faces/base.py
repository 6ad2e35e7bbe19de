"""The face backend interface and the one way to compare embeddings.

A backend detects faces (box, landmarks, a detector score) in an upright RGB image and
embeds detected faces into L2-normalised vectors. Each backend states a calibrated
"same person" threshold on the cosine similarity of its own vectors; thresholds of
different backends are not interchangeable, and neither are their vectors.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from charstudio.errors import InvalidParameter
from charstudio.faces.types import DetectedFace, FaceEmbeddingVector, IncompatibleEmbeddings

__all__ = ["FaceBackend", "RGBImage", "check_compatible", "check_rgb_image", "similarity"]

RGBImage = npt.NDArray[np.uint8]
"""An upright ``(height, width, 3)`` uint8 RGB array, as ``load_rgb`` returns."""


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


def similarity(a: FaceEmbeddingVector, b: FaceEmbeddingVector) -> float:
    """Cosine similarity of two normalised embeddings of the same backend and model.

    Raises:
        IncompatibleEmbeddings: they come from different backends or models.
    """
    check_compatible(a, b)
    return float(np.clip(np.dot(a.vector, b.vector), -1.0, 1.0))
