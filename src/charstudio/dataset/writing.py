"""Per-image decisions for a kept image: where to crop and what its caption says."""

from __future__ import annotations

from charstudio.dataset.captions import compose_caption, framing_from_face, view_from_landmarks
from charstudio.dataset.crop import subject_crop
from charstudio.dataset.curate import Candidate
from charstudio.dataset.types import CropBox, DatasetConfig, Framing, View

__all__ = ["caption_for", "crop_for"]


def crop_for(cand: Candidate, out_size: tuple[int, int]) -> CropBox:
    """The crop around the candidate's face and body, at the output's aspect ratio."""
    chosen = cand.analysis.chosen_face
    face = None
    if chosen is not None:
        box = chosen.face.box
        face = (box.x0, box.y0, box.x1, box.y1)
    return subject_crop(
        image_size=(cand.width, cand.height), face=face, out_size=out_size, bounds=cand.content
    )


def caption_for(
    cand: Candidate,
    crop: CropBox,
    trigger_word: str,
    config: DatasetConfig,
    auto_tags: tuple[str, ...] = (),
) -> tuple[str, View | None, Framing | None]:
    """The generated caption, with the view and framing it states; ``auto_tags`` are the
    tagger's for the cropped image, if one is in use."""
    chosen = cand.analysis.chosen_face
    view: View | None = None
    framing: Framing | None = None
    # A drawn character's box (CCIP) is its whole figure, without eye keypoints: neither
    # the view nor the framing can be read from it.
    if chosen is not None and chosen.face.keypoints is not None:
        kp = chosen.face.keypoints
        view = view_from_landmarks(kp.left_eye, kp.right_eye, kp.nose)
        framing = framing_from_face(chosen.face.box.height, crop.height)
    caption = compose_caption(
        trigger_word=trigger_word,
        class_word=config.class_word,
        view=view,
        framing=framing,
        tags=config.tags,
        description=config.description,
        auto_tags=auto_tags,
    )
    return caption, view, framing
