"""Which references go into a training set, and why the others do not.

Rules, in order (the first that applies is the reason):

1. ``corrupt`` — the file cannot be decoded.
2. ``no_face`` / ``several_faces`` / ``face_too_small`` — from the face engine.
3. ``identity_outlier`` — its face is far from the character's identity (someone else,
   or a shot bad enough to move the embedding).
4. ``too_small`` — reaching the target size would need more than ``max_upscale``.
5. ``blurred`` — face sharpness (variance of the Laplacian) under ``blur_threshold``.
6. ``near_duplicate`` — 64-bit perceptual hash (imagehash.phash) within
   ``duplicate_distance`` bits of a better image; the better one (more pixels x sharpness)
   is kept.

Rejected images stay in the library; only the training set leaves them out.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import imagehash

from charstudio.dataset.crop import choose_bucket
from charstudio.dataset.types import DatasetConfig, RejectedImage, RejectReason
from charstudio.faces.types import IdentityMember, ImageAnalysis
from charstudio.library.images import open_normalised

__all__ = ["Candidate", "curate", "target_size"]


@dataclass(frozen=True)
class Candidate:
    """A reference image with its face analysis and its place in the identity."""

    sha256: str
    name: str
    path: Path
    width: int
    height: int
    analysis: ImageAnalysis
    member: IdentityMember

    @property
    def content(self) -> tuple[int, int, int, int]:
        """The picture inside uniform borders (the whole image when it has none)."""
        return self.analysis.content or (0, 0, self.width, self.height)

    @property
    def content_size(self) -> tuple[int, int]:
        left, top, right, bottom = self.content
        return right - left, bottom - top

    @property
    def sharpness(self) -> float:
        chosen = self.analysis.chosen_face
        return chosen.face.sharpness if chosen is not None else 0.0


def target_size(width: int, height: int, config: DatasetConfig) -> tuple[int, int]:
    """Output (width, height): a square, or the nearest bucket with ``--bucket``."""
    if config.bucket:
        return choose_bucket(width, height, config.resolution)
    return config.resolution, config.resolution


def curate(
    candidates: list[Candidate], config: DatasetConfig
) -> tuple[list[Candidate], list[RejectedImage]]:
    """Split candidates into kept (input order) and rejected (with reasons)."""
    kept: list[Candidate] = []
    rejected: list[RejectedImage] = []
    for cand in candidates:
        problem = _first_problem(cand, config)
        if problem is None:
            kept.append(cand)
        else:
            rejected.append(_reject(cand, *problem))
    kept, duplicates = _drop_near_duplicates(kept, config.duplicate_distance)
    return kept, rejected + duplicates


def _first_problem(cand: Candidate, config: DatasetConfig) -> tuple[RejectReason, str] | None:
    analysis = cand.analysis
    if analysis.status == "unreadable":
        return "corrupt", analysis.message
    if analysis.status != "ok":
        return analysis.status, analysis.message
    if not cand.member.inlier:
        return "identity_outlier", cand.member.reason or "far from the character's identity"
    # Borders (letterbox bars) are not picture: sizes are the picture's.
    width, height = cand.content_size
    out_w, out_h = target_size(width, height, config)
    # The crop keeps the output's aspect ratio, so its scale is set by the tighter side.
    scale = max(out_w / width, out_h / height)
    if scale > config.max_upscale:
        return "too_small", (
            f"{width}x{height} would need {scale:.2f}x upscaling to reach "
            f"{out_w}x{out_h} (limit {config.max_upscale}x); use a larger image or a lower "
            "--resolution"
        )
    if cand.sharpness < config.blur_threshold:
        return "blurred", (
            f"face sharpness {cand.sharpness:.0f} is under the threshold "
            f"{config.blur_threshold:.0f} (variance of the Laplacian)"
        )
    return None


def _drop_near_duplicates(
    kept: list[Candidate], distance: int
) -> tuple[list[Candidate], list[RejectedImage]]:
    # pHash looks at a 32 x 32 grey thumbnail, so a reduced JPEG decode loses nothing.
    hashes = {c.sha256: imagehash.phash(open_normalised(c.path, at_least=256)) for c in kept}
    # Best first, so each image is compared with the better ones already accepted.
    ranked = sorted(kept, key=lambda c: -(c.width * c.height * max(c.sharpness, 1.0)))
    accepted: list[Candidate] = []
    rejected: list[RejectedImage] = []
    for cand in ranked:
        twin = next(
            (a for a in accepted if hashes[a.sha256] - hashes[cand.sha256] <= distance), None
        )
        if twin is None:
            accepted.append(cand)
        else:
            bits = hashes[twin.sha256] - hashes[cand.sha256]
            rejected.append(
                _reject(
                    cand,
                    "near_duplicate",
                    f"near-duplicate of {twin.name} (perceptual hashes {bits} bits apart); "
                    "the larger, sharper one is kept",
                )
            )
    order = {c.sha256: i for i, c in enumerate(kept)}
    return sorted(accepted, key=lambda c: order[c.sha256]), rejected


def _reject(cand: Candidate, reason: RejectReason, detail: str) -> RejectedImage:
    return RejectedImage(
        source_sha256=cand.sha256, source_name=cand.name, reason=reason, detail=detail
    )
