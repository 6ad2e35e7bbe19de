"""Choosing the reference image for IP-Adapter, and exporting it for ComfyUI.

Each usable, inlier image gets a score in [0, 1], a weighted sum of five parts, each in
[0, 1] (weights in :data:`WEIGHTS`):

- ``frontal`` (0.30): ``(1 - yaw) * (1 - roll)``. Yaw: how far the nose sits from the
  midpoint of the eyes, along the eye line, as a share of half the eye distance. Roll: the
  eye line's angle over 45 degrees. Both clipped to [0, 1].
- ``sharp`` (0.25): variance of the Laplacian of the 128 px grey face crop, ``v / (v + 100)``.
- ``identity`` (0.20): the backend's score against the identity centre, rescaled from
  [threshold, 1] to [0, 1].
- ``size`` (0.15): the face box's shorter side over 256 px, at most 1.
- ``exposure`` (0.10): ``1 - |brightness - 120| / 120`` of the face crop.

A drawn character (CCIP) has no eye or nose keypoints: ``frontal`` is left out and the other
weights are scaled up to sum to 1. Its box is the whole figure, and its IP-Adapter reference
is the full character image, not a face crop (see :mod:`charstudio.faces.service`).

An image with uniform borders (a letterboxed video frame) is scored as its picture: the sum is
multiplied by the picture's share of the frame (``content`` in the parts), so a frame that is
half black bars loses to a clean photo of the same face, and the exported full image is the
picture without its bars.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from charstudio.errors import InvalidParameter, storage_errors
from charstudio.faces.base import (
    Comparator,
    RGBImage,
    check_rgb_image,
    cosine_scores,
    similarity,
)
from charstudio.faces.types import (
    DetectedFace,
    FaceBox,
    FaceEmbeddingVector,
    FaceKeypoints,
    IdentityResult,
    ImageAnalysis,
)
from charstudio.library.images import load_rgb

__all__ = [
    "WEIGHTS",
    "ReferenceCandidate",
    "ReferenceExport",
    "export_chosen",
    "export_reference",
    "rank_references",
    "score_face",
    "square_crop_box",
    "write_png_atomic",
]

WEIGHTS = {"frontal": 0.30, "sharp": 0.25, "identity": 0.20, "size": 0.15, "exposure": 0.10}
_SHARP_KNEE = 100.0
_SIZE_FULL = 256.0
_BRIGHTNESS_TARGET = 120.0


@dataclass(frozen=True)
class ReferenceCandidate:
    """A reference image's score and its parts."""

    source: str
    face: DetectedFace
    score: float
    parts: dict[str, float]


@dataclass(frozen=True)
class ReferenceExport:
    """Files written by :func:`export_reference`."""

    face_crop: Path
    full_image: Path


def _clip01(value: float) -> float:
    return min(1.0, max(0.0, value))


def score_face(
    face: DetectedFace,
    *,
    embedding: FaceEmbeddingVector | None,
    identity: FaceEmbeddingVector | None,
    threshold: float,
    compare: Comparator = cosine_scores,
) -> tuple[float, dict[str, float]]:
    """Score one face as a reference; returns ``(score, parts)``. See the module docstring."""
    id_part = 0.0
    if embedding is not None and identity is not None:
        sim = similarity(embedding, identity, compare=compare)
        id_part = _clip01((sim - threshold) / (1.0 - threshold))
    parts = {} if face.keypoints is None else {"frontal": _frontal(face.keypoints)}
    parts |= {
        "sharp": face.sharpness / (face.sharpness + _SHARP_KNEE),
        "identity": id_part,
        "size": _clip01(face.box.side / _SIZE_FULL),
        "exposure": _clip01(1.0 - abs(face.brightness - _BRIGHTNESS_TARGET) / _BRIGHTNESS_TARGET),
    }
    score = sum(WEIGHTS[k] * v for k, v in parts.items())
    if face.keypoints is None:  # no frontal part: scale the others up to sum to 1
        score /= 1.0 - WEIGHTS["frontal"]
    return score, parts


def _frontal(kp: FaceKeypoints) -> float:
    """``(1 - yaw) * (1 - roll)`` from the eye centres and the nose tip."""
    eye_dist = max(kp.eye_distance, 1e-6)
    ux = (kp.right_eye[0] - kp.left_eye[0]) / eye_dist
    uy = (kp.right_eye[1] - kp.left_eye[1]) / eye_dist
    mid = ((kp.left_eye[0] + kp.right_eye[0]) / 2.0, (kp.left_eye[1] + kp.right_eye[1]) / 2.0)
    along = (kp.nose[0] - mid[0]) * ux + (kp.nose[1] - mid[1]) * uy
    yaw = _clip01(abs(along) / (eye_dist / 2.0))
    roll = _clip01(abs(kp.roll_degrees) / 45.0)
    return (1.0 - yaw) * (1.0 - roll)


def rank_references(
    analyses: Sequence[ImageAnalysis],
    identity: IdentityResult,
    *,
    compare: Comparator = cosine_scores,
) -> list[ReferenceCandidate]:
    """Rank the identity's inlier images as IP-Adapter references, best first.

    Args:
        analyses: the reference images' analyses.
        identity: their identity.
        compare: the backend's comparator (``comparator(backend)``); cosine by default.

    Raises:
        IncompatibleEmbeddings: an analysis was made by another backend than the identity.
    """
    inlier_sources = {m.source for m in identity.inliers}
    ranked = []
    for analysis in analyses:
        chosen = analysis.chosen_face
        if analysis.status != "ok" or chosen is None or analysis.source not in inlier_sources:
            continue
        score, parts = score_face(
            chosen.face,
            embedding=chosen.embedding,
            identity=identity.vector,
            threshold=identity.threshold,
            compare=compare,
        )
        parts["content"] = analysis.content_share
        score *= analysis.content_share
        ranked.append(ReferenceCandidate(analysis.source, chosen.face, score, parts))
    return sorted(ranked, key=lambda c: c.score, reverse=True)


def square_crop_box(
    box: FaceBox, width: int, height: int, *, margin: float
) -> tuple[int, int, int, int]:
    """A square around ``box`` grown by ``margin`` (share of the face side) on each side.

    The square is shifted to stay inside the image and shrunk only if the image is smaller.

    Returns:
        ``(left, top, right, bottom)`` integer pixel bounds.
    """
    side = min(round(max(box.width, box.height) * (1.0 + 2.0 * margin)), width, height)
    cx, cy = box.centre
    left = min(max(round(cx - side / 2.0), 0), width - side)
    top = min(max(round(cy - side / 2.0), 0), height - side)
    return left, top, left + side, top + side


def write_png_atomic(image: Image.Image, path: Path) -> Path:
    """Write a PNG to a temporary name beside ``path``, then rename it into place.

    A reader (ComfyUI's ``LoadImage``, a file watcher) never sees a half-written file.
    """
    with storage_errors(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".png.tmp", dir=path.parent)
        try:
            with os.fdopen(handle, "wb") as out:
                image.save(out, format="PNG")
            Path(temp).replace(path)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
    return path


def export_reference(
    image: RGBImage,
    face: DetectedFace,
    *,
    out_dir: Path,
    name: str,
    margin: float = 0.4,
    crop_size: int = 512,
    content: tuple[int, int, int, int] | None = None,
) -> ReferenceExport:
    """Write ``<name>_face.png`` (square face crop) and ``<name>_full.png`` for ComfyUI.

    Args:
        image: the upright RGB reference image.
        face: its chosen face.
        out_dir: e.g. ComfyUI's ``input`` folder.
        name: file name stem, e.g. the character name.
        margin: share of the face side added around the face on each side.
        crop_size: side of the face crop in pixels (resized with Lanczos).
        content: the picture inside uniform borders (``ImageAnalysis.content``): both files
            are cut from it, so neither carries the bars.

    Raises:
        InvalidParameter: a bad setting or name.
    """
    image = check_rgb_image(image)
    if not 0.0 <= margin <= 2.0:
        raise InvalidParameter(f"margin must be within 0-2, got {margin}")
    if not 64 <= crop_size <= 4096:
        raise InvalidParameter(f"crop_size must be within 64-4096 pixels, got {crop_size}")
    if not name or Path(name).name != name or name.startswith("."):
        raise InvalidParameter(f"name must be a plain file name stem, got {name!r}")
    full = Image.fromarray(image)
    box = face.box
    if content is not None:
        full = full.crop(content)
        left, top = content[0], content[1]
        box = FaceBox(box.x0 - left, box.y0 - top, box.x1 - left, box.y1 - top)
    crop = full.crop(square_crop_box(box, full.width, full.height, margin=margin))
    crop = crop.resize((crop_size, crop_size), Image.Resampling.LANCZOS)
    return ReferenceExport(
        face_crop=write_png_atomic(crop, out_dir / f"{name}_face.png"),
        full_image=write_png_atomic(full, out_dir / f"{name}_full.png"),
    )


def export_chosen(path: Path, analysis: ImageAnalysis, *, out_dir: Path, name: str) -> bool:
    """Export an analysed reference's chosen subject for ComfyUI; ``False`` if it has none.

    A face gets :func:`export_reference`'s face crop and full image. A drawn character
    (CCIP) gets only ``<name>_full.png``, the full character (its box, which is the whole
    picture without a character detector), and any old face crop is removed: IP-Adapter's
    face presets were trained on face crops, so its generation uses a full-image preset.

    Raises:
        UnsupportedImage: the file cannot be read.
    """
    chosen = analysis.chosen_face
    if chosen is None:
        return False
    image = load_rgb(path)
    if chosen.face.kind == "face":
        export_reference(image, chosen.face, out_dir=out_dir, name=name, content=analysis.content)
        return True
    box = chosen.face.box
    full = Image.fromarray(image).crop((round(box.x0), round(box.y0), round(box.x1), round(box.y1)))
    (out_dir / f"{name}_face.png").unlink(missing_ok=True)
    write_png_atomic(full, out_dir / f"{name}_full.png")
    return True
