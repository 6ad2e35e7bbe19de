"""Captions that say true things about each image, trigger word first.

A caption is ``<trigger>, <class word>, <view>, <framing>, <tagger's tags>, <tags>,
<free text>``, where

- **view** comes from the 5-point face landmarks: the nose's horizontal offset from the
  midpoint of the eyes, in eye distances, is near 0 for a frontal face and grows as the head
  turns (below 0.2: front; below 0.55: three-quarter; else profile);
- **framing** comes from the face height as a share of the crop height (at least 1/3:
  close-up; at least 0.15: upper body; else full body — a standing adult is about seven and
  a half heads tall);
- the tagger's tags come from a WD14-style model when the user has one (``tagger.py``);
- class word, tags and free text are the user's.

Nothing is guessed beyond that: without a face, view and framing are left out rather
than made up. A user's edit replaces the generated caption and survives regeneration.
"""

from __future__ import annotations

from charstudio.dataset.types import Framing, View
from charstudio.errors import InvalidParameter

__all__ = ["compose_caption", "framing_from_face", "validate_caption_edit", "view_from_landmarks"]

_FRONT_MAX, _THREE_QUARTER_MAX = 0.2, 0.55
_CLOSE_UP_MIN, _UPPER_BODY_MIN = 1 / 3, 0.15


def view_from_landmarks(
    left_eye: tuple[float, float], right_eye: tuple[float, float], nose: tuple[float, float]
) -> View:
    """Front, three-quarter or profile view from eye and nose positions."""
    mid_x = (left_eye[0] + right_eye[0]) / 2
    mid_y = (left_eye[1] + right_eye[1]) / 2
    eye_distance = ((left_eye[0] - right_eye[0]) ** 2 + (left_eye[1] - right_eye[1]) ** 2) ** 0.5
    if eye_distance < 1e-6:
        return "profile view"
    # Project the nose offset on the eye axis, so a tilted (rolled) head still reads right.
    ux = (right_eye[0] - left_eye[0]) / eye_distance
    uy = (right_eye[1] - left_eye[1]) / eye_distance
    offset = abs((nose[0] - mid_x) * ux + (nose[1] - mid_y) * uy) / eye_distance
    if offset < _FRONT_MAX:
        return "front view"
    if offset < _THREE_QUARTER_MAX:
        return "three-quarter view"
    return "profile view"


def framing_from_face(face_height: float, crop_height: float) -> Framing:
    """Close-up, upper body or full body from the face's share of the crop height."""
    share = face_height / crop_height
    if share >= _CLOSE_UP_MIN:
        return "close-up"
    if share >= _UPPER_BODY_MIN:
        return "upper body"
    return "full body"


def compose_caption(
    *,
    trigger_word: str,
    class_word: str,
    view: View | None,
    framing: Framing | None,
    tags: tuple[str, ...],
    description: str,
    auto_tags: tuple[str, ...] = (),
) -> str:
    """Join the parts that exist, trigger word first, comma-separated, on one line; a
    part already said earlier is not repeated."""
    parts = [trigger_word, class_word, view, framing, *auto_tags, *tags, description.strip()]
    seen: set[str] = set()
    kept = []
    for part in parts:
        if part and part.lower() not in seen:
            seen.add(part.lower())
            kept.append(part)
    return ", ".join(kept)


def validate_caption_edit(text: str, *, trigger_word: str) -> str:
    """Check a user's caption: one line, trigger word first, and more than the trigger.

    Raises:
        InvalidParameter: naming the problem and the fix.
    """
    caption = text.strip()
    if "\n" in caption or "\r" in caption:
        raise InvalidParameter(
            "caption contains a line break; trainers read only the first line: write it on one line"
        )
    first = caption.split(",")[0].strip()
    if first != trigger_word:
        raise InvalidParameter(
            f"caption must start with the trigger word {trigger_word!r} "
            f'(e.g. "{trigger_word}, {caption}")'
        )
    if caption.rstrip(", ") == trigger_word:
        raise InvalidParameter(
            "caption holds only the trigger word; describe the image too (view, clothes, "
            "background), or those traits bind to the trigger word"
        )
    return caption
