"""Uniform borders (letterbox and pillarbox bars) are found; photos without them are left."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from charstudio.library.borders import content_box
from charstudio.library.images import load_rgb
from tests.faces.conftest import DATA


def portrait() -> Image.Image:
    return Image.fromarray(load_rgb(Path(DATA / "obama_2012.jpg")))


def as_jpeg(image: Image.Image) -> np.ndarray:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=85)
    return np.asarray(Image.open(buffer).convert("RGB"))


def test_pillarbox_bars_of_a_video_frame() -> None:
    frame = Image.new("RGB", (1920, 1080))
    frame.paste(portrait().resize((1440, 1080)), (240, 0))
    left, top, right, bottom = content_box(as_jpeg(frame)) or (0, 0, 0, 0)
    # Rounded inwards by at most two pixels (JPEG ringing at the edge of the picture).
    assert 240 <= left <= 242 and 1678 <= right <= 1680
    assert (top, bottom) == (0, 1080)


@pytest.mark.parametrize("colour", [(0, 0, 0), (255, 255, 255), (40, 90, 200)])
def test_letterbox_bars_of_any_flat_colour(colour: tuple[int, int, int]) -> None:
    picture = portrait()
    frame = Image.new("RGB", (picture.width, picture.height + 200), colour)
    frame.paste(picture, (0, 120))
    assert content_box(np.asarray(frame)) == (0, 120, picture.width, picture.height + 120)


def test_large_images_are_measured_on_a_reduced_copy_and_rounded_inwards() -> None:
    frame = Image.new("RGB", (4000, 3000))
    frame.paste(portrait().resize((3000, 3000)), (501, 0))
    left, top, right, bottom = content_box(np.asarray(frame)) or (0, 0, 0, 0)
    assert 501 <= left <= 505 and 3497 <= right <= 3501 and (top, bottom) == (0, 3000)


def test_photos_without_bars_are_left_alone() -> None:
    assert content_box(np.asarray(portrait())) is None
    for name in ("obama_2009.jpg", "hopper.jpg", "coffee.jpg"):
        assert content_box(load_rgb(DATA / name)) is None, name


def test_a_thin_edge_or_a_flat_image_is_not_a_border() -> None:
    picture = np.asarray(portrait()).copy()
    picture[:, :3] = 0  # a 3-pixel dark edge: under 2 % of the side
    assert content_box(picture) is None
    assert content_box(np.zeros((400, 600, 3), np.uint8)) is None
