from __future__ import annotations

import pytest

from charstudio.dataset.captions import (
    compose_caption,
    framing_from_face,
    validate_caption_edit,
    view_from_landmarks,
)
from charstudio.errors import InvalidParameter


@pytest.mark.parametrize(
    ("nose_x", "view"),
    [(50, "front view"), (57, "front view"), (65, "three-quarter view"), (85, "profile view")],
)
def test_view_from_the_nose_offset(nose_x: float, view: str) -> None:
    # eyes 40 px apart around x=50
    assert view_from_landmarks((30, 40), (70, 40), (nose_x, 60)) == view


def test_view_ignores_head_roll() -> None:
    # The same frontal face rotated 30 degrees: nose still on the eyes' perpendicular.
    assert view_from_landmarks((30, 40), (64.6, 60), (37.3, 77.3)) == "front view"


@pytest.mark.parametrize(
    ("face", "crop", "framing"),
    [(300, 768, "close-up"), (150, 768, "upper body"), (60, 768, "full body")],
)
def test_framing_from_face_share(face: float, crop: float, framing: str) -> None:
    assert framing_from_face(face, crop) == framing


def test_caption_order_and_nothing_made_up() -> None:
    caption = compose_caption(
        trigger_word="yukicharacter",
        class_word="woman",
        view="front view",
        framing="upper body",
        tags=("red scarf", "smiling"),
        description=" in the snow ",
    )
    assert (
        caption == "yukicharacter, woman, front view, upper body, red scarf, smiling, in the snow"
    )
    bare = compose_caption(
        trigger_word="yukicharacter",
        class_word="",
        view=None,
        framing=None,
        tags=(),
        description="",
    )
    assert bare == "yukicharacter"


def test_caption_edits_are_checked() -> None:
    ok = validate_caption_edit("  yk, woman, red coat ", trigger_word="yk")
    assert ok == "yk, woman, red coat"
    with pytest.raises(InvalidParameter, match="contains a line break"):
        validate_caption_edit("yk, woman\nred coat", trigger_word="yk")
    with pytest.raises(InvalidParameter, match="must start with the trigger word 'yk'"):
        validate_caption_edit("woman, yk", trigger_word="yk")
    with pytest.raises(InvalidParameter, match="holds only the trigger word"):
        validate_caption_edit("yk, ", trigger_word="yk")
