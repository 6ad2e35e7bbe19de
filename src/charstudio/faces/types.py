"""Value types and exceptions of the face identity engine.

Everything here is a frozen dataclass: detections, embeddings and the results of image
analysis, identity extraction and identity scoring. Coordinates are always in the pixels of
the *original* (upright, EXIF-rotated) image, whatever size the detector worked at.

Embedding vectors are L2-normalised ``float32`` arrays, so cosine similarity is a dot
product. A vector remembers the backend and model that made it; comparing vectors from
different backends or models raises :class:`IncompatibleEmbeddings`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt

from charstudio.errors import IncompatibleEmbeddings, NoUsableFace

__all__ = [
    "AnalysedFace",
    "BackendName",
    "DetectedFace",
    "FaceBox",
    "FaceEmbeddingVector",
    "FaceKeypoints",
    "IdentityMember",
    "IdentityResult",
    "ImageAnalysis",
    "ImageScore",
    "ImageStatus",
    "IncompatibleEmbeddings",
    "NoUsableFace",
    "ScoreResult",
    "SimilarityStats",
    "SubjectKind",
]

BackendName = Literal["dlib", "insightface", "ccip"]

SubjectKind = Literal["face", "character"]
"""What a backend detects: a photographed ``face`` (dlib, InsightFace) or a whole drawn
``character`` (CCIP, which is trained on single-character images)."""

ImageStatus = Literal["ok", "no_face", "several_faces", "face_too_small", "unreadable"]
"""What analysing one image found.

``ok``: one face (or one clearly dominant face) large enough to embed. ``no_face``: the
detector found none. ``several_faces``: two or more faces, none clearly dominant.
``face_too_small``: the chosen face is below the minimum size. ``unreadable``: the file is
corrupt or not an image (only in folder analysis, which must not stop at one bad file).
"""

FloatArray = npt.NDArray[np.float32]


@dataclass(frozen=True)
class FaceBox:
    """An axis-aligned face box ``[x0, x1) x [y0, y1)`` in original-image pixels."""

    x0: float
    y0: float
    x1: float
    y1: float

    @property
    def width(self) -> float:
        """Box width in pixels."""
        return self.x1 - self.x0

    @property
    def height(self) -> float:
        """Box height in pixels."""
        return self.y1 - self.y0

    @property
    def side(self) -> float:
        """The shorter side: what decides whether a face is large enough to embed."""
        return min(self.width, self.height)

    @property
    def area(self) -> float:
        """Box area in square pixels."""
        return max(self.width, 0.0) * max(self.height, 0.0)

    @property
    def centre(self) -> tuple[float, float]:
        """Box centre ``(x, y)``."""
        return ((self.x0 + self.x1) / 2.0, (self.y0 + self.y1) / 2.0)

    def scaled(self, factor: float) -> FaceBox:
        """The box with every coordinate multiplied by ``factor``."""
        return FaceBox(self.x0 * factor, self.y0 * factor, self.x1 * factor, self.y1 * factor)

    def clipped(self, width: int, height: int) -> FaceBox:
        """The box clipped to an image of ``width`` x ``height`` pixels."""
        return FaceBox(
            min(max(self.x0, 0.0), float(width)),
            min(max(self.y0, 0.0), float(height)),
            min(max(self.x1, 0.0), float(width)),
            min(max(self.y1, 0.0), float(height)),
        )

    def iou(self, other: FaceBox) -> float:
        """Intersection over union with ``other`` (0 when they do not overlap)."""
        ix = max(0.0, min(self.x1, other.x1) - max(self.x0, other.x0))
        iy = max(0.0, min(self.y1, other.y1) - max(self.y0, other.y0))
        inter = ix * iy
        union = self.area + other.area - inter
        return inter / union if union > 0 else 0.0


@dataclass(frozen=True)
class FaceKeypoints:
    """Eye centres and nose tip, in image-left/image-right order, whatever the backend.

    dlib's 5-point model gives two corners per eye and the base of the nose; InsightFace's
    SCRFD gives eye centres, nose tip and mouth corners. Both reduce to these three points,
    which is all the frontality measure in :mod:`charstudio.faces.reference` needs.
    """

    left_eye: tuple[float, float]
    right_eye: tuple[float, float]
    nose: tuple[float, float]

    @property
    def eye_distance(self) -> float:
        """Distance between the eye centres in pixels."""
        return math.dist(self.left_eye, self.right_eye)

    @property
    def roll_degrees(self) -> float:
        """Angle of the eye line against the horizontal (0 = level)."""
        dx = self.right_eye[0] - self.left_eye[0]
        dy = self.right_eye[1] - self.left_eye[1]
        return math.degrees(math.atan2(dy, dx))


@dataclass(frozen=True)
class DetectedFace:
    """One face (or, for CCIP, one drawn character) a backend detected.

    Attributes:
        box: the face box in original-image pixels (a character's whole figure for CCIP).
        confidence: the detector's own score (dlib HOG: SVM margin, typically 0.3-3;
            dlib CNN and SCRFD: 0-1 probability-like). Comparable within one backend only.
        landmarks: the detector's landmark points ``((x, y), ...)``: 5 for dlib and
            InsightFace, none for a drawn character.
        keypoints: eye centres and nose derived from ``landmarks``; ``None`` for a character.
        sharpness: variance of the Laplacian of the grey face crop resized to 128 px.
        brightness: mean luminance of the face crop, 0-255.
        kind: ``"face"``, or ``"character"`` for CCIP's whole-figure boxes.
    """

    box: FaceBox
    confidence: float
    landmarks: tuple[tuple[float, float], ...]
    keypoints: FaceKeypoints | None
    sharpness: float
    brightness: float
    kind: SubjectKind = "face"


@dataclass(frozen=True, eq=False)
class FaceEmbeddingVector:
    """An L2-normalised face embedding and what made it.

    Build one with :meth:`from_raw`, which normalises; the constructor checks the vector.
    """

    backend: str
    model: str
    vector: FloatArray

    def __post_init__(self) -> None:
        if self.vector.ndim != 1 or self.vector.dtype != np.float32:
            raise ValueError(
                f"embedding must be a 1-D float32 array, got {self.vector.dtype} "
                f"with shape {self.vector.shape}"
            )
        norm = float(np.linalg.norm(self.vector))
        if not math.isfinite(norm) or abs(norm - 1.0) > 1e-3:
            raise ValueError(f"embedding must be L2-normalised, its norm is {norm:.4f}")

    @classmethod
    def from_raw(cls, *, backend: str, model: str, values: npt.ArrayLike) -> FaceEmbeddingVector:
        """Normalise ``values`` and wrap them.

        Raises:
            ValueError: the vector is empty, all zero or not finite.
        """
        arr = np.asarray(values, dtype=np.float64).reshape(-1)
        norm = float(np.linalg.norm(arr))
        if arr.size == 0 or not math.isfinite(norm) or norm == 0.0:
            raise ValueError(f"cannot normalise a {backend}/{model} embedding of norm {norm}")
        return cls(backend=backend, model=model, vector=(arr / norm).astype(np.float32))

    @property
    def dim(self) -> int:
        """Number of dimensions (128 for dlib, 512 for InsightFace)."""
        return int(self.vector.shape[0])

    @property
    def label(self) -> str:
        """``backend/model (dim-D)``, as error messages name it."""
        return f"{self.backend}/{self.model} ({self.dim}-D)"


@dataclass(frozen=True)
class AnalysedFace:
    """A detected face and, if it was embedded, its embedding."""

    face: DetectedFace
    embedding: FaceEmbeddingVector | None = None


@dataclass(frozen=True)
class ImageAnalysis:
    """What one image holds, face-wise.

    Attributes:
        source: where the image came from (a path or a caller's label).
        status: see :data:`ImageStatus`.
        message: one sentence for people saying why the status is what it is.
        width: image width in pixels (0 when unreadable).
        height: image height in pixels (0 when unreadable).
        faces: every face found, largest first.
        chosen: index into ``faces`` of the face that stands for the image, or ``None``.
        content: ``(left, top, right, bottom)`` of the picture inside uniform borders (the
            bars of a letterboxed frame, :func:`charstudio.library.borders.content_box`), or
            ``None`` when the image has none.
    """

    source: str
    status: ImageStatus
    message: str
    width: int = 0
    height: int = 0
    faces: tuple[AnalysedFace, ...] = ()
    chosen: int | None = None
    content: tuple[int, int, int, int] | None = None

    @property
    def content_share(self) -> float:
        """The share of the frame that is picture, not border (1.0 without borders)."""
        if self.content is None or not self.width or not self.height:
            return 1.0
        left, top, right, bottom = self.content
        return (right - left) * (bottom - top) / (self.width * self.height)

    @property
    def chosen_face(self) -> AnalysedFace | None:
        """The face standing for the image, if there is one."""
        return None if self.chosen is None else self.faces[self.chosen]

    @property
    def embedding(self) -> FaceEmbeddingVector | None:
        """The chosen face's embedding when the status is ``ok``."""
        chosen = self.chosen_face
        return chosen.embedding if chosen is not None and self.status == "ok" else None


@dataclass(frozen=True)
class IdentityMember:
    """One source image's part in an identity.

    Attributes:
        source: the image.
        status: its analysis status.
        similarity: similarity of its face to the identity centre in the backend's score
            (cosine; ``1 - difference`` for CCIP); ``None`` when it has no usable face.
        inlier: whether its embedding went into the identity.
        reason: why it was left out (``None`` for inliers).
    """

    source: str
    status: ImageStatus
    similarity: float | None
    inlier: bool
    reason: str | None


@dataclass(frozen=True)
class IdentityResult:
    """A character's face identity: the normalised mean of the inlier embeddings."""

    vector: FaceEmbeddingVector
    threshold: float
    members: tuple[IdentityMember, ...]

    @property
    def inliers(self) -> tuple[IdentityMember, ...]:
        """Members whose embedding is part of the identity."""
        return tuple(m for m in self.members if m.inlier)

    @property
    def outliers(self) -> tuple[IdentityMember, ...]:
        """Members with a face that was left out as too far from the others."""
        return tuple(m for m in self.members if not m.inlier and m.status == "ok")


@dataclass(frozen=True)
class SimilarityStats:
    """Distribution of similarities over a set of images (``count`` 0: all ``nan``)."""

    count: int
    mean: float
    std: float
    minimum: float
    p10: float
    median: float
    p90: float
    maximum: float

    @classmethod
    def of(cls, values: list[float]) -> SimilarityStats:
        """Summarise ``values``."""
        if not values:
            nan = float("nan")
            return cls(0, nan, nan, nan, nan, nan, nan, nan)
        arr = np.asarray(values, dtype=np.float64)
        p10, median, p90 = (float(v) for v in np.percentile(arr, [10, 50, 90]))
        return cls(
            count=len(values),
            mean=float(arr.mean()),
            std=float(arr.std()),
            minimum=float(arr.min()),
            p10=p10,
            median=median,
            p90=p90,
            maximum=float(arr.max()),
        )


@dataclass(frozen=True)
class ImageScore:
    """One image scored against an identity.

    Attributes:
        source: the image.
        status: its analysis status.
        faces_found: how many faces the detector found.
        similarity: the best cosine similarity of any embeddable face to the identity.
        passed: ``similarity >= threshold``; ``False`` when no face could be embedded.
        box: the box of the best-matching face, for contact sheets.
    """

    source: str
    status: ImageStatus
    faces_found: int
    similarity: float | None
    passed: bool
    box: FaceBox | None = None


@dataclass(frozen=True)
class ScoreResult:
    """A set of images scored against one identity.

    ``face_consistency`` is the share of *all* scored images that pass: an image with no
    face counts as a failure, because a generation that lost the face has drifted.
    """

    backend: str
    model: str
    threshold: float
    images: tuple[ImageScore, ...]
    stats: SimilarityStats = field(default_factory=lambda: SimilarityStats.of([]))

    @property
    def passed(self) -> int:
        """Number of images that pass."""
        return sum(1 for image in self.images if image.passed)

    @property
    def face_consistency(self) -> float:
        """Share of images that pass, 0-1 (0 for an empty set)."""
        return self.passed / len(self.images) if self.images else 0.0
